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


def final_scores_frame(scores, *, precision=None, protocol="paper"):
    """Tidy rows of two-session runs over ("regdb", "sysu") from ``scores[(method, seed)] = (regdb after session 1,
    regdb after session 2, sysu after session 2)`` (mAP; Rank1 = mAP / 2 + 0.5). Final seen mAP = mean of the last
    two; forgetting = first minus second. ``precision[(method, seed)]`` adds one ``precision/<name>`` row per
    session (a list of two names gives each session its own)."""
    import pandas as pd

    rows = []
    for (method, seed), (r1, r2, s2) in scores.items():
        base = dict(run=f"{method}_s{seed}", method=method, seed=seed, protocol=protocol)
        cells = [(1, "regdb", r1), (2, "regdb", r2), (2, "sysu", s2)]
        for t, dataset, m in cells:
            rows.append(dict(base, train_exp=t, eval_dataset=dataset, trial="mean", metric="mAP", value=m))
            rows.append(dict(base, train_exp=t, eval_dataset=dataset, trial="mean", metric="Rank1",
                             value=m / 2 + 0.5))
        names = (precision or {}).get((method, seed))
        if names is not None:
            names = [names, names] if isinstance(names, str) else names
            for t, name in zip((1, 2), names):
                rows.append(dict(base, train_exp=t, eval_dataset="-", trial="-", metric=f"precision/{name}",
                                 value=1.0))
    return pd.DataFrame.from_records(rows)


@pytest.fixture
def make_frame():
    """`final_scores_frame` as a fixture."""
    return final_scores_frame
