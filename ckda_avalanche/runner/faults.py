"""Faults of the machine around a run, turned into one-line messages: environment variables, disks, signals, Ray.

- `check_environment`: every ``CKDA_*`` variable the package reads is parsed once before a command does anything,
  so a malformed value is one `ConfigError` naming the variable and what was expected (not a traceback halfway
  through the first session).
- `describe_os_error`: a full disk, a read-only or unwritable folder, ... as one line naming the file, with the
  resume hint when finished sessions are saved.
- `sigterm_as_interrupt`: SIGTERM (``kill``, a scheduler's time limit, ``docker stop``) raises `KeyboardInterrupt`
  in the main thread, so it takes the same path as Ctrl-C: the session in progress is abandoned, every finished
  session stays in its checkpoint, and the command ends with one line and the resume hint.
- `probe_ray_address`: a ``HOST:PORT`` Ray address (``--ray-address`` or ``$RAY_ADDRESS``) is tried with a short
  TCP connect before ``ray.init``, which keeps retrying a dead head for minutes.
"""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import threading
from collections.abc import Iterator

from ckda_avalanche.runner.overrides import ConfigError

__all__ = ["RESUME_HINT", "SigtermInterrupt", "check_environment", "describe_os_error", "probe_ray_address",
           "restore_sigterm", "sigterm_as_interrupt"]

RESUME_HINT = "finished sessions are saved; rerun the same command with --resume to continue"
"""What a run that stopped early says about its folder."""
RAY_PROBE_TIMEOUT_S = 3.0
"""Seconds the TCP probe of a Ray head waits."""


class SigtermInterrupt(KeyboardInterrupt):
    """The `KeyboardInterrupt` raised by SIGTERM (`sigterm_as_interrupt`)."""


def check_environment(environ: dict[str, str] | None = None) -> None:
    """Parse every ``CKDA_*`` variable the package reads; `ConfigError` naming the first malformed one."""
    from ckda_avalanche.benchmarks import decoded_store, image_store
    from ckda_avalanche.benchmarks.byte_sizes import parse_bytes
    from ckda_avalanche.runner.fault_injection import FAULT_ENV, KILL_ENV, FaultSpec

    env = os.environ if environ is None else environ
    checks = [(image_store.LIMIT_ENV, lambda v: parse_bytes(v, f"${image_store.LIMIT_ENV}")),
              (decoded_store.MAX_ENV, lambda v: parse_bytes(v, f"${decoded_store.MAX_ENV}")),
              (image_store.CACHE_ENV, _cache_mode),
              (FAULT_ENV, FaultSpec.parse),
              (decoded_store.DIR_ENV, _store_dir),
              (KILL_ENV, _kill_instant)]
    for name, parse in checks:
        value = env.get(name)
        if value is None or not value.strip():
            continue
        try:
            parse(value)
        except (ValueError, TypeError) as exc:
            text = str(exc)
            raise ConfigError(text if name in text else f"${name}={value!r}: {text}") from None


def _cache_mode(value: str) -> None:
    from ckda_avalanche.benchmarks.image_store import CACHE_ENV, CACHE_MODES

    mode = value.strip().lower()
    if mode not in CACHE_MODES:
        raise ValueError(f"${CACHE_ENV}={value!r}: expected one of {', '.join(CACHE_MODES)}")


def _store_dir(value: str) -> None:
    from pathlib import Path

    from ckda_avalanche.benchmarks.decoded_store import DIR_ENV

    text = value.strip()
    if text.lower() != "off" and Path(text).expanduser().is_file():
        raise ValueError(f"${DIR_ENV}={value!r}: is a file; expected a folder for the decoded-image store, or 'off'")


def _kill_instant(value: str) -> None:
    from ckda_avalanche.runner.fault_injection import KILL_ENV

    if ":" not in value:
        raise ValueError(f"${KILL_ENV}={value!r}: expected an instant such as session1:trained (tests only)")


_DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}


def describe_os_error(exc: OSError, *, resumable: bool) -> str:
    """One line for an `OSError` of a command: the file, the reason, and (``resumable``) the resume hint."""
    reason = _DISK_ERRORS.get(exc.errno or -1) or exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename if exc.filename is not None else "a file"
    advice = []
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        advice.append("free space there")
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        advice.append("choose a writable folder or fix its permissions")
    if resumable:
        advice.append(RESUME_HINT)
    line = f"cannot write or read {where}: {reason}"
    return line + (f" ({'; '.join(advice)})" if advice else "")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active (main thread only), SIGTERM raises `SigtermInterrupt` (a `KeyboardInterrupt`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ANN001, ARG001 - signal handler signature
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
        raise SigtermInterrupt()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not the main interpreter, or signals unavailable
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def probe_ray_address(address: str | None, *, source: str = "--ray-address",
                      timeout: float = RAY_PROBE_TIMEOUT_S) -> None:
    """`ExecutorError` within ``timeout`` seconds when nothing answers at a ``HOST:PORT`` Ray address ('auto', a
    URL such as ``ray://``, or None are left to Ray)."""
    from ckda_avalanche.runner.executor_options import ExecutorError

    if not address or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise ExecutorError(f"{source} {address}: no Ray head answers there ({exc}); expected 'auto' or HOST:PORT "
                            "of a running `ray start --head`") from None


def restore_sigterm(handler: object) -> None:
    """Put ``handler`` back as the SIGTERM handler (main thread only; elsewhere nothing happens)."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return
    try:
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError, TypeError):
        pass
