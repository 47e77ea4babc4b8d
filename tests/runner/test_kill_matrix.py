"""Kill matrix: a CKDA run SIGKILLed at 11 named instants over two sessions (mid-training, mid-evaluation, between the
CSV rows and the checkpoint, right after each checkpoint write, ...) and then resumed ends with the same CSV, row for
row, as one uninterrupted run.

The kills are deterministic: ``CKDA_KILL_AT=<instant>`` (`ckda_avalanche.runner.fault_injection`) makes the run
SIGKILL itself at that instant. One driver process (this file run as a script, one torch thread, so runs are
bit-reproducible and forking is safe) runs the reference, then per instant forks a child that dies at the instant
and resumes the folder itself. The test checks each child really died by SIGKILL, that the folder was left in the
expected state, and that the resumed CSV equals the reference (every column, every row, in order; only the values
of ``train_time_s`` and ``peak_*`` rows, wall-clock seconds and measured memory, may differ).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from ckda_avalanche.evaluation.tidy_logger import MEASURED_METRICS

INSTANTS: dict[str, int] = {
    # instant -> sessions the checkpoint holds when the process dies there
    "session1:iteration1": 0,
    "session1:trained": 0,
    "session1:eval1": 0,
    "session1:rows": 0,
    "session1:checkpoint": 1,
    "session1:state": 1,
    "session2:iteration1": 1,
    "session2:eval1": 1,
    "session2:evaluated": 1,
    "session2:rows": 1,
    "session2:checkpoint": 2,
}
METHOD, SEED, RUN = "ckda", 5, "kill-matrix"
MEASURED = MEASURED_METRICS  # wall-clock seconds and measured peak memory: their values may differ


def _compare(reference: Path, resumed: Path) -> str | None:
    import pandas as pd

    want, got = pd.read_csv(reference, dtype=str), pd.read_csv(resumed, dtype=str)
    if len(want) != len(got):
        return f"{len(got)} rows instead of {len(want)}"
    timing = want["metric"].str.startswith(MEASURED)
    if not got["metric"].str.startswith(MEASURED).equals(timing):
        return "train_time_s / peak_* rows at other positions"
    same = (want == got).all(axis=1) | (timing & (want.drop(columns="value") == got.drop(columns="value")).all(axis=1))
    if not same.all():
        row = int((~same).to_numpy().nonzero()[0][0])
        return f"row {row + 2} differs: {got.iloc[row].tolist()} vs {want.iloc[row].tolist()}"
    return None


def _driver(root: Path, work: Path) -> None:
    import multiprocessing

    import torch

    torch.set_num_threads(1)
    from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
    from ckda_avalanche.models import get_model_config
    from ckda_avalanche.runner.config import get_preset
    from ckda_avalanche.runner.overrides import apply_overrides
    from ckda_avalanche.runner.session_runner import run_single
    from ckda_avalanche.runner.task import RunTask

    config = apply_overrides(get_preset("test"), {"datasets": ["regdb", "sysu"], "synthetic_scale": 0.15}, where="")
    method = RunTask.create(METHOD, SEED, work, config).method
    benchmark = vi_lreid_benchmark(root, datasets=config.datasets, protocol=config.protocol,
                                   img_size=tuple(get_model_config(config.model).img_size),
                                   **method.stream)

    def run(folder: Path, *, resume: bool, kill_at: str | None = None) -> None:
        if kill_at is not None:
            os.environ["CKDA_KILL_AT"] = kill_at
        run_single(RunTask(method=method, seed=SEED, run_dir=folder, config=config, run_name=RUN, resume=resume),
                   benchmark)

    run(work / "reference", resume=False)
    results = {}
    for instant in INSTANTS:
        folder = work / instant.replace(":", "_")
        child = multiprocessing.get_context("fork").Process(target=run, args=(folder,),
                                                             kwargs={"resume": False, "kill_at": instant})
        child.start()
        child.join()
        state = folder / "state.json"
        checkpoint = folder / "checkpoint.pt"
        sessions = (int(torch.load(checkpoint, map_location="cpu", weights_only=False)["sessions_done"])
                    if checkpoint.exists() else 0)
        results[instant] = {"exitcode": child.exitcode, "checkpoint_sessions": sessions,
                            "state_sessions": json.loads(state.read_text())["sessions_done"] if state.exists() else 0}
        run(folder, resume=True)
        results[instant]["diff"] = _compare(work / "reference" / "metrics.csv", folder / "metrics.csv")
    (work / "results.json").write_text(json.dumps(results, indent=1))


def test_kill_matrix_resumes_row_for_row(tmp_path, tiny_synthetic_root):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    env.pop("CKDA_KILL_AT", None)
    done = subprocess.run([sys.executable, __file__, str(tiny_synthetic_root), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results) == list(INSTANTS)
    for instant, expected_sessions in INSTANTS.items():
        outcome = results[instant]
        assert outcome["exitcode"] == -signal.SIGKILL, f"{instant}: the run was not killed there ({outcome})"
        assert outcome["checkpoint_sessions"] == expected_sessions, f"{instant}: {outcome}"
        # state.json is written after the checkpoint: right after the checkpoint write it still lags one session
        lag = 1 if instant.endswith(":checkpoint") else 0
        assert outcome["state_sessions"] == expected_sessions - lag, f"{instant}: {outcome}"
        assert outcome["diff"] is None, f"{instant}: resumed CSV differs from the uninterrupted run: {outcome['diff']}"


if __name__ == "__main__":
    _driver(Path(sys.argv[1]), Path(sys.argv[2]))
