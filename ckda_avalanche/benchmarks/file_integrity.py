"""Is a file still what it was? Content digests of input files, and the checksums inside files written by
``torch.save``.

- `content_digest`: BLAKE2b (128-bit) of a file's bytes. The digest is remembered per process under the file's
  identity (device, inode, size, modification and status-change times): a file that is renamed, swapped, rewritten
  or touched gets a new identity (the status-change time cannot be set back by ``os.utime`` or ``mv``), so it is read
  and hashed again; an unchanged file is hashed once per process. Keys built from digests therefore cannot go stale
  when files are swapped between folders, copied over with their old times kept, or edited in place.
- `torch_file_problem`: ``torch.save`` writes a zip archive whose every record carries a CRC-32 of its bytes, but
  ``torch.load`` does not check them, so a damaged file can load as wrong numbers. This checks every record's CRC-32
  (Python's ``zipfile``) and says what is wrong, or None; `load_checked_torch_file` loads such a file only after it
  passed that check, with one clear error either way.
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

__all__ = ["clear_digest_memo", "content_digest", "content_digests", "load_checked_torch_file", "torch_file_problem"]

_CHUNK = 1 << 20
_MEMO: dict[str, tuple[tuple[int, ...], str]] = {}
_MEMO_LOCK = threading.Lock()


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def content_digest(path: str | os.PathLike[str]) -> str | None:
    """Hex BLAKE2b-128 of the file's bytes (None when it cannot be read), hashed once per process per identity."""
    name = os.fspath(path)
    try:
        before = os.stat(name)
    except OSError:
        return None
    identity = _identity(before)
    with _MEMO_LOCK:
        known = _MEMO.get(name)
    if known is not None and known[0] == identity:
        return known[1]
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(name, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        after = os.stat(name)
    except OSError:
        return None
    text = digest.hexdigest()
    if _identity(after) == identity:  # not rewritten while it was read: remember it
        with _MEMO_LOCK:
            _MEMO[name] = (identity, text)
    return text


def content_digests(paths: Sequence[str | os.PathLike[str]], *, threads: int = 4) -> list[str | None]:
    """`content_digest` of every path, in order (a thread pool for long lists: hashing releases the GIL)."""
    if len(paths) < 256 or threads <= 1:
        return [content_digest(p) for p in paths]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(content_digest, paths, chunksize=64))


def clear_digest_memo() -> None:
    """Forget every remembered digest (as in a new process)."""
    with _MEMO_LOCK:
        _MEMO.clear()


def torch_file_problem(source: str | os.PathLike[str] | bytes) -> str | None:
    """None when ``source`` (a path or the file's bytes) is a ``torch.save`` archive whose every record matches its
    CRC-32; else what is wrong, in a few words (``"record 'archive/data/0' fails its checksum"``, ``"not a
    torch.save zip archive (...)"``)."""
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else os.fspath(source)
    try:
        with zipfile.ZipFile(stream) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as error:
        return f"not a readable torch.save archive ({type(error).__name__}: {error})"
    except RuntimeError as error:  # zipfile's own errors (e.g. an unsupported compression method)
        return f"not a readable torch.save archive ({error})"
    if bad is not None:
        return f"record {bad!r} fails its checksum (the file was damaged after it was written)"
    return None


def load_checked_torch_file(path: str | os.PathLike[str], *, what: str, error: type[Exception], damaged_hint: str,
                            unreadable_hint: str = "", weights_only: bool) -> object:
    """``torch.load(path)`` on the CPU once every record passed its checksum (`torch_file_problem`). Raises
    ``error("<path>: damaged <what>, <problem>; <damaged_hint>")`` for a damaged file and ``error("<path>: cannot
    read the <what> (<exception>)<unreadable_hint>")`` when loading fails."""
    import torch  # only the callers that load model files pay for it

    problem = torch_file_problem(path)  # torch.load itself ignores the archive's checksums
    if problem is not None:
        raise error(f"{path}: damaged {what}, {problem}; {damaged_hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # noqa: BLE001 - a corrupt file gets one clear message
        raise error(f"{path}: cannot read the {what} ({exc}){unreadable_hint}") from exc
