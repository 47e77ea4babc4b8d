"""Resume guards: a resume with other settings than ``config.json`` is refused with a diff (or recorded with
``--resume-override``), and a deleted, damaged or edited ``metrics.csv`` is rebuilt from the checkpoint's copy (or
refused clearly when an older checkpoint has none)."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

import ckda_avalanche.runner.run_folder as run_folder
from ckda_avalanche.cli import main
from ckda_avalanche.evaluation.tidy_logger import append_extra_rows
from ckda_avalanche.runner.lock import LOCK_NAME
from ckda_avalanche.runner.run_state import (
    CSV_KEY,
    RunStateError,
    check_resume_config,
    config_changes,
    restore_csv,
)

METHOD = "finetune"


def _run(out: Path, root: Path, config: Path, *extra: str) -> int:
    return main(["run", "--preset", "test", "--methods", METHOD, "--seeds", "0", "--synthetic-dir", str(root),
                 "--config", str(config), "--out", str(out), "--no-progress", *extra])


def _config(path: Path, **train: object) -> Path:
    path.write_text(json.dumps({"datasets": ["regdb", "sysu"], "synthetic_scale": 0.15, "train": train}))
    return path


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory, tiny_synthetic_root: Path) -> tuple[Path, Path]:
    """A run folder whose process stopped right after session 1 of 2 was saved, and its config file."""
    base = tmp_path_factory.mktemp("interrupted")
    config = _config(base / "cfg.json")
    out = base / "run"

    def stop_after_session_1(instant: str) -> None:
        if instant == "session1:state":
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_folder, "kill_point", stop_after_session_1)
        assert _run(out, tiny_synthetic_root, config) == 130
    assert not (out / LOCK_NAME).exists()  # the lock went with the process's exit path
    assert json.loads((out / METHOD / "seed0" / "state.json").read_text())["sessions_done"] == 1
    return out, config


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def test_resume_with_other_settings_is_refused_then_recorded_on_override(interrupted, tmp_path,
                                                                        tiny_synthetic_root, capsys):
    out = _copy(interrupted[0], tmp_path / "run")
    run_dir = out / METHOD / "seed0"
    before = {name: (run_dir / name).read_bytes() for name in ("config.json", "state.json", "metrics.csv")}
    other = _config(tmp_path / "other.json", epochs=2)
    capsys.readouterr()
    assert _run(out, tiny_synthetic_root, other, "--resume") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ckda: error: {run_dir / 'config.json'}: --resume with "
                                                   f"different settings: train.epochs 1 -> 2;"), err
    assert "--resume-override" in err
    assert {name: (run_dir / name).read_bytes() for name in before} == before  # nothing touched

    assert _run(out, tiny_synthetic_root, other, "--resume", "--resume-override") == 0
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["run_config"]["train"]["epochs"] == 2
    assert recorded["overrides"] == [{"after_session": 1, "changed": {"train.epochs": [1, 2]}}]
    assert sorted(pd.read_csv(run_dir / "metrics.csv").query("metric == 'mAP' and trial == 'mean'").train_exp) == [
        1, 1, 2, 2]
    # the recorded settings are now the run's: resuming with them is accepted, the old ones are refused
    assert _run(out, tiny_synthetic_root, other, "--resume") == 0
    assert _run(out, tiny_synthetic_root, interrupted[1], "--resume") == 2
    assert "train.epochs 2 -> 1" in capsys.readouterr().err


def test_deleted_csv_is_rebuilt_mid_run_and_after_the_run(interrupted, tmp_path, tiny_synthetic_root, capsys,
                                                          caplog):
    # the folder is also renamed: the CSV's run name stays the one the run started with
    out = _copy(interrupted[0], tmp_path / "renamed")
    run_dir = out / METHOD / "seed0"
    session1 = (run_dir / "metrics.csv").read_text()
    (run_dir / "metrics.csv").unlink()
    with caplog.at_level(logging.WARNING, logger="ckda_avalanche.runner"):
        assert _run(out, tiny_synthetic_root, interrupted[1], "--resume") == 0
    assert "missing; rebuilt" in caplog.text and "sessions 1-1" in caplog.text
    final = (run_dir / "metrics.csv").read_text()
    assert final.startswith(session1)  # session 1 rows exactly as before, then session 2
    frame = pd.read_csv(run_dir / "metrics.csv")
    assert set(frame.run) == {"run"} and set(frame.train_exp) == {1, 2}

    # deleted after the run finished: rebuilt byte for byte, nothing retrained
    checkpoint_before = (run_dir / "checkpoint.pt").read_bytes()
    (run_dir / "metrics.csv").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ckda_avalanche.runner"):
        assert _run(out, tiny_synthetic_root, interrupted[1], "--resume") == 0
    assert (run_dir / "metrics.csv").read_text() == final
    assert (run_dir / "checkpoint.pt").read_bytes() == checkpoint_before
    assert "sessions 1-2" in caplog.text
    assert "| finetune |" in capsys.readouterr().out  # and the leaderboard is written again


def test_older_checkpoint_without_csv_copy_is_refused_before_training(interrupted, tmp_path, tiny_synthetic_root,
                                                                    capsys):
    out = _copy(interrupted[0], tmp_path / "run")
    run_dir = out / METHOD / "seed0"
    checkpoint = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    del checkpoint[CSV_KEY]
    torch.save(checkpoint, run_dir / "checkpoint.pt")
    state = json.loads((run_dir / "state.json").read_text())
    del state["csv_in_checkpoint"]
    (run_dir / "state.json").write_text(json.dumps(state))
    (run_dir / "metrics.csv").unlink()
    capsys.readouterr()
    assert _run(out, tiny_synthetic_root, interrupted[1], "--resume") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metrics.csv: missing" in err and "holds no copy of its rows" in err, err
    with pytest.raises(RunStateError, match="holds no copy of its 1 finished session"):  # library path too
        restore_csv(run_dir / "metrics.csv", checkpoint, checkpoint_path=run_dir / "checkpoint.pt")


def _tidy(path: Path, sessions: int) -> str:
    base = dict(run="r", method="m", seed=0, eval_dataset="regdb", protocol="paper", trial="mean", metric="mAP")
    append_extra_rows(path, [dict(base, train_exp=t, value=t / 10) for t in range(1, sessions + 1)])
    return path.read_text()


def test_edited_or_damaged_csv_is_restored_from_the_checkpoint(tmp_path, caplog):
    path = tmp_path / "metrics.csv"
    snapshot = _tidy(path, 2)
    checkpoint = {"sessions_done": 2, CSV_KEY: snapshot}
    path.write_text(snapshot.replace("0.2", "0.9"))  # edited
    with caplog.at_level(logging.WARNING, logger="ckda_avalanche.runner"):
        restore_csv(path, checkpoint, checkpoint_path=tmp_path / "checkpoint.pt")
    assert path.read_text() == snapshot
    assert "0.9" in (tmp_path / "metrics.csv.bak").read_text() and "differed from the copy" in caplog.text
    path.write_text(snapshot + "r,m,0,x,regdb\n")  # a torn last line (unreadable)
    restore_csv(path, checkpoint, checkpoint_path=tmp_path / "checkpoint.pt")
    assert path.read_text() == snapshot and (tmp_path / "metrics.csv.bak1").exists()
    path.write_text(snapshot)  # rows of a third session that never reached its checkpoint: dropped, no warning
    append_extra_rows(path, [dict(run="r", method="m", seed=0, eval_dataset="regdb", protocol="paper",
                                  trial="mean", metric="mAP", train_exp=3, value=0.3)])
    caplog.clear()
    restore_csv(path, checkpoint, checkpoint_path=tmp_path / "checkpoint.pt")
    assert path.read_text() == snapshot and not caplog.text


def test_check_resume_config_in_the_library_path(tmp_path):
    record = {"method": "ckda", "seed": 0, "run": "first", "run_config": {"train": {"lr": 0.1, "epochs": 3}},
              "method_config": {"beta": 1.0}, "model_config": {"depth": 2}}
    (tmp_path / "config.json").write_text(json.dumps(record))
    assert check_resume_config(tmp_path, {**record, "run": "renamed"}, override=False, sessions_done=1) == "first"
    changed = {**record, "run_config": {"train": {"lr": 0.2, "epochs": 3}}, "method_config": {"beta": 0.0}}
    assert config_changes(record, changed) == [("train.lr", 0.1, 0.2), ("method_overrides.ckda.beta", 1.0, 0.0)]
    with pytest.raises(RunStateError, match=r"train.lr 0.1 -> 0.2, method_overrides.ckda.beta 1.0 -> 0.0"):
        check_resume_config(tmp_path, changed, override=False, sessions_done=1)
    assert check_resume_config(tmp_path, changed, override=True, sessions_done=1) == "first"
    stored = json.loads((tmp_path / "config.json").read_text())
    assert stored["run_config"]["train"]["lr"] == 0.2 and stored["run"] == "first"
    assert stored["overrides"][0]["changed"] == {"train.lr": [0.1, 0.2], "method_overrides.ckda.beta": [1.0, 0.0]}
    (tmp_path / "config.json").unlink()
    with pytest.raises(RunStateError, match="config.json: missing"):
        check_resume_config(tmp_path, record, override=False, sessions_done=1)


def test_worker_count_is_not_a_change_of_settings(tmp_path):
    # A folder started when num_workers defaulted to 0 resumes under "auto": workers change speed, not metrics.
    old = {"method": "finetune", "seed": 0, "run": "r", "model_config": {"depth": 2},
           "run_config": {"train": {"lr": 0.1, "num_workers": 0}}, "method_config": {}}
    new = {**old, "run_config": {"train": {"lr": 0.1, "num_workers": "auto"}}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert config_changes(old, new) == []
    assert check_resume_config(tmp_path, new, override=False, sessions_done=1) == "r"
    other = {**old, "run_config": {"train": {"lr": 0.2, "num_workers": 3}}}
    assert config_changes(old, other) == [("train.lr", 0.1, 0.2)]
