"""Hostile cases of the `ckda` command, each a fault a new user meets: boards mixing runs that cannot be compared,
damaged run CSVs, full or read-only disks, malformed ``CKDA_*`` variables, an identity with one modality, an image
over Pillow's decompression-bomb limit, SIGTERM and a dead Ray address. Each ends in the same numbers as a clean run,
or in one ``ckda: error:`` line (one ``ckda: warning:`` line per run left out of a board).

Every run uses the ``test`` preset on tiny synthetic data (two sessions: regdb, sysu).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.cli import main
from ckda_avalanche.evaluation.tidy_logger import is_measured_metric

REPO = Path(__file__).resolve().parents[2]
TWO_SESSIONS = {"datasets": ["regdb", "sysu"], "synthetic_scale": 0.15}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny_data")
    generate_synthetic(root, seed=0, scale=0.15)
    return root


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "two_sessions.json"
    path.write_text(json.dumps(TWO_SESSIONS))
    return path


def _run_args(out: Path, root: Path, config: Path, methods: str = "finetune", seeds=("0",)) -> list[str]:
    return ["run", "--preset", "test", "--methods", methods, "--seeds", *seeds, "--data", str(root),
            "--config", str(config), "--out", str(out), "--no-progress", "--cpus-per-run", "1"]  # one thread:
    # bit-identical numbers in this process and in a subprocess


@pytest.fixture(scope="module")
def board_runs(tmp_path_factory, tiny_root, config_file) -> Path:
    """A finished folder: finetune seeds 0 and 1 (two sessions each), and a third run, "lwf" seed 0, made from
    finetune seed 1's files (method and seed rewritten): the boards below rank finetune (2 seeds) and lwf."""
    out = tmp_path_factory.mktemp("board") / "board"
    assert main(_run_args(out, tiny_root, config_file, seeds=("0", "1"))) == 0
    other = out / "lwf" / "seed0"
    shutil.copytree(out / "finetune" / "seed1", other)
    frame = pd.read_csv(other / "metrics.csv", dtype=str, keep_default_na=False)
    frame["method"], frame["seed"] = "lwf", "0"
    frame.to_csv(other / "metrics.csv", index=False)
    record = json.loads((other / "config.json").read_text())
    record.update(method="lwf", base_method="lwf", seed=0)
    (other / "config.json").write_text(json.dumps(record))
    return out


def _copy(board_runs: Path, tmp_path: Path) -> Path:
    out = tmp_path / "board"
    shutil.copytree(board_runs, out, ignore=shutil.ignore_patterns("leaderboard.*", "ablation.*", "plots"))
    return out


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith("ckda: error: "), err
    return lines[-1]


def _board(out: Path, capsys) -> tuple[int, pd.DataFrame | None, str]:
    rc = main(["leaderboard", str(out)])
    err = capsys.readouterr().err
    board = pd.read_csv(out / "leaderboard.csv") if (out / "leaderboard.csv").exists() else None
    return rc, board, err


# --- 4: the leaderboard ranks only comparable runs -------------------------------------------------------------

def test_runs_with_other_epochs_are_left_out_by_name(board_runs, tmp_path, capsys):
    out = _copy(board_runs, tmp_path)
    config_path = out / "lwf" / "seed0" / "config.json"
    record = json.loads(config_path.read_text())
    record["run_config"]["train"]["epochs"] = 3
    config_path.write_text(json.dumps(record))
    rc, board, err = _board(out, capsys)
    assert rc == 0
    assert set(board["method"]) == {"finetune"} and int(board["seeds"].iloc[0]) == 2
    warning = [line for line in err.splitlines() if "'board' (method lwf, seed 0" in line]
    assert len(warning) == 1 and warning[0].startswith("ckda: warning: ")
    assert "not comparable" in warning[0] and "train.epochs 3 here, 1 on the board" in warning[0]


