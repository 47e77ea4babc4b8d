"""The runner's checkpoint is the strategy's own ``state_dict()`` (clock and metric history included), and a
checkpoint in the earlier layout (metric state in a separate ``"metric"`` entry, no clock) still resumes to exactly
the rows of the uninterrupted run."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from ckda_avalanche.evaluation.tidy_logger import is_measured_metric
from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.models import get_model_config
from ckda_avalanche.runner import run_folder
from ckda_avalanche.runner.config import get_preset
from ckda_avalanche.runner.run_state import CHECKPOINT, METRICS
from ckda_avalanche.runner.session_runner import run_single
from ckda_avalanche.runner.task import RunTask

pytestmark = pytest.mark.filterwarnings("ignore:No loggers specified")


class _Stop(Exception):
    """Raised right after the first session's checkpoint, like a kill at that instant."""


def _scores(path):
    frame = pd.read_csv(path)
    frame = frame[~frame.metric.map(is_measured_metric)].drop(columns=["run"])
    return frame.sort_values(["train_exp", "eval_dataset", "trial", "metric"]).reset_index(drop=True)


def test_legacy_checkpoint_resumes_like_the_uninterrupted_run(tmp_path, monkeypatch):
    config = dataclasses.replace(get_preset("test"), datasets=("regdb", "sysu"))
    img_size = tuple(get_model_config(config.model).img_size)
    generate_synthetic(tmp_path / "data", seed=0, scale=0.05, img_size=img_size)  # smaller than the shared root
    benchmark = vi_lreid_benchmark(tmp_path / "data", datasets=config.datasets, protocol=config.protocol,
                                   img_size=img_size)

    def spec(name, resume=False):
        return RunTask.create("ckda", 0, tmp_path / name, config, run_name="run", resume=resume, device="cpu")

    reference = run_single(spec("reference"), benchmark)

    write_json = run_folder.atomic_write_json

    def stop_after_first_checkpoint(path, payload):
        write_json(path, payload)
        if path.name == "state.json" and payload["sessions_done"] == 1:
            raise _Stop

    monkeypatch.setattr(run_folder, "atomic_write_json", stop_after_first_checkpoint)
    with pytest.raises(_Stop):
        run_single(spec("killed"), benchmark)
    monkeypatch.undo()

    path = tmp_path / "killed" / CHECKPOINT
    checkpoint = torch.load(path, weights_only=False)
    assert "metric" not in checkpoint  # one source of truth: the strategy's own state
    state = checkpoint["strategy"]
    assert state["clock"]["train_exp_counter"] == 1 == checkpoint["sessions_done"]
    metric = state["evaluator"]["metrics"]["ReIDRetrievalPluginMetric"]
    assert metric["last_trained_exp"] == 0 and {c for _, c, _ in metric["history"]["mAP"]} == {0, 1}

    # rewrite it in the earlier layout, then resume
    checkpoint["metric"] = [metric]
    checkpoint["strategy"] = {k: v for k, v in state.items() if k not in ("clock", "evaluator")}
    torch.save(checkpoint, path)
    resumed = run_single(spec("killed", resume=True), benchmark)
    assert resumed == tmp_path / "killed" / METRICS
    expected, got = _scores(reference), _scores(resumed)
    assert (expected.metric == "forgetting/mAP").any() and sorted(set(expected.train_exp)) == [1, 2]
    pd.testing.assert_frame_equal(got, expected)
    assert "metric" not in torch.load(path, weights_only=False)  # rewritten in the current layout
