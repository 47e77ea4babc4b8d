"""`ckda run --executor ray` on a local Ray cluster started by this module (2 CPUs, small object store).

Expected values come from the local executor, run in this process with the same threads per run (1): the Ray
executor must reproduce its metrics exactly, survive a worker killed in the middle of a session (Ray retries the
task, which resumes from the last finished session), and report a deterministic failure once without retrying it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ckda_avalanche.cli import main
from ckda_avalanche.runner.executors import ExecutorError, ExecutorOptions
from ckda_avalanche.runner.run_state import ATTEMPTS
from ckda_avalanche.runner.fault_injection import FAULT_ENV, FaultSpec, FaultSpecError

ray = pytest.importorskip("ray")

SCORE_METRICS = {"mAP", "Rank1", "Rank5", "Rank10", "mINP"}
TINY = {"datasets": ["regdb", "sysu"], "synthetic_scale": 0.15}


def _scores(csv: Path) -> pd.DataFrame:
    frame = pd.read_csv(csv)
    frame = frame[frame.metric.isin(SCORE_METRICS) | frame.metric.str.startswith(("forgetting/", "bwt/"))]
    return frame.drop(columns=["run"]).sort_values(
        ["train_exp", "eval_dataset", "trial", "metric"]).reset_index(drop=True)


def _attempts(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / ATTEMPTS).read_text().splitlines() if line.strip()]


def _run(out: Path, root: Path, config: Path, methods: str, *extra: str) -> int:
    return main(["run", "--preset", "test", "--methods", methods, "--seeds", "0", "--data", "synthetic",
                 "--synthetic-dir", str(root), "--config", str(config), "--out", str(out), "--no-progress",
                 "--cpus-per-run", "1", *extra])


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the module: 2 CPUs, 100 MB object store, no dashboard."""
    ray.init(num_cpus=2, num_gpus=0, object_store_memory=100 * 1024**2, include_dashboard=False,
             logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory, tiny_synthetic_root, config_file) -> Path:
    out = tmp_path_factory.mktemp("local") / "grid"
    assert _run(out, tiny_synthetic_root, config_file, "finetune,ckda") == 0
    return out


def test_two_concurrent_ray_runs_match_local(tmp_path, tiny_synthetic_root, config_file, local_reference,
                                             ray_cluster, capsys):
    out = tmp_path / "grid"
    assert _run(out, tiny_synthetic_root, config_file, "finetune,ckda", "--executor", "ray") == 0
    printed = capsys.readouterr().out
    for method in ("finetune", "ckda"):
        assert f"finished {method} seed 0" in printed
        expected = _scores(local_reference / method / "seed0" / "metrics.csv")
        assert len(expected) > 0
        pd.testing.assert_frame_equal(_scores(out / method / "seed0" / "metrics.csv"), expected)
        (attempt,) = _attempts(out / method / "seed0")
        assert attempt["executor"] == "ray" and attempt["threads"] == 1
        for name in ("config.json", "env.json", "checkpoint.pt", "state.json"):
            assert (out / method / "seed0" / name).is_file()
    # two worker processes: the runs were not serialised through one worker
    assert _attempts(out / "ckda" / "seed0")[0]["pid"] != _attempts(out / "finetune" / "seed0")[0]["pid"]
    # the driver's leaderboard equals the local one, except the measured training time and peak memory
    board, reference = pd.read_csv(out / "leaderboard.csv"), pd.read_csv(local_reference / "leaderboard.csv")
    timing = [c for c in board.columns if "time" in c.lower() or c.startswith("peak_")]  # measured per process
    assert timing, "expected a training-time column to leave out"
    pd.testing.assert_frame_equal(board.drop(columns=timing), reference.drop(columns=timing))
    assert (out / "plots" / "seen_mAP_paper.png").is_file()


def test_killed_worker_is_retried_and_resumes_from_last_session(tmp_path, tiny_synthetic_root, config_file,
                                                                local_reference, ray_cluster, monkeypatch, capsys):
    out = tmp_path / "grid"
    marker = tmp_path / "killed.marker"
    monkeypatch.setenv(FAULT_ENV, f"ckda:0:2:1:{marker}")  # die after iteration 1 of session 2
    assert _run(out, tiny_synthetic_root, config_file, "ckda", "--executor", "ray") == 0
    assert marker.is_file(), "the injected fault never fired"
    first, second = _attempts(out / "ckda" / "seed0")
    assert first["sessions_done"] == 0 and second["sessions_done"] == 1  # the retry resumed after session 1
    assert first["pid"] != second["pid"]
    assert "2 attempts" in capsys.readouterr().out
    pd.testing.assert_frame_equal(_scores(out / "ckda" / "seed0" / "metrics.csv"),
                                  _scores(local_reference / "ckda" / "seed0" / "metrics.csv"))
    train_times = pd.read_csv(out / "ckda" / "seed0" / "metrics.csv").query("metric == 'train_time_s'")
    assert sorted(train_times.train_exp) == [1, 2]  # the killed session's partial rows were dropped


