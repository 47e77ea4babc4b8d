"""`benchmarks/session_matrix.py`: the per-session score matrix over seeds, on hand-written tidy CSVs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

HEADER = "run,method,seed,train_exp,eval_dataset,protocol,trial,metric,value\n"


@pytest.fixture(scope="module")
def script(benchmark_script):
    return benchmark_script("session_matrix")


def _write(root: Path, method: str, seed: int, scores: dict[tuple[int, str], float], protocol: str = "paper") -> None:
    folder = root / method / f"seed{seed}"
    folder.mkdir(parents=True)
    rows = [f"{root.name},{method},{seed},{k},{d},{protocol},mean,{metric},{v}\n"
            for (k, d), v in scores.items() for metric in ("mAP", "Rank1")]  # a finished run has both
    (folder / "metrics.csv").write_text(HEADER + "".join(rows))


def _scores(a: float, b: float, c: float, d: float) -> dict[tuple[int, str], float]:
    return {(1, "regdb"): a, (1, "sysu"): b, (2, "regdb"): c, (2, "sysu"): d}


def test_matrix_pools_seeds_from_several_folders_and_prints_mean_std_and_values(tmp_path, script, capsys):
    _write(tmp_path / "a", "finetune", 0, _scores(0.70, 0.40, 0.60, 0.55))
    _write(tmp_path / "a", "lwf", 0, _scores(0.10, 0.10, 0.10, 0.10))  # another method: not pooled
    _write(tmp_path / "b", "finetune", 1, _scores(0.74, 0.42, 0.50, 0.61))
    datasets, matrices = script.session_matrix([tmp_path / "a", tmp_path / "b"], method="finetune")
    assert datasets == ("regdb", "sysu")
    assert list(matrices) == [0, 1]
    np.testing.assert_allclose(matrices[1], [[74.0, 42.0], [50.0, 61.0]])
    text = script.format_matrix(datasets, matrices).splitlines()
    # by hand: regdb after session 2 is 60 and 50 -> mean 55, sample std sqrt(50) = 7.07
    assert text[0] == "seeds [0, 1]; points"
    assert text[3] == "after session 2  regdb      mean  55.0  std  7.07  [60.0 50.0]"
    assert text[2] == "after session 1  sysu       mean  41.0  std  1.41  [40.0 42.0]"


def test_one_seed_has_no_std_and_a_missing_method_or_another_stream_is_refused(tmp_path, script):
    _write(tmp_path / "a", "finetune", 0, _scores(0.7, 0.4, 0.6, 0.5))
    datasets, matrices = script.session_matrix([tmp_path / "a"], method="finetune")
    assert script.format_matrix(datasets, matrices).splitlines()[1].endswith("std     -  [70.0]")
    with pytest.raises(SystemExit, match="no finished run of method 'ewc'"):
        script.session_matrix([tmp_path / "a"], method="ewc")
    _write(tmp_path / "b", "finetune", 1, {(1, "llcm"): 0.5, (1, "vcm"): 0.5, (2, "llcm"): 0.5, (2, "vcm"): 0.5})
    # runs of another stream are never pooled: the board keeps one stream and names the run it leaves out
    with pytest.warns(UserWarning, match=r"left out: not comparable .*session order"):
        datasets, matrices = script.session_matrix([tmp_path / "a", tmp_path / "b"], method="finetune")
    assert len(matrices) == 1
