"""An on-disk store of decoded images, so that each image file is decoded once per machine, not once per run.

An `image_store.MemoryImageCache` lives in one process: every run of a grid (a Ray worker, the next ``ckda run``)
decodes the same files again: 6448 images for a cpu-preset run, 14.3 s at 2.2 ms each (PIL decode, RGB conversion,
antialiased resize; one thread of the 2-vCPU Intel machine on a slow day, docs/data_path.md). Once a memory cache holds
every image of its file list it is written here, and a later process with the same files loads it in one read.

- **Where**: ``$CKDA_DECODED_CACHE`` (a folder, or ``off``); by default ``$XDG_CACHE_HOME/ckda_avalanche/decoded``
  (``~/.cache/...``), like timm's and torch's caches. Files larger than ``$CKDA_DECODED_CACHE_MAX`` bytes (default
  `DEFAULT_MAX_BYTES`; suffixes K, M, G) are not written: at 256x128 a large dataset is gigabytes.
- **Key**: the dataset name, the resize (size, interpolation), each file's absolute path and a digest of its bytes
  (`file_integrity.content_digest`, BLAKE2b, hashed once per process and again whenever the file's identity
  changes), and the versions of the decoding stack (Pillow, torch, torchvision, `STORE_VERSION`). A file whose
  content changed in any way (rewritten, swapped with another by ``mv``, copied over with its old times) or an
  upgraded decoder gives another key, so a stored tensor is always what decoding gives now; results never depend on
  the store (``tests/benchmarks/test_decoded_store.py`` checks equality byte for byte). Before a decoded cache is
  written the digests are taken again (one ``stat`` per unchanged file): files that changed while they were being
  decoded are not stored.
- **Safety**: files are written atomically (temporary file, then ``os.replace``), so concurrent runs never read a
  half-written store. Every store file carries checksums (the CRC-32 of each record of the ``torch.save`` archive),
  verified before it is loaded. A store file that is damaged, cannot be read, or whose key or shape differs, is
  reported by a one-line `DecodedStoreWarning` naming the file and decoded again (then rewritten); a folder that
  cannot be written is reported once and the run goes on without the store.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from .byte_sizes import parse_bytes
from .file_integrity import content_digests, torch_file_problem

__all__ = [
    "DEFAULT_MAX_BYTES", "DIR_ENV", "MAX_ENV", "STORE_VERSION", "DecodedStore", "DecodedStoreWarning",
    "default_store_dir", "store_for",
]

DIR_ENV = "CKDA_DECODED_CACHE"
"""Environment variable: the store's folder, or ``off`` to disable it."""
MAX_ENV = "CKDA_DECODED_CACHE_MAX"
"""Environment variable: the largest store file written, in bytes (suffixes K, M, G, T are powers of 1024)."""
DEFAULT_MAX_BYTES = 1024**3
"""Largest store file written by default (1 GiB): the synthetic benchmark's largest is about 4 MiB."""
STORE_VERSION = 2
"""Bumped whenever the decode stage (`image_store.decode_resized`) or the key changes (2: files keyed by content)."""


class DecodedStoreWarning(UserWarning):
    """A store file was ignored (unreadable, other key or shape) or the store folder cannot be written."""


def default_store_dir() -> Path | None:
    """``$CKDA_DECODED_CACHE`` (None when ``off``), else ``$XDG_CACHE_HOME/ckda_avalanche/decoded``."""
    text = os.environ.get(DIR_ENV, "").strip()
    if text.lower() == "off":
        return None
    if text:
        return Path(text).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ckda_avalanche" / "decoded"


def _max_bytes() -> int:
    text = os.environ.get(MAX_ENV)
    return parse_bytes(text, f"${MAX_ENV}") if text else DEFAULT_MAX_BYTES


def _decoder_versions() -> dict[str, str]:
    import PIL
    import torchvision

    return {"pillow": PIL.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "store": str(STORE_VERSION)}


_unwritable_warned: set[str] = set()
_warn_lock = threading.Lock()


