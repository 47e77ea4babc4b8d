"""A hand-made tidy CSV: two methods, three datasets, three sessions; ckda has two seeds, naive one."""
import math

import pytest

from ckda_avalanche.evaluation.tidy_logger import append_extra_rows

NAN = float("nan")
DATASETS = ("regdb", "sysu", "llcm")
# mAP history R[train_exp, dataset] of ckda seed 0 (rows 0..3); see tests/evaluation/test_forgetting.py.
HISTORY = [
    [NAN, NAN, NAN],
    [0.50, 0.90, 0.05],
    [0.55, 0.60, 0.10],
    [0.45, 0.30, 0.70],
]


def _rows(run, method, seed, shift, scale):
    base = dict(run=run, method=method, seed=seed, protocol="paper")
    rows = []
    for t, row in enumerate(HISTORY):
        for d, value in enumerate(row):
            if math.isnan(value):
                continue
            m = value * scale + shift
            rows.append(dict(base, train_exp=t, eval_dataset=DATASETS[d], trial="mean", metric="mAP", value=m))
            rows.append(dict(base, train_exp=t, eval_dataset=DATASETS[d], trial="trial0", metric="mAP", value=m))
            rows.append(dict(base, train_exp=t, eval_dataset=DATASETS[d], trial="mean", metric="Rank1",
                             value=m + 0.05))
        if t:
            rows.append(dict(base, train_exp=t, eval_dataset="seen_avg", trial="-", metric="mAP", value=0.0))
            rows.append(dict(base, train_exp=t, eval_dataset="-", trial="-", metric="memory_bytes/teacher",
                             value=2 * 2**20))
            rows.append(dict(base, train_exp=t, eval_dataset="-", trial="-", metric="train_time_s", value=60.0))
        if t >= 2:
            rows.append(dict(base, train_exp=t, eval_dataset="-", trial="-", metric="memory_bytes/prototypes",
                             value=2**20))
    return rows


@pytest.fixture
def tidy_csvs(tmp_path):
    """Three run CSVs: ckda seeds 0 and 1 (seed 1 = seed 0 + 0.1 everywhere) and naive seed 0 (half of seed 0)."""
    paths = []
    for run, method, seed, shift, scale in (("ckda_s0", "ckda", 0, 0.0, 1.0), ("ckda_s1", "ckda", 1, 0.1, 1.0),
                                            ("naive_s0", "naive", 0, 0.0, 0.5)):
        path = tmp_path / run / "tidy.csv"
        append_extra_rows(path, _rows(run, method, seed, shift, scale))
        paths.append(path)
    return paths
