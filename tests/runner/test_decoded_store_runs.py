"""A run reading its images from the on-disk decoded-image store scores exactly like a run that decodes them: the
first run with a store folder fills it, the second loads it (the files are not rewritten), and both equal a run
without the store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

SCORE_METRICS = {"mAP", "Rank1", "Rank5", "Rank10", "mINP"}


def _run(out: Path, root: Path, config: Path, store: str) -> pd.DataFrame:
    command = [sys.executable, "-m", "ckda_avalanche.cli", "run", "--preset", "test", "--methods", "finetune",
               "--seeds", "1", "--data", "synthetic", "--synthetic-dir", str(root), "--config", str(config),
               "--out", str(out), "--no-progress"]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "CKDA_DECODED_CACHE": store})
    frame = pd.read_csv(out / "finetune" / "seed1" / "metrics.csv")
    frame = frame[frame.metric.isin(SCORE_METRICS)]
    return frame.drop(columns=["run"]).sort_values(["train_exp", "eval_dataset", "trial", "metric"]).reset_index(
        drop=True)


def test_runs_with_the_store_score_like_runs_without(tmp_path, tiny_synthetic_root):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"datasets": ["regdb", "sysu"], "synthetic_scale": 0.15}))
    store = tmp_path / "store"
    reference = _run(tmp_path / "off", tiny_synthetic_root, config, "off")
    assert len(reference) > 0 and not store.exists()
    filling = _run(tmp_path / "fill", tiny_synthetic_root, config, str(store))
    files = {p.name: p.stat().st_mtime_ns for p in store.glob("*.pt")}
    # a train and a test pool for each of the two datasets
    assert sorted(name.rsplit("-", 3)[0] for name in files) == ["RegDB", "RegDB", "SYSU-MM01", "SYSU-MM01"]
    loading = _run(tmp_path / "load", tiny_synthetic_root, config, str(store))
    assert {p.name: p.stat().st_mtime_ns for p in store.glob("*.pt")} == files
    pd.testing.assert_frame_equal(filling, reference)
    pd.testing.assert_frame_equal(loading, reference)