class DecodedStore:
    """One file list's stored images: ``load()`` (None when absent or unusable) and ``save(images)``."""

    def __init__(self, path: Path, *, key: str, shape: tuple[int, ...], max_bytes: int = DEFAULT_MAX_BYTES,
                 files: Sequence[tuple[str, str]] = ()) -> None:
        self.path = path
        """The store file."""
        self.key = key
        """The JSON key this store's images were decoded under (checked on load)."""
        self.shape = shape
        """The expected ``(N, 3, H, W)`` of the stored uint8 tensor."""
        self.max_bytes = max_bytes
        """Images larger than this many bytes are not written."""
        self.files = tuple((str(p), str(d)) for p, d in files)
        """(path, content digest) of every image the key was built from; checked again before a save."""

    def load(self) -> torch.Tensor | None:
        """The stored images, or None when there is no file; a file that does not match warns and gives None."""
        if not self.path.is_file():
            return None
        try:
            problem = torch_file_problem(self.path)
            if problem is None:
                saved = torch.load(self.path, map_location="cpu", weights_only=True)
                problem = self._mismatch(saved)
        except Exception as error:  # noqa: BLE001 - any unreadable file is decoded again, with its reason
            problem = f"cannot be read ({type(error).__name__}: {error})"
        if problem is not None:
            warnings.warn(f"decoded-image store {self.path}: {problem}; decoding the images again",
                          DecodedStoreWarning, stacklevel=2)
            return None
        return saved["images"]

    def _mismatch(self, saved: object) -> str | None:
        if not isinstance(saved, dict) or set(saved) != {"key", "images"}:
            return "not a decoded-image store (expected a dict with 'key' and 'images')"
        if saved["key"] != self.key:
            return "its key differs from the files' (a hash collision or an edited file)"
        images = saved["images"]
        if not torch.is_tensor(images) or images.dtype != torch.uint8 or tuple(images.shape) != self.shape:
            got = f"{images.dtype} {tuple(images.shape)}" if torch.is_tensor(images) else type(images).__name__
            return f"expected a uint8 tensor of shape {self.shape}, got {got}"
        return None

    def save(self, images: torch.Tensor) -> bool:
        """Write ``images`` atomically (True), unless they exceed the size limit or the folder cannot be written
        (False; the latter warns once per folder)."""
        if images.numel() > self.max_bytes:
            return False
        if self.files:
            now = content_digests([p for p, _ in self.files])
            changed = [p for (p, d), n in zip(self.files, now) if n != d]
            if changed:
                warnings.warn(f"decoded-image store {self.path}: not written, {len(changed)} image file(s) changed "
                              f"while they were decoded (e.g. {changed[0]}); the next process decodes them again",
                              DecodedStoreWarning, stacklevel=2)
                return False
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
            try:
                with os.fdopen(handle, "wb") as stream:
                    torch.save({"key": self.key, "images": images.contiguous()}, stream)
                os.replace(temporary, self.path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        except (OSError, RuntimeError) as error:  # torch's zip writer raises RuntimeError on a full disk
            with _warn_lock:
                first = str(folder) not in _unwritable_warned
                _unwritable_warned.add(str(folder))
            if first:
                warnings.warn(f"decoded-image store folder {folder} cannot be written ({error}); images are "
                              f"decoded in every process (set ${DIR_ENV} to a writable folder, or 'off')",
                              DecodedStoreWarning, stacklevel=2)
            return False
        return True


def store_for(files: Sequence[tuple[str, str | None]], *, dataset: str, img_size: tuple[int, int],
              interpolation: str, folder: Path | None = None) -> DecodedStore | None:
    """The store of these files (``(path, content digest)`` each, `file_integrity.content_digest`) at this resize;
    None when the store is off or a file could not be read (digest None). ``folder`` defaults to
    `default_store_dir`. A malformed ``$CKDA_DECODED_CACHE_MAX`` raises ``ValueError`` naming it."""
    folder = default_store_dir() if folder is None else folder
    if folder is None or any(digest is None for _, digest in files):
        return None
    max_bytes = _max_bytes()
    height, width = int(img_size[0]), int(img_size[1])
    key = json.dumps({"dataset": dataset, "img_size": [height, width], "interpolation": interpolation,
                      "decoder": _decoder_versions(),
                      "files": [[os.path.abspath(p), digest] for p, digest in files]},
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset)
    return DecodedStore(folder / f"{name}-{height}x{width}-{interpolation}-{digest}.pt", key=key,
                        shape=(len(files), 3, height, width), max_bytes=max_bytes,
                        files=[(str(p), str(d)) for p, d in files])
