"""`ckda data check ROOT --deep` on the tree of benchmarks/make_broken_tree.py (every bad-input case at once) and on
clean data; plus `ckda run` stopping at an undecodable training image with the file and how to resume."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ckda_avalanche.benchmarks.datasets import deep_check, format_deep_report
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.cli import main

@pytest.fixture(scope="module")
def broken_tree(tmp_path_factory, benchmark_script):
    root = tmp_path_factory.mktemp("broken") / "data"
    return root, benchmark_script("make_broken_tree").build_broken_tree(root)


def _mentions(problem, root: Path, case_path: str) -> bool:
    """The problem names the case's file: as its path, or (index-line problems) as the relative path it quotes."""
    dataset_dir, _, inner = case_path.partition("/")
    return problem.path == str(root / case_path) or repr(inner) in problem.message


def test_deep_check_reports_every_broken_case_naming_its_file(broken_tree):
    root, cases = broken_tree
    assert len(cases) >= 15
    report = deep_check(root, workers=2, progress=False)
    problems = report.problems
    for case in cases:
        found = [p for p in problems if _mentions(p, root, case.path)]
        if case.severity is None:
            assert not found, (case.name, [p.text for p in found])
            continue
        matching = [p for p in found if p.severity == case.severity and case.phrase.lower() in p.message.lower()]
        assert matching, (case.name, [p.text for p in found])
    assert not report.ok
    by_dataset = {d.dataset: d for d in report.datasets}
    assert by_dataset["regdb"].modes["I;16"] == 2  # 16-bit PNGs decoded; the third (flat) one is an error
    text = format_deep_report(report)
    for problem in problems:
        assert problem.text in text
    assert f"{len(report.errors)} error(s)" in text


def test_deep_check_is_the_same_with_one_thread(broken_tree):
    root, _ = broken_tree
    two = deep_check(root, workers=2, progress=False)
    one = deep_check(root, workers=1, progress=False)
    assert [p.text for p in one.problems] == [p.text for p in two.problems]
    with pytest.raises(ValueError, match="workers"):
        deep_check(root, workers=0, progress=False)


def test_cli_deep_exits_nonzero_and_plain_check_points_to_deep(broken_tree, capsys):
    root, _ = broken_tree
    assert main(["data", "check", str(root), "--deep", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "deep check:" in out and "ERROR    RegDB:" in out and "flat image" in out
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "more error(s); 'ckda data check ROOT --deep' lists them all" in out


def test_deep_check_of_clean_data_finds_nothing(tmp_path, capsys):
    root = tmp_path / "clean"
    generate_synthetic(root, seed=0, scale=0.1, img_size=(32, 16))
    assert main(["data", "check", str(root), "--deep", "--no-progress", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("no problems found")
    assert "regdb" in out and "sysu     train" in out  # the plain table is kept


def test_run_stops_at_an_undecodable_training_image_and_resumes(tmp_path, capsys):
    """Session 1 (RegDB) finishes; every SYSU-MM01 training image is empty, so session 2 stops at the first one
    drawn, naming it and --resume; once the files are restored, --resume finishes the run."""
    root = tmp_path / "data"
    generate_synthetic(root, seed=0, scale=0.1)
    sysu = root / "SYSU-MM01"
    train_ids = [int(t) for f in ("train_id.txt", "val_id.txt")
                 for t in (sysu / "exp" / f).read_text().replace("\n", ",").split(",") if t.strip()]
    saved = {}
    for pid in train_ids:
        for image in sysu.glob(f"cam*/{pid:04d}/*.jpg"):
            saved[image] = image.read_bytes()
            image.write_bytes(b"")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"datasets": ["regdb", "sysu"]}))
    out = tmp_path / "run"
    args = ["run", "--preset", "test", "--methods", "finetune", "--data", str(root), "--config", str(config),
            "--out", str(out), "--no-progress"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ckda: error: SYSU-MM01: ") and "\n" not in err
    assert "cannot decode image: the file is empty (0 bytes)" in err and "--resume" in err
    assert any(str(image) in err for image in saved)
    state = torch.load(out / "finetune" / "seed0" / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["sessions_done"] == 1
    for image, data in saved.items():
        image.write_bytes(data)
    assert main([*args, "--resume"]) == 0
    state = torch.load(out / "finetune" / "seed0" / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["sessions_done"] == 2
