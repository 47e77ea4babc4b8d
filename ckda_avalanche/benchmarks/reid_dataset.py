"""The Avalanche dataset over a list of `ReIDSample`s: what every experience of the VI-LReID stream holds.

Each item is ``(image, label, camid, modality, task_label)``:

- the base torch dataset (:class:`ReIDImageDataset`) returns ``(image, label, camid, modality)``. When the train
  and test transforms share a resize (the package's transforms, `transforms.ModalityAwareTransform.geometry`), the
  image is a uint8 ``(3, H, W)`` tensor at that size from an image source (`image_store.py`): the process-wide memory
  cache (each image decoded once) or the disk; otherwise it is the decoded PIL image, as for any custom transform;
- Avalanche's transform groups apply :class:`ImageTransformAdapter`, which transforms element 0 and hands the
  transform the sample's modality (element 3) so infrared-only augmentation can be applied; the adapter is what
  Avalanche swaps when ``dataset.train()`` / ``dataset.eval()`` switch the group. While a
  `batch_loader.ReIDLoader` fetches, the adapter hands out a `DeferredImage` instead and the loader applies the
  transform's batched form to the whole minibatch;
- the `TaskLabels` data attribute (the only one with ``use_in_getitem=True``) is appended last, as Avalanche's
  templates read the task label from ``mbatch[-1]``.

``targets`` (labels), ``camid``, ``modality`` and ``image_cached`` (the image comes from the memory cache) are also
`DataAttribute`s, so the identity sampler, the loaders and Avalanche's subset/concat/replay machinery can read them
without decoding images.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from avalanche.benchmarks.utils import DataAttribute, TaskAwareSupervisedClassificationDataset
from avalanche.benchmarks.utils.data_attribute import TaskLabels
from avalanche.benchmarks.utils.transform_groups import TransformGroups
from avalanche.benchmarks.utils.transforms import MultiParamTransform
from PIL import Image

from .batch_loader import CACHED_ATTRIBUTE, DeferredImage, deferring
from .datasets import load_image
from .datasets.images import ImageDecodeError
from .image_store import (
    CACHE_MODES,
    RESUME_HINT,
    CacheLimitError,
    FileImageSource,
    MemoryImageCache,
    cache_bytes,
    default_cache_limit,
    default_cache_mode,
    format_bytes,
    shared_memory_cache,
)
from .sample import INFRARED, VISIBLE, ReIDSample
from .transforms import ModalityAwareTransform

__all__ = ["RESUME_HINT", "ImageTransform", "ImageTransformAdapter", "ReIDImageDataset", "make_reid_dataset",
           "transform_geometry"]

ImageTransform = ModalityAwareTransform | Callable[[Any], torch.Tensor]
"""A `ModalityAwareTransform` (called as ``t(image, modality)``) or any one-argument image transform."""


class ReIDImageDataset(torch.utils.data.Dataset):
    """Plain torch dataset: item ``i`` is ``(image, labels[i], camid, modalities[i])`` of ``samples[i]``.

    Without ``source`` the image is the PIL RGB image from the readers' ``load_image`` (8-bit RGB; single-channel
    infrared replicated to 3 channels, 16-bit scaled, see ``datasets/images.py``). With ``source`` (a
    `MemoryImageCache` or `FileImageSource` over the samples' paths) it is that source's resized uint8 ``(3, H, W)``
    tensor. An image that is missing or cannot be decoded (empty, truncated, symlink loop, ...) stops the run with
    an `ImageDecodeError` (a `DatasetLayoutError`) naming the file and how to resume (`RESUME_HINT`), also while
    filling the cache; in a DataLoader worker it reaches the main process as the same type.

    ``modalities`` defaults to each sample's own modality; the stream passes a different list only for the LLCM
    modality-flag quirk (docs/method.md §7 b), where the model is fed the opposite flag but the sample metadata stay true.
    """

    def __init__(
        self,
        *,
        samples: Sequence[ReIDSample],
        labels: Sequence[int],
        dataset: str,
        modalities: Sequence[int] | None = None,
        source: FileImageSource | None = None,
    ) -> None:
        self.samples = list(samples)
        self.labels = [int(v) for v in labels]
        self.dataset = dataset
        self.modalities = [s.modality for s in self.samples] if modalities is None else [int(m) for m in modalities]
        self.camids = [int(s.camid) for s in self.samples]
        if len(self.labels) != len(self.samples):
            raise ValueError(f"{dataset}: {len(self.labels)} labels for {len(self.samples)} samples")
        if len(self.modalities) != len(self.samples):
            raise ValueError(f"{dataset}: {len(self.modalities)} modalities for {len(self.samples)} samples")
        bad = sorted({m for m in self.modalities if m not in (VISIBLE, INFRARED)})
        if bad:
            raise ValueError(f"{dataset}: modality must be {VISIBLE} or {INFRARED}, got {bad}")
        if source is not None and len(source) != len(self.samples):
            raise ValueError(f"{dataset}: image source of {len(source)} images for {len(self.samples)} samples")
        self.source = source
        """Where resized images come from (None: PIL images decoded per read)."""

    @property
    def cached(self) -> bool:
        """Whether the images come from the in-memory cache."""
        return isinstance(self.source, MemoryImageCache)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Image.Image | torch.Tensor, int, int, int]:
        if self.source is not None:
            image = self.source.get(index)
        else:
            sample = self.samples[index]
            try:
                image = load_image(sample.path, dataset=self.dataset)
            except ImageDecodeError as error:
                raise error.with_hint(RESUME_HINT) from error
        return image, self.labels[index], self.camids[index], self.modalities[index]


class ImageTransformAdapter(MultiParamTransform):
    """Avalanche multi-argument transform: transforms the image (element 0) of ``(image, label, camid, modality)``.

    A `ModalityAwareTransform` receives ``(image, modality)``; any other callable receives the image only. The
    other elements pass through unchanged.
    """

    def __init__(self, transform: ImageTransform) -> None:
        if not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.transform = transform

    def __call__(self, image: Any, label: int, camid: int, modality: int, *rest: Any) -> list[Any]:
        if isinstance(self.transform, ModalityAwareTransform):
            if self.transform.batched is not None and isinstance(image, torch.Tensor) and deferring():
                return [DeferredImage(image, int(modality), self.transform), label, camid, modality, *rest]
            image = self.transform(image, modality)
        else:
            image = self.transform(image)
        return [image, label, camid, modality, *rest]

    def flat_transforms(self, position: int) -> list[Any]:
        return [self.transform] if position == 0 else []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImageTransformAdapter) and other.transform is self.transform

    def __hash__(self) -> int:
        return id(self.transform)

    def __repr__(self) -> str:
        return f"ImageTransformAdapter({self.transform!r})"


def transform_geometry(*transforms: Any) -> tuple[tuple[int, int], str] | None:
    """The ``(img_size, interpolation)`` all ``transforms`` resize to, when each has a batched form
    (`ModalityAwareTransform.geometry`) and they agree; None otherwise (images then stay PIL images)."""
    found = {getattr(t, "geometry", None) if isinstance(t, ModalityAwareTransform) else None for t in transforms}
    if len(found) != 1 or None in found:
        return None
    return found.pop()


def _image_source(samples: Sequence[ReIDSample], *, dataset: str, geometry: tuple[tuple[int, int], str] | None,
                  cache: str, cache_limit_bytes: int | None) -> FileImageSource | None:
    if cache not in CACHE_MODES:
        raise ValueError(f"cache: expected one of {CACHE_MODES}, got {cache!r}")
    if geometry is None:
        if cache == "memory":
            raise ValueError(f"{dataset}: cache='memory' needs the package's transforms (build_train_transform and "
                             "build_eval_transform of one img_size); custom transforms receive PIL images uncached")
        return None
    img_size, interpolation = geometry
    paths = [s.path for s in samples]
    limit = default_cache_limit() if cache_limit_bytes is None else int(cache_limit_bytes)
    needed = cache_bytes(len(paths), img_size)
    if cache == "memory" and needed > limit:
        raise CacheLimitError(
            f"{dataset}: caching {len(paths)} images at {img_size[0]}x{img_size[1]} needs {format_bytes(needed)} "
            f"({needed} bytes), above the image cache limit of {format_bytes(limit)} ({limit} bytes); raise the "
            "limit (cache_limit_bytes, $CKDA_DATA_CACHE_LIMIT) or use cache='off' (read from disk by DataLoader "
            "workers)")
    if cache == "off" or needed > limit:
        return FileImageSource(paths, dataset=dataset, img_size=img_size, interpolation=interpolation)
    return shared_memory_cache(paths, dataset=dataset, img_size=img_size, interpolation=interpolation)


def make_reid_dataset(
    samples: Sequence[ReIDSample],
    *,
    labels: Sequence[int],
    dataset: str,
    train_transform: ImageTransform,
    eval_transform: ImageTransform,
    initial_group: str = "train",
    modalities: Sequence[int] | None = None,
    task_label: int = 0,
    cache: str | None = None,
    cache_limit_bytes: int | None = None,
) -> TaskAwareSupervisedClassificationDataset:
    """Wrap ``samples`` as an Avalanche dataset yielding ``(image, label, camid, modality, task_label)``.

    ``initial_group`` is the transform group active on the returned dataset (``"train"`` or ``"eval"``);
    ``.train()`` / ``.eval()`` return copies with the other group. Data attributes: ``targets`` (= ``labels``),
    ``camid``, ``modality``, ``image_cached`` and ``targets_task_labels`` (constant ``task_label``).

    ``cache`` (default ``$CKDA_DATA_CACHE`` or ``"auto"``): when both transforms share a resize
    (`transform_geometry`), ``"memory"`` decodes each image once into the process's memory cache and raises
    `CacheLimitError` (naming the dataset, image count, bytes needed and the limit) when the images would exceed
    ``cache_limit_bytes`` (default `image_store.default_cache_limit`); ``"auto"`` caches when they fit and reads
    from disk otherwise; ``"off"`` always reads from disk. Results do not depend on the choice.
    """
    if initial_group not in ("train", "eval"):
        raise ValueError(f"initial_group: expected 'train' or 'eval', got {initial_group!r}")
    source = _image_source(samples, dataset=dataset, geometry=transform_geometry(train_transform, eval_transform),
                           cache=default_cache_mode() if cache is None else cache, cache_limit_bytes=cache_limit_bytes)
    base = ReIDImageDataset(samples=samples, labels=labels, dataset=dataset, modalities=modalities, source=source)
    groups = TransformGroups(
        {"train": ImageTransformAdapter(train_transform), "eval": ImageTransformAdapter(eval_transform)}
    )
    data = TaskAwareSupervisedClassificationDataset(
        [base],
        data_attributes=[
            DataAttribute(base.labels, "targets"),
            DataAttribute(base.camids, "camid"),
            DataAttribute(base.modalities, "modality"),
            DataAttribute([base.cached] * len(base), CACHED_ATTRIBUTE),
            TaskLabels([int(task_label)] * len(base)),
        ],
        transform_groups=groups,
    )
    # AvalancheDataset takes its active group from the wrapped dataset ("train" for a plain torch dataset) and
    # ignores TransformGroups(current_group=...), so the group is selected afterwards.
    return data.with_transforms(initial_group)
