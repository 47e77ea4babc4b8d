"""`ReIDLoader`: minibatches of a ReID dataset with the image transforms applied once per batch.

The training, evaluation, prototype and old-model passes all read their data through `make_reid_loader`. It wraps
a torch ``DataLoader`` (batch sampler or batch size, workers, pinned memory) and changes one thing: images whose
transform has a batched form (the package's own transforms, `transforms.ModalityAwareTransform.batched`) are not
transformed one by one. The dataset yields them as resized uint8 tensors (`DeferredImage`), `ReIDCollate` stacks
them into a `PendingBatch`, and the loader applies the batched transform in the main process, on ``device`` when
given (uint8 goes over the bus, the augmentation runs on the GPU). Minibatches stay ``(image, pid, camid,
modality, task_label)``, task label last, images float32 ``(B, 3, H, W)``.

Determinism: DataLoader workers only decode (no random draws); the augmentation draws from torch's global generator
in the main process, a fixed number of draws per batch; the loader's own seeds come from a private generator. The
batches, and so the results, are therefore the same for any number of workers, with or without the memory cache.

Items of datasets whose transforms have no batched form (custom transforms) are transformed per item as before, and
indexing a dataset directly (``dataset[i]``) always applies the per-image transform: deferral is switched on only
while this loader fetches (`deferred_transforms`) and inside its worker processes.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Sampler
from torch.utils.data._utils.collate import default_collate

__all__ = [
    "CACHED_ATTRIBUTE", "DeferredImage", "PendingBatch", "ReIDCollate", "ReIDLoader", "auto_num_workers",
    "deferred_transforms", "deferring", "make_reid_loader", "resolve_num_workers",
]

CACHED_ATTRIBUTE = "image_cached"
"""Name of the data attribute (`make_reid_dataset`) saying whether an item's image comes from the memory cache."""
MAX_AUTO_WORKERS = 8
"""Most DataLoader workers ``num_workers="auto"`` starts."""

_LOCAL = threading.local()
_IN_WORKER = {"defer": False}


def deferring() -> bool:
    """Whether datasets should hand out `DeferredImage` items instead of transforming them (see module doc)."""
    return _IN_WORKER["defer"] or getattr(_LOCAL, "depth", 0) > 0


@contextlib.contextmanager
def deferred_transforms() -> Iterator[None]:
    """Within this block (this thread), items of transforms with a batched form come out as `DeferredImage`."""
    _LOCAL.depth = getattr(_LOCAL, "depth", 0) + 1
    try:
        yield
    finally:
        _LOCAL.depth -= 1


def _worker_init(worker_id: int) -> None:
    _IN_WORKER["defer"] = True


class DeferredImage(NamedTuple):
    """An item's image waiting for its transform: resized uint8 ``(3, H, W)``, the modality the transform receives,
    and the per-image transform (whose ``batched`` form the loader applies)."""

    image: torch.Tensor
    modality: int
    transform: Any

    def materialise(self) -> torch.Tensor:
        """The per-image transform applied now (for batches mixing deferred and ordinary items)."""
        return self.transform(self.image, self.modality)


class PendingBatch:
    """Stacked uint8 images of one minibatch with the batched transforms still to apply: ``groups`` holds
    ``(batched transform, row indices or None for all rows)``."""

    def __init__(self, images: torch.Tensor, modality: torch.Tensor,
                 groups: list[tuple[Callable[..., torch.Tensor], torch.Tensor | None]]) -> None:
        self.images = images
        self.modality = modality
        self.groups = groups

    def pin_memory(self) -> PendingBatch:
        """Called by the DataLoader's pinning (CUDA)."""
        return PendingBatch(self.images.pin_memory(), self.modality.pin_memory(), self.groups)

    def materialise(self, device: torch.device | None = None) -> torch.Tensor:
        """The transformed float32 batch, computed on ``device`` (default: where the images are)."""
        images = self.images if device is None else self.images.to(device, non_blocking=True)
        if len(self.groups) == 1 and self.groups[0][1] is None:
            return self.groups[0][0](images, self.modality)
        out: torch.Tensor | None = None
        for transform, rows in self.groups:
            part = transform(images[rows.to(images.device)], self.modality[rows])
            if out is None:
                out = part.new_empty((images.shape[0], *part.shape[1:]))
            out[rows.to(images.device)] = part
        return out