def test_a_setting_changed_on_resume_is_not_comparable(board_runs, tmp_path, capsys):
    out = _copy(board_runs, tmp_path)
    config_path = out / "lwf" / "seed0" / "config.json"
    record = json.loads(config_path.read_text())
    record["overrides"] = [{"after_session": 1, "changed": {"train.epochs": [3, 1]}}]  # what --resume-override writes
    config_path.write_text(json.dumps(record))
    rc, board, err = _board(out, capsys)
    assert rc == 0 and set(board["method"]) == {"finetune"}
    assert "train.epochs 3, then 1 after session 1 here, 1 on the board" in err


def test_runs_with_another_session_order_are_left_out(board_runs, tmp_path, capsys):
    out = _copy(board_runs, tmp_path)
    csv_path = out / "lwf" / "seed0" / "metrics.csv"
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    swap = {"regdb": "sysu", "sysu": "regdb"}
    frame["eval_dataset"] = frame["eval_dataset"].map(lambda d: swap.get(d, d))
    frame = pd.concat([frame[frame.eval_dataset == "sysu"], frame[frame.eval_dataset != "sysu"]])
    frame = frame.sort_values("train_exp", kind="stable")  # sysu is now evaluated first: order sysu > regdb
    frame.to_csv(csv_path, index=False)
    rc, board, err = _board(out, capsys)
    assert rc == 0 and set(board["method"]) == {"finetune"}
    assert "datasets (session order) sysu > regdb here, regdb > sysu on the board" in err


# --- 5 and 6: damaged CSVs are named and left out; the others are ranked ---------------------------------------

