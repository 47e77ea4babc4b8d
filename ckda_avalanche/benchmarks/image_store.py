"""Where a ReID dataset's images come from: decoded once into memory at the training resolution, or from disk.

Every image goes through the same decode stage, `decode_resized`: the readers' ``load_image`` (8-bit RGB) and the
transforms' own resize (``ToImage -> Resize``, `transforms.resize_image`). Two sources hold its output:

- `MemoryImageCache`: one uint8 ``(N, 3, H, W)`` tensor (``3 H W`` bytes per image: 1.5 KiB at 32x16, 96 KiB at
  256x128), each image decoded the first time it is read (or all at once with `MemoryImageCache.fill`). Caches are
  shared per process (`shared_memory_cache`): a dataset's training set, its ``.eval()`` view, the prototype and
  old-model passes, replay buffers, Joint's union and a second stream over the same files all read one cache, so
  each image is decoded once per process. A complete cache is also written to the on-disk store
  (`decoded_store`), from which later processes with the same files load it instead of decoding.
- `FileImageSource`: decodes on every read (for DataLoader workers, when the images would not fit in memory).

Both give the same tensors, so the choice never changes results. Which one a stream uses is its ``cache`` option
(`CACHE_MODES`): ``"memory"`` caches and raises `CacheLimitError` when the images would exceed the limit,
``"auto"`` caches what fits and reads the rest from disk, ``"off"`` reads from disk. The limit defaults to a quarter
of the machine's memory; ``$CKDA_DATA_CACHE`` and ``$CKDA_DATA_CACHE_LIMIT`` (bytes, or with a K/M/G suffix) set
the defaults of both without touching the run configuration (they change speed only).

A file that cannot be decoded raises `ImageDecodeError` naming it, with `RESUME_HINT`, when it is first read,
whether into the cache or from disk.
"""
from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

from .byte_sizes import format_bytes, parse_bytes
from .datasets import load_image
from .datasets.images import ImageDecodeError
from .decoded_store import DecodedStore, store_for
from .file_integrity import content_digests
from .transforms import resize_image

__all__ = [
    "CACHE_MODES", "RESUME_HINT", "CacheLimitError", "FileImageSource", "MemoryImageCache", "cache_bytes",
    "decode_resized", "default_cache_limit", "default_cache_mode", "format_bytes", "shared_memory_cache",
]

RESUME_HINT = ("replace or remove this file (and any index line naming it), check the others with 'ckda data "
               "check ROOT --deep', then rerun the same 'ckda run ...' command with --resume: sessions finished "
               "before this one are kept")
"""What an `ImageDecodeError` raised while training or evaluating tells the user to do."""

CACHE_MODES: tuple[str, ...] = ("auto", "memory", "off")
"""Accepted values of a stream's / dataset's ``cache`` option."""
CACHE_ENV = "CKDA_DATA_CACHE"
"""Environment variable giving the default cache mode (else "auto")."""
LIMIT_ENV = "CKDA_DATA_CACHE_LIMIT"
"""Environment variable giving the default cache limit in bytes (suffixes K, M, G, T are powers of 1024)."""
FALLBACK_LIMIT = 4 * 1024**3
"""Cache limit when the machine's memory cannot be read (4 GiB)."""
_parse_bytes = parse_bytes  # the name this parser had here (byte_sizes.parse_bytes)


class CacheLimitError(ValueError):
    """The images to cache in memory would exceed the cache limit (the message names dataset, count, bytes, limit)."""


def cache_bytes(count: int, img_size: tuple[int, int]) -> int:
    """Bytes of ``count`` uint8 RGB images of ``img_size = (height, width)``."""
    return int(count) * 3 * int(img_size[0]) * int(img_size[1])


def default_cache_limit() -> int:
    """``$CKDA_DATA_CACHE_LIMIT`` if set, else a quarter of the machine's physical memory (4 GiB if unknown)."""
    text = os.environ.get(LIMIT_ENV)
    if text:
        return parse_bytes(text, f"${LIMIT_ENV}")
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 4
    except (ValueError, OSError, AttributeError):
        return FALLBACK_LIMIT


def default_cache_mode() -> str:
    """``$CKDA_DATA_CACHE`` if set (one of `CACHE_MODES`), else ``"auto"``."""
    mode = os.environ.get(CACHE_ENV, "auto").strip().lower() or "auto"
    if mode not in CACHE_MODES:
        raise ValueError(f"${CACHE_ENV}: expected one of {CACHE_MODES}, got {mode!r}")
    return mode


def decode_resized(path: str, *, dataset: str, img_size: tuple[int, int], interpolation: str) -> torch.Tensor:
    """The decode stage: ``load_image`` then the transforms' resize, as a uint8 ``(3, H, W)`` tensor.

    A missing or undecodable file raises `ImageDecodeError` naming it, with `RESUME_HINT`."""
    try:
        image = load_image(path, dataset=dataset)
    except ImageDecodeError as error:
        raise error.with_hint(RESUME_HINT) from error
    return resize_image(image, img_size, interpolation)