def test_deterministic_failure_is_reported_once_and_not_retried(tmp_path, tiny_synthetic_root, ray_cluster,
                                                                capsys):
    config = tmp_path / "nan.json"
    config.write_text(json.dumps({**TINY, "train": {"lr": 1e30, "warmup_epochs": 0}}))  # NaN loss at once
    out = tmp_path / "grid"
    assert _run(out, tiny_synthetic_root, config, "finetune,ckda", "--executor", "ray") == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    for method in ("finetune", "ckda"):
        assert len(_attempts(out / method / "seed0")) == 1, f"{method} was retried"
        assert text.count(f"{method} seed 0 failed: RunFailedError") == 2  # its line, and the final summary
    assert "non-finite training loss" in captured.err and "ckda: error: 2 of 2 run(s) failed" in captured.err
    assert not (out / "leaderboard.csv").exists()


def test_ray_refuses_existing_run_folder_before_submitting(tmp_path, tiny_synthetic_root, config_file,
                                                           local_reference, ray_cluster, capsys):
    assert _run(local_reference, tiny_synthetic_root, config_file, "ckda", "--executor", "ray") == 2
    assert "--resume" in capsys.readouterr().err
    assert len(_attempts(local_reference / "ckda" / "seed0")) == 1  # nothing was started


def test_unschedulable_resources_are_a_clear_error(tmp_path, tiny_synthetic_root, config_file, ray_cluster,
                                                   capsys):
    assert _run(tmp_path / "grid", tiny_synthetic_root, config_file, "ckda", "--executor", "ray",
                "--gpus-per-run", "0.5") == 2
    assert "--gpus-per-run 0.5: the largest node of the Ray cluster has 0 GPUs" in capsys.readouterr().err


def test_unreachable_ray_address_is_a_clear_error_not_a_hang():
    from ckda_avalanche.runner.ray_executor import connect

    for address in ("127.0.0.1:1", "127.0.0.1:notaport"):
        with pytest.raises(ExecutorError, match=f"--ray-address {address}: no Ray head answers there"):
            connect(address)


@pytest.mark.parametrize("kwargs, message", [
    ({"executor": "local", "ray_address": "auto"}, "--ray-address needs --executor ray"),
    ({"executor": "local", "gpus_per_run": 0.5}, "--gpus-per-run needs --executor ray"),
    ({"executor": "ray", "cpus_per_run": 0.0}, "--cpus-per-run: expected a number > 0"),
    ({"executor": "ray", "gpus_per_run": 1.5}, "--gpus-per-run: a fraction must be below 1"),
    ({"executor": "ray", "gpus_per_run": -1.0}, "--gpus-per-run: expected a number >= 0"),
    ({"executor": "ray", "max_retries": -1}, "--max-retries: expected >= 0"),
])
def test_executor_options_are_validated(kwargs, message):
    with pytest.raises(ExecutorError, match=message):
        ExecutorOptions(**kwargs)


def test_threads_follow_cpus_per_run():
    assert ExecutorOptions(executor="ray").threads() == 1
    assert ExecutorOptions(executor="ray", cpus_per_run=2.5).threads() == 2
    assert ExecutorOptions(executor="ray", cpus_per_run=0.5).threads() == 1
    assert ExecutorOptions(executor="local").threads() is None
    assert ExecutorOptions(executor="local", cpus_per_run=2).threads() == 2


def test_fault_spec_parsing(tmp_path):
    spec = FaultSpec.parse(f"ckda:3:2:5:{tmp_path}/a:b")
    assert (spec.method, spec.seed, spec.session, spec.iteration, spec.marker) == ("ckda", 3, 2, 5,
                                                                                  Path(f"{tmp_path}/a:b"))
    assert spec.targets("ckda", 3) and not spec.targets("ckda", 0) and not spec.targets("lwf", 3)
    for bad in ("ckda:0:1", "ckda:x:1:1:m", "ckda:0:0:1:m", ":0:1:1:m"):
        with pytest.raises(FaultSpecError, match=FAULT_ENV):
            FaultSpec.parse(bad)