class ReIDCollate:
    """Collates `DeferredImage` items into a `PendingBatch` (other fields with ``fallback``); any other batch goes
    to ``fallback`` unchanged (the dataset's own collate function)."""

    def __init__(self, fallback: Callable[[list], Any] | None = None) -> None:
        self.fallback = fallback or default_collate

    def __call__(self, items: list) -> Any:
        deferred = [isinstance(item[0], DeferredImage) for item in items] if items else []
        if not any(deferred):
            return self.fallback(items)
        if not all(deferred):
            items = [(item[0].materialise(), *item[1:]) if flag else item for item, flag in zip(items, deferred)]
            return self.fallback(items)
        images = [item[0] for item in items]
        shapes = {tuple(d.image.shape) for d in images}
        if len(shapes) != 1:
            raise ValueError(f"ReIDCollate: images of different sizes {sorted(shapes)} in one batch (datasets built "
                             "for different img_size cannot share a batch)")
        stacked = torch.stack([d.image for d in images])
        modality = torch.tensor([int(d.modality) for d in images], dtype=torch.long)
        by_transform: dict[int, tuple[Any, list[int]]] = {}
        for row, d in enumerate(images):
            by_transform.setdefault(id(d.transform), (d.transform.batched, []))[1].append(row)
        if len(by_transform) == 1:
            groups = [(next(iter(by_transform.values()))[0], None)]
        else:
            groups = [(fn, torch.tensor(rows, dtype=torch.long)) for fn, rows in by_transform.values()]
        rest = self.fallback([tuple(item[1:]) for item in items])
        return [PendingBatch(stacked, modality, groups), *rest]


def auto_num_workers() -> int:
    """Workers for datasets read from disk: the CPUs this process may use minus one (the training process), at
    least 1 and at most `MAX_AUTO_WORKERS`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_AUTO_WORKERS, cpus - 1))


def _all_cached(dataset: Any) -> bool:
    flags = getattr(dataset, CACHED_ATTRIBUTE, None)
    if flags is None or len(dataset) == 0:
        return False
    uniques = getattr(flags, "uniques", None)
    values = set(uniques) if uniques is not None else set(flags)
    return values == {True}


def resolve_num_workers(num_workers: int | str, dataset: Any) -> int:
    """``num_workers`` as a number: ``"auto"`` is 0 when every image of ``dataset`` comes from the memory cache
    (decoded once, read in the main process) and `auto_num_workers` otherwise."""
    if num_workers == "auto":
        return 0 if _all_cached(dataset) else auto_num_workers()
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers: expected an integer >= 0 or 'auto', got {num_workers!r}")
    return num_workers


class ReIDLoader:
    """Iterable of ready minibatches over a DataLoader (see the module docstring). ``len()`` is the DataLoader's;
    ``batch_sampler``, ``num_workers``, ``dataset`` and ``loader`` (the DataLoader) are exposed."""

    def __init__(self, loader: DataLoader, *, device: torch.device | None = None) -> None:
        self.loader = loader
        self.device = device

    @property
    def dataset(self) -> Any:
        return self.loader.dataset

    @property
    def batch_sampler(self) -> Any:
        return self.loader.batch_sampler

    @property
    def num_workers(self) -> int:
        return self.loader.num_workers

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[list]:
        iterator = iter(self.loader)
        while True:
            with deferred_transforms():
                try:
                    batch = next(iterator)
                except StopIteration:
                    return
            if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], PendingBatch):
                batch = [batch[0].materialise(self.device), *batch[1:]]
            yield batch


def make_reid_loader(
    dataset: Any,
    *,
    batch_size: int | None = None,
    batch_sampler: Sampler[list[int]] | None = None,
    num_workers: int | str = "auto",
    device: torch.device | str | None = None,
    pin_memory: bool | None = None,
    persistent_workers: bool = False,
    drop_last: bool = False,
) -> ReIDLoader:
    """A `ReIDLoader` over ``dataset`` in dataset order (``batch_size``) or with a ``batch_sampler``.

    ``num_workers``: see `resolve_num_workers`. ``device``: where batched transforms run and images end up.
    ``pin_memory`` defaults to True on CUDA. ``persistent_workers`` keeps the workers between epochs (only with
    workers). Each DataLoader gets a private generator, so creating or iterating it never draws from torch's global
    one.
    """
    if (batch_size is None) == (batch_sampler is None):
        raise ValueError("make_reid_loader: pass exactly one of batch_size and batch_sampler")
    workers = resolve_num_workers(num_workers, dataset)
    target = None if device is None else torch.device(device)
    cuda = target is not None and target.type == "cuda"
    options: dict[str, Any] = {}
    if batch_sampler is not None:
        options["batch_sampler"] = batch_sampler
    else:
        options.update(batch_size=batch_size, shuffle=False, drop_last=drop_last)
    loader = DataLoader(
        dataset, num_workers=workers, collate_fn=ReIDCollate(getattr(dataset, "collate_fn", None)),
        pin_memory=cuda if pin_memory is None else pin_memory, persistent_workers=persistent_workers and workers > 0,
        worker_init_fn=_worker_init if workers > 0 else None, generator=torch.Generator(), **options,
    )
    return ReIDLoader(loader, device=target)

