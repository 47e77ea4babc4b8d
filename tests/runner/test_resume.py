"""A run killed with SIGKILL in the middle of a session resumes from its last checkpoint and ends with exactly the
metrics of an uninterrupted run with the same seed (which also shows same seed -> same metrics)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

SCORE_METRICS = {"mAP", "Rank1", "Rank5", "Rank10", "mINP"}


def _command(out: Path, root: Path, config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ckda_avalanche.cli", "run", "--preset", "test", "--methods", "ckda", "--seeds",
            "3", "--data", "synthetic", "--synthetic-dir", str(root), "--config", str(config), "--out", str(out),
            "--no-progress", *extra]


def _scores(csv: Path) -> pd.DataFrame:
    frame = pd.read_csv(csv)
    frame = frame[frame.metric.isin(SCORE_METRICS) | frame.metric.str.startswith(("forgetting/", "bwt/"))]
    return frame.drop(columns=["run"]).sort_values(["train_exp", "eval_dataset", "trial", "metric"]).reset_index(
        drop=True)


def test_sigkill_mid_session_then_resume_matches_uninterrupted(tmp_path, tiny_synthetic_root):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"datasets": ["regdb", "sysu"], "synthetic_scale": 0.15,
                                  # 10 epochs: with the cached, batched data path a 3-epoch session took
                                  # under 0.5 s, so the kill below could land after session 2 had finished.
                                  "train": {"epochs": 10, "warmup_epochs": 0, "num_identities": 4,
                                            "num_instances": 2}}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    reference = tmp_path / "reference"
    subprocess.run(_command(reference, tiny_synthetic_root, config), check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    state = killed / "ckda" / "seed3" / "state.json"
    proc = subprocess.Popen(_command(killed, tiny_synthetic_root, config), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not state.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert state.exists(), "the first session never finished"
    time.sleep(0.2)  # now inside session 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    progress = json.loads(state.read_text())
    assert progress["sessions_done"] == 1, "killed too late: session 2 had already finished"
    saved = pd.read_csv(killed / "ckda" / "seed3" / "metrics.csv")
    assert saved.train_exp.max() <= 2

    subprocess.run(_command(killed, tiny_synthetic_root, config, "--resume"), check=True, env=env,
                   capture_output=True)
    assert json.loads(state.read_text())["sessions_done"] == 2
    resumed, expected = _scores(killed / "ckda" / "seed3" / "metrics.csv"), _scores(
        reference / "ckda" / "seed3" / "metrics.csv")
    assert len(expected) > 0
    pd.testing.assert_frame_equal(resumed, expected)