class FileImageSource:
    """Reads image ``i`` of ``paths`` from disk through `decode_resized` on every access."""

    kind = "file"

    def __init__(self, paths: Sequence[str], *, dataset: str, img_size: tuple[int, int], interpolation: str) -> None:
        self.paths = list(paths)
        self.dataset = dataset
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.interpolation = interpolation

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> torch.Tensor:
        """Image ``index`` as a new uint8 ``(3, H, W)`` tensor."""
        return decode_resized(self.paths[index], dataset=self.dataset, img_size=self.img_size,
                              interpolation=self.interpolation)


class MemoryImageCache(FileImageSource):
    """All images of ``paths`` in one uint8 ``(N, 3, H, W)`` tensor, each decoded on its first read.

    The tensor is allocated at the first read (`nbytes` = ``N * 3 * H * W``). Reads return copies, so nothing
    downstream can modify the cache. Not shared between processes: a DataLoader worker fills its own copy (which is
    why cached datasets are read in the main process, `batch_loader.resolve_num_workers`).
    """

    kind = "memory"

    def __init__(self, paths: Sequence[str], *, dataset: str, img_size: tuple[int, int], interpolation: str) -> None:
        super().__init__(paths, dataset=dataset, img_size=img_size, interpolation=interpolation)
        self.images: torch.Tensor | None = None
        """The cache, (N, 3, H, W) uint8 (None until the first read)."""
        self.filled = bytearray(len(self.paths))
        """Which images are decoded (1 = cached), one byte per image."""
        self.decodes: int = 0
        """Images decoded into this cache so far (each at most once)."""
        self.store: DecodedStore | None = None
        """Where the cache is saved for later processes once every image is decoded (`attach_store`); None: not
        saved (no store, already saved, or loaded from it)."""
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes the cache holds once allocated."""
        return cache_bytes(len(self.paths), self.img_size)

    def _allocate(self) -> torch.Tensor:
        if self.images is None:
            self.images = torch.empty((len(self.paths), 3, *self.img_size), dtype=torch.uint8)
        return self.images

    def _decode_into(self, index: int) -> None:
        image = decode_resized(self.paths[index], dataset=self.dataset, img_size=self.img_size,
                               interpolation=self.interpolation)
        if tuple(image.shape) != (3, *self.img_size):
            raise AssertionError(f"{self.paths[index]}: decoded to {tuple(image.shape)}, expected "
                                 f"{(3, *self.img_size)}")
        complete = False
        with self._lock:
            self._allocate()[index].copy_(image)
            if not self.filled[index]:
                self.filled[index] = 1
                self.decodes += 1
                complete = self.decodes == len(self.paths) and self.store is not None
        if complete:
            self._save_store()

    def attach_store(self, store: DecodedStore | None) -> MemoryImageCache:
        """Load every image from ``store`` when it holds them (no decoding at all); otherwise decode them all at
        the first read and save them there."""
        images = None if store is None else store.load()
        with self._lock:
            if images is None:
                self.store = store
            else:
                self.images, self.store = images, None
                self.filled = bytearray(b"\x01" * len(self.paths))
        return self

    def _save_store(self) -> None:
        # Only a cache decoded entirely in this process is saved: a loaded one is already stored.
        store, self.store = self.store, None
        store.save(self.images)

    def get(self, index: int) -> torch.Tensor:
        if not self.filled[index]:
            if self.store is not None:
                # A run need not read every image (the identity sampler), so a cache to be stored is decoded whole
                # at its first read, with the run's threads.
                self.fill(threads=torch.get_num_threads())
            else:
                self._decode_into(index)
        return self.images[index].clone()

    def fill(self, *, threads: int | None = None) -> MemoryImageCache:
        """Decode every image not yet cached, with ``threads`` threads (default: the CPUs this process may use,
        at most 8). The first file that cannot be decoded raises `ImageDecodeError` naming it."""
        missing = [index for index, done in enumerate(self.filled) if not done]
        if not missing:
            return self
        self._allocate()
        workers = max(1, min(8, threads or _usable_cpus()))
        if workers == 1 or len(missing) < 64:
            for index in missing:
                self._decode_into(index)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(self._decode_into, missing):
                    pass
        return self

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_SHARED: weakref.WeakValueDictionary[tuple, MemoryImageCache] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def shared_memory_cache(paths: Sequence[str], *, dataset: str, img_size: tuple[int, int],
                        interpolation: str) -> MemoryImageCache:
    """The process's `MemoryImageCache` for these files at this resolution: an existing one while any dataset
    still uses it, else a new one, loaded from the on-disk store when it holds these files (`decoded_store`).
    Files are matched by path and content (`file_integrity.content_digest`: each file is hashed once per process,
    and again whenever it is renamed, swapped, rewritten or touched), so a changed file is always decoded again."""
    size = (int(img_size[0]), int(img_size[1]))
    files = tuple(zip((str(p) for p in paths), content_digests([str(p) for p in paths])))
    key = (dataset, size, interpolation, files)
    with _SHARED_LOCK:
        cache = _SHARED.get(key)
        if cache is None:
            cache = MemoryImageCache(paths, dataset=dataset, img_size=size, interpolation=interpolation)
            cache.attach_store(store_for(list(files), dataset=dataset, img_size=size, interpolation=interpolation))
            _SHARED[key] = cache
        return cache