DAMAGE = {
    "empty": (lambda text: "", "empty file"),
    "header only": (lambda text: text.splitlines(keepends=True)[0], "header only"),
    "extra column on every row": (
        lambda text: "".join(line.rstrip("\n") + ",x\n" for line in text.splitlines(keepends=True)),
        "line 1 is not the tidy CSV header"),
    "extra field on every data row": (
        lambda text: text.splitlines(keepends=True)[0]
        + "".join(line.rstrip("\n") + ",x\n" for line in text.splitlines(keepends=True)[1:]),
        "line 2 has 10 fields, expected 9"),
    "truncated last line": (lambda text: text[: len(text) - 9], "is incomplete (no line end"),
    "repeated header": (
        lambda text: text + text.splitlines(keepends=True)[0] + "".join(text.splitlines(keepends=True)[1:3]),
        "repeats the header"),
    "one row with an extra field": (
        lambda text: "".join(line if i != 5 else line.rstrip("\n") + ",0.5\n"
                             for i, line in enumerate(text.splitlines(keepends=True))),
        "line 6 has 10 fields"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_csv_is_named_and_the_others_ranked(board_runs, tmp_path, capsys, damage):
    out = _copy(board_runs, tmp_path)
    csv_path = out / "lwf" / "seed0" / "metrics.csv"
    edit, reason = DAMAGE[damage]
    csv_path.write_text(edit(csv_path.read_text()))
    rc, board, err = _board(out, capsys)
    assert rc == 0, err
    assert set(board["method"]) == {"finetune"} and int(board["seeds"].iloc[0]) == 2
    named = [line for line in err.splitlines() if str(csv_path) in line]
    assert len(named) == 1 and named[0].startswith("ckda: warning: ") and reason in named[0], err


def test_a_nan_final_score_leaves_that_run_out(board_runs, tmp_path, capsys):
    out = _copy(board_runs, tmp_path)
    csv_path = out / "lwf" / "seed0" / "metrics.csv"
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    final = (frame.train_exp == "2") & (frame.eval_dataset == "regdb") & (frame.trial == "mean") & (
        frame.metric == "mAP")
    frame.loc[final, "value"] = "nan"
    frame.to_csv(csv_path, index=False)
    rc, board, err = _board(out, capsys)
    assert rc == 0 and set(board["method"]) == {"finetune"}
    assert "(method lwf, seed 0" in err and "no mAP of regdb after session 2 (R[2, 0] is NaN)" in err


@pytest.mark.parametrize("command", ["leaderboard", "plot"])
def test_board_and_plot_on_an_empty_or_missing_folder_are_one_line(tmp_path, capsys, command):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        assert main([command, str(folder)]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert str(folder) in line
    assert not (tmp_path / "missing").exists()  # nothing created for a folder that was not there


# --- 6: disks and environment ----------------------------------------------------------------------------------

def _csv_equal_but_times(want: Path, got: Path) -> None:
    a, b = (pd.read_csv(path, dtype=str).drop(columns="run") for path in (want, got))  # run: the folder's name
    assert len(a) == len(b)
    timing = a.metric.map(is_measured_metric)
    pd.testing.assert_frame_equal(a[~timing].reset_index(drop=True), b[~timing].reset_index(drop=True))


def test_full_disk_under_out_is_one_line_and_resume_gives_the_clean_numbers(board_runs, tmp_path, tiny_root,
                                                                             config_file, capsys, monkeypatch):
    import ckda_avalanche.evaluation.tidy_logger as tidy_logger

    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync(fd):  # the 4th append to metrics.csv (session 2's evaluation rows) meets a full disk
        if os.readlink(f"/proc/self/fd/{fd}").endswith("metrics.csv"):
            calls["n"] += 1
            if calls["n"] == 4:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(tidy_logger.os, "fsync", fsync)
    out = tmp_path / "full"
    assert main(_run_args(out, tiny_root, config_file)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "no space left on the device" in line and "--resume" in line and "metrics.csv" in line
    text = (out / "finetune" / "seed0" / "metrics.csv").read_text()
    assert calls["n"] == 4 and text.endswith("\n") and all(len(row.split(",")) == 9 for row in text.splitlines())
    monkeypatch.setattr(tidy_logger.os, "fsync", real_fsync)
    assert main(_run_args(out, tiny_root, config_file) + ["--resume"]) == 0
    capsys.readouterr()
    _csv_equal_but_times(board_runs / "finetune" / "seed0" / "metrics.csv", out / "finetune" / "seed0" / "metrics.csv")


def test_full_disk_on_the_checkpoint_is_one_line(tmp_path, tiny_root, config_file, capsys, monkeypatch):
    import ckda_avalanche.runner.atomic as atomic

    def save(obj, handle):  # what torch's zip writer does when the disk is full
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(atomic.torch, "save", save)
    monkeypatch.setattr(atomic, "_write_errno", lambda folder: errno.ENOSPC)
    assert main(_run_args(tmp_path / "run", tiny_root, config_file)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "checkpoint.pt" in line and "no space left" in line and "--resume" in line
    assert not list((tmp_path / "run" / "finetune" / "seed0").glob(".checkpoint.pt.*"))  # no temporary left


def test_full_disk_under_the_decoded_store_warns_and_goes_on(tmp_path, monkeypatch):
    import torch

    from ckda_avalanche.benchmarks import decoded_store

    def save(obj, handle):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(decoded_store.torch, "save", save)
    store = decoded_store.DecodedStore(tmp_path / "store" / "x.pt", key="k", shape=(1, 3, 2, 2))
    with pytest.warns(decoded_store.DecodedStoreWarning, match="cannot be written"):
        assert store.save(torch.zeros(1, 3, 2, 2, dtype=torch.uint8)) is False
    assert not any((tmp_path / "store").iterdir())


def test_read_only_out_is_one_line(tmp_path, tiny_root, config_file, capsys, monkeypatch):
    import ckda_avalanche.runner.lock as lock

    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(lock.os, "open", read_only)
    (tmp_path / "ro").mkdir()
    assert main(_run_args(tmp_path / "ro" / "run", tiny_root, config_file)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "read-only file system" in line and str(tmp_path / "ro") in line


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def test_a_real_full_tmpfs_never_leaves_a_half_csv_line(tmp_path):
    from ckda_avalanche.evaluation import append_extra_rows

    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=64k"):
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        csv_path = disk / "metrics.csv"
        row = {"run": "r", "method": "m", "seed": 0, "train_exp": 1, "eval_dataset": "-", "protocol": "paper",
               "trial": "-", "metric": "train_time_s", "value": 1.0}
        append_extra_rows(csv_path, [row])
        before = csv_path.read_bytes()
        with pytest.raises(OSError) as caught:
            append_extra_rows(csv_path, [dict(row, metric="x" * 200)] * 2000)  # ~450 KB on a 64 KB disk
        assert caught.value.errno == errno.ENOSPC
        assert csv_path.read_bytes() == before  # cut back: no half line
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("CKDA_DATA_CACHE_LIMIT", "lots", "expected a number of bytes"),
    ("CKDA_DATA_CACHE", "fast", "expected one of auto, memory, off"),
    ("CKDA_DECODED_CACHE_MAX", "-3G", "expected a number of bytes"),
    ("CKDA_FAULT_INJECT", "ckda:zero", "expected METHOD:SEED:SESSION:ITERATION:MARKER_FILE"),
])
def test_a_malformed_environment_variable_is_one_line(tmp_path, tiny_root, config_file, capsys, monkeypatch,
                                                      variable, value, expected):
    monkeypatch.setenv(variable, value)
    assert main(_run_args(tmp_path / "run", tiny_root, config_file)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert variable in line and expected in line
    assert not (tmp_path / "run").exists()  # refused before anything was written


# --- 7 and 8: data that passes the quick check but cannot train -----------------------------------------------

def test_one_modality_identity_is_found_by_data_check_and_refused_before_training(tmp_path, tiny_root,
                                                                                config_file, capsys):
    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    sysu = root / "SYSU-MM01"
    pid = int((sysu / "exp" / "train_id.txt").read_text().split(",")[0])
    for camera in ("cam3", "cam6"):  # the infrared cameras
        shutil.rmtree(sysu / camera / f"{pid:04d}", ignore_errors=True)
    visible_file = sorted((sysu / "cam1" / f"{pid:04d}").iterdir())[0]
    assert main(["data", "check", str(root)]) == 1
    printed = capsys.readouterr().out
    assert f"training identity {pid} has" in printed and "no infrared image" in printed
    assert main(["data", "check", str(root), "--deep", "--no-progress"]) == 1
    assert f"training identity {pid} has" in capsys.readouterr().out
    out = tmp_path / "run"
    assert main(_run_args(out, root, config_file)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"training identity {pid} has" in line
    assert str(visible_file.parent) in line
    assert not (out / "finetune" / "seed0" / "checkpoint.pt").exists()  # refused before session 1, not at 2


def _bomb(root: Path) -> Path:
    from PIL import Image

    target = sorted((root / "RegDB" / "Visible").rglob("*.bmp"))[0]
    Image.new("RGB", (400, 400), (10, 20, 30)).save(target)
    return target


def test_an_image_over_the_decompression_bomb_limit_is_listed_and_named(tmp_path, tiny_root, config_file, capsys,
                                                                       monkeypatch):
    from PIL import Image

    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    big = _bomb(root)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 60_000)  # 400 x 400 = 160,000 > twice the limit
    assert main(["data", "check", str(root), "--deep", "--no-progress", "--workers", "1"]) == 1
    printed = capsys.readouterr().out
    assert str(big) in printed and "decompression-bomb limit" in printed
    assert main(_run_args(tmp_path / "run", root, config_file)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(big) in line and "decompression-bomb limit" in line


# --- 9: signals and Ray -----------------------------------------------------------------------------------------

def _cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ckda_avalanche.cli", *args], capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=REPO)


def test_sigterm_is_a_clean_stop_and_resume_gives_the_clean_numbers(board_runs, tmp_path, tiny_root, config_file):
    out = tmp_path / "term"
    args = _run_args(out, tiny_root, config_file)
    stopped = _cli(args, env={"CKDA_KILL_AT": "session2:iteration1", "CKDA_KILL_SIGNAL": "TERM"})
    assert stopped.returncode == 143, stopped.stderr
    lines = [line for line in stopped.stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stopped.stderr
    assert lines[-1].startswith("terminated (SIGTERM)") and "--resume" in lines[-1]
    assert json.loads((out / "finetune" / "seed0" / "state.json").read_text())["sessions_done"] == 1
    resumed = _cli(args + ["--resume"])
    assert resumed.returncode == 0, resumed.stderr
    _csv_equal_but_times(board_runs / "finetune" / "seed0" / "metrics.csv", out / "finetune" / "seed0" / "metrics.csv")


def test_a_dead_ray_address_fails_within_seconds(tmp_path, tiny_root, config_file, capsys, monkeypatch):
    import ckda_avalanche.runner.validate  # noqa: F401 - imports (avalanche: seconds) outside the timed part
    import ckda_avalanche.strategies  # noqa: F401

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # nothing listens on port 1
    started = time.perf_counter()
    assert main(_run_args(tmp_path / "ray", tiny_root, config_file) + ["--executor", "ray"]) == 2
    assert time.perf_counter() - started < 10
    line = _one_error_line(capsys.readouterr().err)
    assert "$RAY_ADDRESS 127.0.0.1:1" in line and "no Ray head answers" in line


def test_sigterm_handler_raises_keyboard_interrupt_in_the_main_thread():
    from ckda_avalanche.runner.faults import SigtermInterrupt, sigterm_as_interrupt

    with pytest.raises(KeyboardInterrupt) as caught, sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert isinstance(caught.value, SigtermInterrupt)
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None) or callable(signal.getsignal(signal.SIGTERM))


class _FakeRay:
    """Just enough of Ray for `run_on_ray`: ``init`` installs Ray's own SIGTERM handler (a bare ``sys.exit``), and
    the first ``wait`` receives SIGTERM."""

    class exceptions:  # noqa: N801 - mirrors ray.exceptions
        RayError = RuntimeError

    def __init__(self) -> None:
        self.cancelled: list[object] = []
        self.shut_down = False

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs) -> None:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))  # what ray.init does

    def nodes(self) -> list[dict]:  # one alive 2-CPU node (the executor sizes each run's image cache from it)
        return [{"Alive": True, "Resources": {"CPU": 2.0}, "NodeID": "n0", "NodeManagerAddress": "127.0.0.1"}]

    def remote(self, function):
        fake = self

        class Remote:
            def options(self, **kwargs):
                return self

            def remote(self, task):
                return f"ref-{task.name}-{task.seed}"

        return Remote()

    def wait(self, refs, num_returns):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        raise AssertionError("SIGTERM did not interrupt the wait")

    def cancel(self, ref, force):
        self.cancelled.append(ref)

    def shutdown(self) -> None:
        self.shut_down = True


def test_sigterm_under_ray_cancels_the_tasks_and_shuts_ray_down(tmp_path, monkeypatch):
    from ckda_avalanche.runner import ray_executor
    from ckda_avalanche.runner.config import get_preset
    from ckda_avalanche.runner.executors import ExecutorOptions
    from ckda_avalanche.runner.faults import SigtermInterrupt, sigterm_as_interrupt
    from ckda_avalanche.runner.task import RunTask

    fake = _FakeRay()
    monkeypatch.setattr(ray_executor, "_ray", lambda: fake)
    monkeypatch.setattr(ray_executor, "check_resources", lambda options: None)
    monkeypatch.setattr(ray_executor, "check_shared_paths", lambda out, data: None)
    tasks = [RunTask.create("finetune", s, tmp_path / "r" / "finetune" / f"seed{s}", get_preset("test"),
                            data_root=tmp_path) for s in (0, 1)]
    with sigterm_as_interrupt():  # as in the `ckda` command
        cli_handler = signal.getsignal(signal.SIGTERM)
        with pytest.raises(SigtermInterrupt):
            ray_executor.run_on_ray(tasks, ExecutorOptions(executor="ray", progress=False))
        assert signal.getsignal(signal.SIGTERM) is cli_handler  # Ray's bare-exit handler is gone again
    assert sorted(fake.cancelled) == ["ref-finetune-0", "ref-finetune-1"] and fake.shut_down
