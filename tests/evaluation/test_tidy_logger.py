"""Tidy CSV logger: exact columns, rows from ReIDMetricValues, resume, truncation and run-level rows."""
import csv
import math

import pytest
from avalanche.evaluation.metric_results import MetricValue

from ckda_avalanche.evaluation.metric_value import ReIDMetricValue
from ckda_avalanche.evaluation.tidy_logger import (
    TIDY_COLUMNS,
    TidyCSVLogger,
    append_extra_rows,
    tidy_rows_from_csv,
    truncate_after_train_exp,
)


def _value(metric, value, *, dataset="regdb", trial="mean", train_exp=1, protocol="paper"):
    return ReIDMetricValue(None, f"{metric}_Exp/eval_phase/test_stream/Exp000", value, 0, metric=metric,
                           eval_dataset=dataset, trial=trial, train_exp=train_exp, protocol=protocol)


def _logger(path, **overrides):
    kwargs = dict(run="r0", method="ckda", seed=3, dataset_names=("regdb", "sysu"), protocol="paper")
    kwargs.update(overrides)
    return TidyCSVLogger(path, **kwargs)


def test_columns_and_rows(tmp_path):
    path = tmp_path / "sub" / "tidy.csv"
    logger = _logger(path)
    logger.log_metrics([
        _value("mAP", 0.5),
        _value("mAP", 0.25, trial="vis2ir/trial0"),
        MetricValue(None, "Top1_Acc_Stream/eval_phase/test_stream", 0.9, 0),  # not a ReID value: ignored
        _value("Rank1", 0.75, dataset="seen_avg", trial="-"),
    ])
    with path.open() as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == TIDY_COLUMNS
    assert rows[1] == ["r0", "ckda", "3", "1", "regdb", "paper", "mean", "mAP", "0.5"]
    assert rows[2][6] == "vis2ir/trial0" and rows[2][8] == "0.25"
    assert rows[3][4:] == ["seen_avg", "paper", "-", "Rank1", "0.75"]
    assert len(rows) == 4 and logger.rows_written == 3
    frame = tidy_rows_from_csv(path)
    assert list(frame.columns) == list(TIDY_COLUMNS)
    assert frame["seed"].dtype == "int64" and frame["train_exp"].dtype == "int64"
    assert frame["value"].tolist() == [0.5, 0.25, 0.75]


def test_full_precision_and_nan_round_trip(tmp_path):
    path = tmp_path / "tidy.csv"
    _logger(path).log_metrics([_value("mAP", 1 / 3), _value("mINP", float("nan"))])
    frame = tidy_rows_from_csv(path)
    assert frame["value"].iloc[0] == 1 / 3
    assert math.isnan(frame["value"].iloc[1])


def test_resume_appends_and_truncate_keeps_checkpointed_sessions(tmp_path):
    path = tmp_path / "tidy.csv"
    _logger(path).log_metrics([_value("mAP", 0.1, train_exp=t) for t in (0, 1, 2, 3)])
    dropped = truncate_after_train_exp(path, 1)
    assert dropped == 2
    assert tidy_rows_from_csv(path)["train_exp"].tolist() == [0, 1]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind
    _logger(path, mode="append").log_metrics([_value("mAP", 0.2, train_exp=2)])  # appends, no 2nd header
    frame = tidy_rows_from_csv(path)
    assert frame["train_exp"].tolist() == [0, 1, 2]
    assert frame["value"].tolist() == [0.1, 0.1, 0.2]


def test_append_extra_rows(tmp_path):
    path = tmp_path / "tidy.csv"
    base = dict(run="r0", method="ckda", seed=3, eval_dataset="-", protocol="paper", trial="-")
    assert append_extra_rows(path, [dict(base, train_exp=1, metric="memory_bytes/teacher", value=1024),
                                    dict(base, train_exp=1, metric="train_time_s", value=12.5)]) == 2
    frame = tidy_rows_from_csv(path)
    assert frame["metric"].tolist() == ["memory_bytes/teacher", "train_time_s"]
    assert frame["value"].tolist() == [1024.0, 12.5]
    with pytest.raises(ValueError, match="missing \\['value'\\]"):
        append_extra_rows(path, [dict(base, train_exp=1, metric="train_time_s")])
    with pytest.raises(ValueError, match="train_exp"):
        append_extra_rows(path, [dict(base, train_exp="one", metric="train_time_s", value=1.0)])


def test_errors_are_clear(tmp_path):
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not the tidy CSV header"):
        _logger(bad)
    with pytest.raises(ValueError, match="not the tidy CSV header"):
        tidy_rows_from_csv(bad)
    path = tmp_path / "tidy.csv"
    logger = _logger(path)
    with pytest.raises(ValueError, match="protocol 'full'"):
        logger.log_metrics([_value("mAP", 0.5, protocol="full")])
    with pytest.raises(ValueError, match="'llcm'"):
        logger.log_metrics([_value("mAP", 0.5, dataset="llcm")])
    with path.open("a") as handle:
        handle.write("r0,ckda,3,x,regdb,paper,mean,mAP,0.5\n")
    with pytest.raises(ValueError, match="line 2: column train_exp"):
        tidy_rows_from_csv(path)
    with pytest.raises(FileNotFoundError):
        tidy_rows_from_csv(tmp_path / "missing.csv")


def test_a_second_run_into_the_same_file_is_refused_not_mixed(tmp_path):
    # README's library example run twice: the second logger must not append its rows to the first run's.
    path = tmp_path / "metrics.csv"
    _logger(path).log_metrics([_value("mAP", 0.1, train_exp=1)])
    with pytest.raises(ValueError, match=r"already holds 1 rows \(run 'r0', method 'ckda', seed 3\).*overwrite"):
        _logger(path)
    assert tidy_rows_from_csv(path)["value"].tolist() == [0.1]  # untouched
    # a header-only file (a logger that never logged) is not a run: a new logger may use it
    empty = tmp_path / "empty.csv"
    _logger(empty)
    _logger(empty).log_metrics([_value("mAP", 0.3)])
    assert tidy_rows_from_csv(empty)["value"].tolist() == [0.3]
    # mode="overwrite" starts afresh
    _logger(path, mode="overwrite").log_metrics([_value("mAP", 0.2, train_exp=1)])
    assert tidy_rows_from_csv(path)["value"].tolist() == [0.2]
    # mode="append" continues only the same run
    for other in (dict(run="r1"), dict(method="lwf"), dict(seed=4)):
        with pytest.raises(ValueError, match="holds rows of another run"):
            _logger(path, mode="append", **other)
    # rows of another protocol are the same run re-scored (`ckda eval`): they live beside the training rows
    _logger(path, mode="append", protocol="full").log_metrics([_value("mAP", 0.4, protocol="full")])
    _logger(path, mode="append")
    assert tidy_rows_from_csv(path)["protocol"].tolist() == ["paper", "full"]
    with pytest.raises(ValueError, match="mode must be one of"):
        _logger(path, mode="add")
