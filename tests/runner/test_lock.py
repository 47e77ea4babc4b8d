"""The run-folder lock: a second holder is refused naming the first (PID, host), a lock whose owner died (even by
SIGKILL) is taken over, and ``ckda run --resume`` on a folder in use is refused before anything is touched."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckda_avalanche.cli import main
from ckda_avalanche.runner.lock import LOCK_NAME, RunLock, RunLockedError, lock_holder, pid_alive

REPO = Path(__file__).resolve().parents[2]


def test_second_holder_is_refused_naming_the_first(tmp_path):
    folder = tmp_path / "run"
    with RunLock(folder, command="ckda run first") as first:
        assert first.held and folder.is_dir()
        holder = lock_holder(folder / LOCK_NAME)
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(RunLockedError, match=rf"in use by PID {os.getpid()} on host "
                                                 rf"{socket.gethostname()} .*ckda run first"):
            RunLock(folder).acquire()
    assert not (folder / LOCK_NAME).exists()
    assert not folder.exists()  # created by the lock and left empty: removed with it
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "metrics.csv").write_text("x")
    with RunLock(kept):
        pass
    assert kept.is_dir() and not (kept / LOCK_NAME).exists()


def test_lock_of_a_dead_process_is_stale(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not pid_alive(dead.pid)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": 0,
                                                "command": "ckda run (crashed)"}))
    with RunLock(folder):
        assert lock_holder(folder / LOCK_NAME)["pid"] == os.getpid()


def test_lock_held_by_another_process_then_sigkilled(tmp_path):
    folder = tmp_path / "run"
    code = ("import sys, time; from ckda_avalanche.runner.lock import RunLock; "
            f"RunLock({str(folder)!r}, command='holder').acquire(); print('locked', flush=True); time.sleep(60)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"PID {holder.pid} on host {socket.gethostname()}"):
            RunLock(folder).acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert (folder / LOCK_NAME).exists()  # SIGKILL left the file behind ...
    deadline = time.monotonic() + 10
    while True:  # ... but not the lock
        try:
            with RunLock(folder):
                assert lock_holder(folder / LOCK_NAME)["pid"] == os.getpid()
            break
        except RunLockedError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_cli_refuses_a_folder_in_use(tmp_path, tiny_synthetic_root, two_session_config, capsys):
    out = tmp_path / "run"
    with RunLock(out, command="ckda run --out run"):
        rc = main(["run", "--preset", "test", "--methods", "finetune", "--synthetic-dir", str(tiny_synthetic_root),
                   "--config", str(two_session_config), "--out", str(out), "--resume", "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2
        assert err.startswith("ckda: error: ") and err.count("\n") == 1
        assert f"in use by PID {os.getpid()} on host {socket.gethostname()}" in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing trained or written
