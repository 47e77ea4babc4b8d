"""Crash-safe file writes: write to a temporary file in the same folder, fsync, then rename over the target.

A crash (even SIGKILL) therefore leaves either the old file or the new one, never a half-written file.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # messages name the file being written
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    _atomic_write(Path(path), lambda handle: handle.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    """``torch.save`` to ``path`` atomically. Torch's zip writer reports a failed write (a full disk) as a
    ``RuntimeError``; it is raised as an `OSError` naming ``path`` (``ENOSPC`` when the disk is full)."""
    def write(handle: Any) -> None:
        try:
            torch.save(obj, handle)
        except RuntimeError as exc:
            raise OSError(_write_errno(Path(path).parent), f"torch.save failed ({exc})", str(path)) from exc

    _atomic_write(Path(path), write)


def _write_errno(folder: Path) -> int:
    """``ENOSPC`` when ``folder``'s file system has no free block left, else ``EIO``."""
    try:
        return errno.ENOSPC if os.statvfs(folder).f_bavail == 0 else errno.EIO
    except OSError:
        return errno.EIO
