"""`benchmarks/compare_runs.py`: value-by-value comparison of two boards' tidy rows, on hand-written CSVs."""
from __future__ import annotations

from pathlib import Path

import pytest

HEADER = "run,method,seed,train_exp,eval_dataset,protocol,trial,metric,value\n"


@pytest.fixture(scope="module")
def script(benchmark_script):
    return benchmark_script("compare_runs")


def _write(root: Path, method: str, seed: int, rows: list[str]) -> None:
    folder = root / method / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(HEADER + "".join(f"{root.name},{method},{seed},{r}\n" for r in rows))


BASE = ["1,regdb,paper,mean,mAP,0.5", "1,regdb,paper,mean,Rank1,0.75", "1,-,paper,-,train_time_s,10.0",
        "1,-,paper,-,memory_bytes/strategy/model,100"]


def test_identical_values_pass_and_machine_rows_are_ignored(tmp_path, script, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "ckda", 0, BASE)
    other_machine = BASE[:2] + ["1,-,paper,-,train_time_s,99.0", "1,-,paper,-,memory_bytes/strategy/model,7"]
    _write(b, "ckda", 0, list(reversed(other_machine)))  # row order does not matter
    assert script.main([str(a), str(b)]) == 0
    assert capsys.readouterr().out.strip() == "ckda/seed0: 2 rows identical"


def test_a_changed_value_a_missing_row_and_a_missing_run_fail(tmp_path, script, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "ckda", 0, BASE)
    _write(b, "ckda", 0, ["1,regdb,paper,mean,mAP,0.5", "1,regdb,paper,mean,Rank1,0.5"])  # Rank1 off by 0.25
    _write(a, "dkp", 0, BASE)
    _write(b, "dkp", 0, BASE[:1])  # Rank1 row missing
    _write(a, "lwf", 1, BASE)  # no lwf in b
    assert script.main([str(a), str(b)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ckda/seed0: 1 of 2 rows differ (largest |difference| 0.25)"
    assert out[1] == "dkp/seed0: different rows: 1 only in the first, 0 only in the second"
    assert out[2].startswith("lwf/seed1: missing ") and str(b / "lwf" / "seed1" / "metrics.csv") in out[2]


def test_protocol_filter_and_method_folders(tmp_path, script, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "ckda[no_msp]", 3, BASE + ["1,regdb,full,mean,mAP,0.4"])  # the first board was also re-scored
    _write(b, "finetune", 3, BASE)
    assert script.main([str(a / "ckda[no_msp]"), str(b / "finetune")]) == 1  # the full row is only on one side
    assert script.main([str(a / "ckda[no_msp]"), str(b / "finetune"), "--protocol", "paper"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "seed3: 2 rows identical"
