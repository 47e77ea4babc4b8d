"""The Avalanche dataset over a list of `ReIDSample`s: what every experience of the VI-LReID stream holds.

Each item is ``(image, label, camid, modality, task_label)``:

- the base torch dataset (:class:`ReIDImageDataset`) decodes the image and returns
  ``(PIL image, label, camid, modality)``;
- Avalanche's transform groups apply :class:`ImageTransformAdapter`, which transforms element 0 and hands the
  transform the sample's modality (element 3) so infrared-only augmentation can be applied; the adapter is what
  Avalanche swaps when ``dataset.train()`` / ``dataset.eval()`` switch the group;
- the `TaskLabels` data attribute (the only one with ``use_in_getitem=True``) is appended last, as Avalanche's
  templates read the task label from ``mbatch[-1]``.

``targets`` (labels), ``camid`` and ``modality`` are also `DataAttribute`s, so the identity sampler and
Avalanche's subset/concat/replay machinery can read them without decoding images.
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

from .datasets import load_image
from .datasets.images import ImageDecodeError
from .sample import INFRARED, VISIBLE, ReIDSample
from .transforms import ModalityAwareTransform

RESUME_HINT = ("replace or remove this file (and any index line naming it), check the others with 'ckda data "
               "check ROOT --deep', then rerun the same 'ckda run ...' command with --resume: sessions finished "
               "before this one are kept")
"""What an `ImageDecodeError` raised while training or evaluating tells the user to do."""

ImageTransform = ModalityAwareTransform | Callable[[Any], torch.Tensor]
"""A `ModalityAwareTransform` (called as ``t(image, modality)``) or any one-argument image transform."""


class ReIDImageDataset(torch.utils.data.Dataset):
    """Plain torch dataset: item ``i`` is ``(PIL RGB image, labels[i], camid, modalities[i])`` of ``samples[i]``.

    Images are decoded with the readers' ``load_image`` (8-bit RGB; single-channel infrared replicated to 3
    channels, 16-bit scaled, see ``datasets/images.py``). An image that is missing or cannot be decoded (empty,
    truncated, symlink loop, ...) stops the run with an `ImageDecodeError` (a `DatasetLayoutError`) naming the file
    and how to resume (`RESUME_HINT`); in a DataLoader worker it reaches the main process as the same type.

    ``modalities`` defaults to each sample's own modality; the stream passes a different list only for the LLCM
    modality-flag quirk (spec §7 b), where the model is fed the opposite flag but the sample metadata stay true.
    """

    def __init__(
        self,
        *,
        samples: Sequence[ReIDSample],
        labels: Sequence[int],
        dataset: str,
        modalities: Sequence[int] | None = None,
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

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Image.Image, int, int, int]:
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
) -> TaskAwareSupervisedClassificationDataset:
    """Wrap ``samples`` as an Avalanche dataset yielding ``(image, label, camid, modality, task_label)``.

    ``initial_group`` is the transform group active on the returned dataset (``"train"`` or ``"eval"``);
    ``.train()`` / ``.eval()`` return copies with the other group. Data attributes: ``targets`` (= ``labels``),
    ``camid``, ``modality`` and ``targets_task_labels`` (constant ``task_label``).
    """
    if initial_group not in ("train", "eval"):
        raise ValueError(f"initial_group: expected 'train' or 'eval', got {initial_group!r}")
    base = ReIDImageDataset(samples=samples, labels=labels, dataset=dataset, modalities=modalities)
    groups = TransformGroups(
        {"train": ImageTransformAdapter(train_transform), "eval": ImageTransformAdapter(eval_transform)}
    )
    data = TaskAwareSupervisedClassificationDataset(
        [base],
        data_attributes=[
            DataAttribute(base.labels, "targets"),
            DataAttribute(base.camids, "camid"),
            DataAttribute(base.modalities, "modality"),
            TaskLabels([int(task_label)] * len(base)),
        ],
        transform_groups=groups,
    )
    # AvalancheDataset takes its active group from the wrapped dataset ("train" for a plain torch dataset) and
    # ignores TransformGroups(current_group=...), so the group is selected afterwards.
    return data.with_transforms(initial_group)
