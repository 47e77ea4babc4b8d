"""An exclusive lock on a run folder, so that two ``ckda run`` processes never train into the same folder.

The lock is the file ``OUT/.ckda.lock``. It holds the owner's PID, host name, start time and command line (JSON), and
the owner keeps an exclusive ``flock`` on it while it runs. A second process is refused with
`RunLockedError` naming the holder. The lock never outlives its owner: the kernel drops a ``flock`` when the process
dies (even by SIGKILL), and where ``flock`` is unavailable the lock counts as stale once its PID is no longer alive on
this host. A lock held from another host is only ever released by its owner (or by deleting the file by hand).
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "lock_holder", "pid_alive"]

LOCK_NAME = ".ckda.lock"
"""File name of the lock inside the run folder."""


class RunLockedError(RuntimeError):
    """Another live process holds the run folder's lock; the message names it (PID, host, start, command)."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def lock_holder(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The owner record in lock file ``path`` (None if absent or unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process (owner record unreadable)"
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    return (f"PID {holder.get('pid', '?')} on host {holder.get('host', '?')} (since {when}: "
            f"{holder.get('command', '?')})")


class RunLock:
    """Exclusive lock on ``folder`` (created if needed); use as a context manager or call `acquire` / `release`.

    On release the lock file is removed, and the folder too when this lock created it and it is still empty (a run
    refused before training leaves nothing behind).
    """

    def __init__(self, folder: str | os.PathLike[str], *, command: str | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = " ".join(sys.argv) if command is None else command
        self._fd: int | None = None
        self._created_folder = False

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def _record(self) -> bytes:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                           "command": self.command}).encode("utf-8")

    def acquire(self) -> "RunLock":
        """Take the lock or raise `RunLockedError` naming the holder."""
        if self.held:
            return self
        if not self.folder.exists():
            self.folder.mkdir(parents=True)
            self._created_folder = True
        try:
            if fcntl is not None:
                self._acquire_flock()
            else:  # pragma: no cover - not POSIX
                self._acquire_exclusive_create()
        except BaseException:
            self._remove_created_folder()
            raise
        return self

    def _acquire_flock(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise RunLockedError(
                    f"{self.folder}: in use by {_describe(lock_holder(self.path))}; wait until it ends, or use "
                    f"another --out") from None
            try:  # the file may have been removed by its previous owner between open and flock: retry then
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, self._record())
            os.fsync(fd)
            self._fd = fd
            return

    def _acquire_exclusive_create(self) -> None:  # pragma: no cover - exercised only without fcntl
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = lock_holder(self.path)
                stale = (holder is not None and holder.get("host") == socket.gethostname()
                         and not pid_alive(int(holder.get("pid", -1))))
                if not stale:
                    raise RunLockedError(f"{self.folder}: in use by {_describe(holder)}; wait until it ends, or "
                                         f"delete {self.path} if that process is gone") from None
                self.path.unlink(missing_ok=True)
                continue
            os.write(fd, self._record())
            self._fd = fd
            return
        raise RunLockedError(f"{self.folder}: could not take the lock {self.path}")

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
        self._remove_created_folder()

    def _remove_created_folder(self) -> None:
        if self._created_folder:
            try:
                self.folder.rmdir()  # only if empty
            except OSError:
                pass
            self._created_folder = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
