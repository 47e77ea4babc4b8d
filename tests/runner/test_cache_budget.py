"""Runs packed on one node share the node's decoded-image cache budget."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from ckda_avalanche.benchmarks.cache_budget import per_run_cache_limit
from ckda_avalanche.runner.execute import build_benchmark
from ckda_avalanche.runner.task import RunTask
from ckda_avalanche.runner.config import get_preset
from ckda_avalanche.runner.executors import ExecutorOptions
from ckda_avalanche.runner.ray_executor import runs_per_node


def test_budget_divided_by_runs_on_the_node(monkeypatch):
    monkeypatch.setenv("CKDA_DATA_CACHE_LIMIT", "8G")
    assert per_run_cache_limit(1) == 8 * 2**30
    assert per_run_cache_limit(4) == 2 * 2**30
    assert per_run_cache_limit(3, node_limit=100) == 33
    with pytest.raises(ValueError, match="runs_per_node: expected >= 1"):
        per_run_cache_limit(0)


def _node(cpu, gpu=0.0, alive=True):
    return {"Alive": alive, "Resources": {"CPU": cpu, **({"GPU": gpu} if gpu else {})}}


def test_runs_per_node_from_ray_resources():
    ray = ExecutorOptions(executor="ray")  # 1 CPU per run
    assert runs_per_node([_node(16)], ray, 27) == 16
    assert runs_per_node([_node(16)], ray, 5) == 5  # never more than the runs there are
    assert runs_per_node([_node(8), _node(32, alive=False)], ray, 27) == 8  # dead nodes do not count
    four_cpus = ExecutorOptions(executor="ray", cpus_per_run=4)
    assert runs_per_node([_node(16), _node(6)], four_cpus, 27) == 4  # the node packing the most
    quarter_gpu = ExecutorOptions(executor="ray", cpus_per_run=2, gpus_per_run=0.25)
    assert runs_per_node([_node(16, gpu=1)], quarter_gpu, 27) == 4  # GPU-bound: 4 of 8 CPU slots
    assert runs_per_node([_node(4, gpu=1)], quarter_gpu, 27) == 2  # CPU-bound
    assert runs_per_node([], ray, 3) == 1


def test_packed_run_benchmark_gets_its_share(monkeypatch, tmp_path):
    seen = {}

    def fake_stream(root, **kwargs):
        seen.update(kwargs)
        return SimpleNamespace(train_stream=[])  # nothing to check for one-modality identities

    monkeypatch.setattr("ckda_avalanche.benchmarks.streams.vi_lreid_benchmark", fake_stream)
    monkeypatch.setenv("CKDA_DATA_CACHE_LIMIT", "12G")
    build_benchmark(RunTask.create("finetune", 0, tmp_path / "r", get_preset("test"), data_root=tmp_path,
                                    runs_per_node=3))
    assert seen["cache_limit_bytes"] == 4 * 2**30
    seen.clear()
    build_benchmark(RunTask.create("finetune", 0, tmp_path / "r", get_preset("test"), data_root=tmp_path))
    assert "cache_limit_bytes" not in seen  # alone on the node: the stream's own default (the whole budget)
