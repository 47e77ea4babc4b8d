"""Data side of ckda_avalanche: dataset readers, retrieval protocols and (elsewhere in this package) the streams."""
from .datasets import HITSZVCM, LLCM, SYSUMM01, DatasetReport, RegDB, check_root, format_check_report, load_image
from .errors import DatasetLayoutError
from .protocols import EvalProtocol, PoolSelector, RetrievalTrial, TrialSpec, group_pool_by_tracklet
from .sample import INFRARED, VISIBLE, ReIDSample

__all__ = [
    "DatasetLayoutError",
    "DatasetReport",
    "EvalProtocol",
    "HITSZVCM",
    "INFRARED",
    "LLCM",
    "PoolSelector",
    "ReIDSample",
    "RegDB",
    "RetrievalTrial",
    "SYSUMM01",
    "TrialSpec",
    "VISIBLE",
    "check_root",
    "format_check_report",
    "group_pool_by_tracklet",
    "load_image",
]
