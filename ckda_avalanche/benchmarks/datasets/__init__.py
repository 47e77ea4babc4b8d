"""Readers of the four VI-ReID datasets in their official layouts, `check_root` and `deep_check` over a data folder."""
from .images import load_image
from .check import DatasetReport, check_root, format_check_report
from .deep import DeepCheckReport, deep_check, format_deep_report
from .images import ImageConversionWarning, ImageDecodeError
from .llcm import LLCM
from .problems import DataProblem, DatasetProblemsError
from .regdb import RegDB
from .sysu import SYSUMM01
from .vcm import HITSZVCM

__all__ = [
    "HITSZVCM",
    "LLCM",
    "SYSUMM01",
    "DataProblem",
    "DatasetProblemsError",
    "DatasetReport",
    "DeepCheckReport",
    "ImageConversionWarning",
    "ImageDecodeError",
    "RegDB",
    "check_root",
    "deep_check",
    "format_check_report",
    "format_deep_report",
    "load_image",
]
