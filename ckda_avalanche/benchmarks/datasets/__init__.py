"""Readers of the four VI-ReID datasets in their official layouts, and `check_root` over a data folder."""
from ._common import load_image
from .check import DatasetReport, check_root, format_check_report
from .llcm import LLCM
from .regdb import RegDB
from .sysu import SYSUMM01
from .vcm import HITSZVCM

__all__ = [
    "HITSZVCM",
    "LLCM",
    "SYSUMM01",
    "DatasetReport",
    "RegDB",
    "check_root",
    "format_check_report",
    "load_image",
]
