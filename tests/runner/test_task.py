"""A run's task carries its method resolved once: the driver resolves each ``--methods`` name one time, and nothing
between the executor and the session (benchmark, run folder, config.json, strategy) parses a method name again."""
from __future__ import annotations

import json
import pickle

import pytest

from ckda_avalanche.cli import main
from ckda_avalanche.runner import variants
from ckda_avalanche.runner.config import get_preset
from ckda_avalanche.runner.overrides import apply_overrides
from ckda_avalanche.runner.task import RunTask
from ckda_avalanche.strategies.ewc import EWCConfig


def test_task_carries_the_resolved_method_and_pickles(tmp_path):
    config = apply_overrides(get_preset("test"), {"method_overrides": {"ewc": {"ewc_lambda": 7.0}}}, where="")
    task = RunTask.create("ewc[ewc_lambda=100]", 3, tmp_path / "out" / "ewc" / "seed3", config)
    # written out by hand: the variant's item wins over method_overrides, every other field keeps its default
    assert task.name == "ewc[ewc_lambda=100]" and task.method.base == "ewc" and task.run_name == "out"
    assert task.method.config == EWCConfig(ewc_lambda=100.0)
    assert pickle.loads(pickle.dumps(task)) == task  # what a Ray worker receives


@pytest.mark.slow
def test_each_method_is_resolved_once_per_run(tmp_path, tiny_synthetic_root, two_session_config, monkeypatch):
    calls: list[str] = []
    original = variants.resolve_method

    def counting(name, *args, **kwargs):
        calls.append(name)
        return original(name, *args, **kwargs)

    monkeypatch.setattr(variants, "resolve_method", counting)
    out = tmp_path / "run"
    assert main(["run", "--preset", "test", "--methods", "finetune,ewc[ewc_lambda=100]", "--seeds", "0", "1",
                 "--synthetic-dir", str(tiny_synthetic_root), "--config", str(two_session_config),
                 "--out", str(out), "--no-progress"]) == 0
    assert calls == ["finetune", "ewc[ewc_lambda=100]"]  # once per name, not per seed, session or step
    recorded = json.loads((out / "ewc[ewc_lambda=100]" / "seed1" / "config.json").read_text())
    assert recorded["method"] == "ewc[ewc_lambda=100]" and recorded["method_config"]["ewc_lambda"] == 100.0
