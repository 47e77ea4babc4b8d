"""The VI-LReID stream as an Avalanche benchmark: one train and one test experience per dataset, in order.

Setting of CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §1): a sequence of sessions, each one VI-ReID
dataset; after each session the model is tested on every dataset. Default order RegDB -> SYSU-MM01 -> LLCM ->
HITSZ-VCM.

Minibatches are ``(image, pid, camid, modality, task_label)``, task label last (Avalanche reads ``mbatch[-1]``).
Labels:

- train experience s: the dataset's training identities, sorted by their dataset pid, get the contiguous labels
  ``[offset_s, offset_s + n_s)`` with ``offset_s`` = number of training identities of the sessions before s;
- test experience s: the test identities get labels after every training label
  (``[T + toff_s, T + toff_s + m_s)``, T = all training identities, ``toff_s`` = test identities before s). Test
  identities are different people from training identities, so no two experiences, train or test, share a label.
  Retrieval metrics use ``experience.reid.samples``, not these labels.
- task label 0 everywhere: the stream is class-incremental-like (one shared model; a strategy that needs the
  session index reads ``experience.current_experience``).

Transforms: a train experience's dataset starts in Avalanche's ``train`` group (training transform) and
``dataset.eval()`` switches it to the test transform (the CKDA plugin extracts prototypes over the training set with
the test transform, docs/method.md §5); test experiences start in ``eval``. Both transforms receive each image's modality
(`ModalityAwareTransform`), which is how the infrared-only augmentation of docs/method.md §6 is applied.

Images: with the package's transforms every image is decoded and resized once, into a per-process memory cache
when it fits (``cache``, `image_store.py`), and the augmentation runs per batch (`batch_loader.py`, docs/data_path.md).

Published-setting quirks (docs/method.md §7) that concern data: (b) ``llcm_flip_test_modality=True`` feeds the model the
opposite modality flag for LLCM test images (minibatch element 3 and the dataset's ``modality`` attribute;
``experience.reid.samples`` keep the true modality so query/gallery selection is unchanged); (c) LLCM training
labels < 500 is the reader's ``max_train_label``: ``reader_options={"llcm": {"max_train_label": 500}}``. Quirk (a),
RegDB "thermal" prototypes from visible images, belongs to the CKDA plugin.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from avalanche.benchmarks.scenarios import benchmark_from_datasets
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
from avalanche.benchmarks.scenarios.task_aware import with_task_labels

from .datasets.check import DATASET_FOLDERS
from .protocols import EvalProtocol
from .image_store import (
    CACHE_MODES,
    CacheLimitError,
    cache_bytes,
    default_cache_limit,
    default_cache_mode,
    format_bytes,
)
from .reid_dataset import ImageTransform, make_reid_dataset, transform_geometry
from .sample import INFRARED, VISIBLE, ReIDSample
from .transforms import AugmentConfig, build_eval_transform, build_train_transform

DEFAULT_ORDER: tuple[str, ...] = ("regdb", "sysu", "llcm", "vcm")
"""The published session order: RegDB -> SYSU-MM01 -> LLCM -> HITSZ-VCM."""

_READERS: dict[str, tuple[tuple[str, ...], type]] = {name: (folders, cls) for name, folders, cls in DATASET_FOLDERS}
"""Reader name -> (accepted folder names under the root, in order of preference; reader class)."""

__all__ = ["DEFAULT_ORDER", "ReIDExperienceInfo", "ReIDReader", "plan_image_cache", "vi_lreid_benchmark"]

logger = logging.getLogger("ckda_avalanche.data")


class ReIDReader(Protocol):
    """What the stream needs from a dataset reader (see docs/ARCHITECTURE.md, "Data contracts")."""

    name: str
    train: list[ReIDSample]
    test_pool: list[ReIDSample]

    def protocol(self, kind: str = "paper") -> EvalProtocol: ...


@dataclass(frozen=True)
class ReIDExperienceInfo:
    """ReID metadata attached to every experience as ``experience.reid``."""

    dataset: str
    """Reader name: "regdb", "sysu", "llcm" or "vcm"."""
    split: str
    """"train" or "test"."""
    num_identities: int
    """Identities in this experience's samples."""
    label_offset: int
    """First label of this experience: labels are ``label_offset + j`` for ``identities[j]``."""
    identities: tuple[int, ...]
    """Dataset pids in label order (sorted ascending)."""
    samples: tuple[ReIDSample, ...]
    """The experience's samples in dataset order: ``reader.train`` or ``reader.test_pool``."""
    protocol: EvalProtocol | None
    """The evaluation protocol over `samples` (test experiences); None for train experiences."""
    modality_flipped: bool = False
    """True when the minibatch modality is the opposite of ``samples[i].modality`` (LLCM quirk, docs/method.md §7 b)."""
    max_train_label: int | None = None
    """Training experiences: the reader's ``max_train_label`` (LLCM quirk, docs/method.md §7 c, is 500), else None."""

    def to_label(self, pid: int) -> int:
        """The label of dataset pid ``pid`` in this experience."""
        try:
            return self.label_offset + self.identities.index(pid)
        except ValueError:
            raise KeyError(f"{self.dataset} {self.split}: pid {pid} is not in this experience") from None


def _build_readers(
    root: str | os.PathLike[str], datasets: Sequence[str], reader_options: Mapping[str, Mapping[str, Any]]
) -> list[ReIDReader]:
    base = Path(root).expanduser()
    if not base.is_dir():
        raise FileNotFoundError(
            f"benchmark root {str(base)!r} is not a directory; expected it to hold "
            + ", ".join(_READERS[name][0][0] for name in datasets)
        )
    readers = []
    for name in datasets:
        folders, cls = _READERS[name]
        found = [base / folder for folder in folders if (base / folder).is_dir()]
        if not found:
            raise FileNotFoundError(
                f"{name}: no dataset folder under {str(base)!r}; expected one of {', '.join(folders)}"
            )
        readers.append(cls(found[0], **dict(reader_options.get(name, {}))))
    return readers


def _check_names(datasets: Sequence[str]) -> list[str]:
    if isinstance(datasets, str):
        raise TypeError(f"datasets: expected a sequence of names, got the string {datasets!r}")
    names = [str(d).lower() for d in datasets]
    unknown = [d for d in names if d not in _READERS]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}: valid names are {list(_READERS)}")
    return names


def _check_reader(reader: Any, position: int) -> None:
    for attr in ("name", "train", "test_pool", "protocol"):
        if not hasattr(reader, attr):
            raise TypeError(f"readers[{position}] ({type(reader).__name__}) has no {attr!r}: not a dataset reader")
    for split in ("train", "test_pool"):
        if len(getattr(reader, split)) == 0:
            raise ValueError(f"{reader.name}: the {split} split is empty")


def _display_name(name: str) -> str:
    """The name the readers use in `DatasetLayoutError` messages ("RegDB", "SYSU-MM01", ...)."""
    return _READERS[name][0][0] if name in _READERS else name


def _labels(samples: Sequence[ReIDSample], offset: int) -> tuple[list[int], tuple[int, ...]]:
    identities = tuple(sorted({s.pid for s in samples}))
    rank = {pid: offset + j for j, pid in enumerate(identities)}
    return [rank[s.pid] for s in samples], identities


def plan_image_cache(splits: Sequence[tuple[str, str, int]], *, img_size: tuple[int, int] | None, cache: str,
                     limit: int) -> dict[tuple[str, str], str]:
    """Which splits ``(dataset display name, split, image count)`` are cached: ``{(name, split): "memory"|"off"}``.

    Splits are taken in the given order (the stream passes the training sets first: they are read every epoch);
    ``"memory"`` caches all of them and raises `CacheLimitError` naming the split that would take the cache over
    ``limit`` bytes; ``"auto"`` caches each split that still fits and reads the others from disk; ``"off"`` caches
    nothing. ``img_size=None`` (custom transforms) caches nothing (``"memory"`` then raises in `make_reid_dataset`).
    """
    if cache not in CACHE_MODES:
        raise ValueError(f"cache: expected one of {CACHE_MODES}, got {cache!r}")
    plan: dict[tuple[str, str], str] = {}
    total = 0
    for name, split, count in splits:
        if cache == "off" or img_size is None:
            plan[name, split] = cache if img_size is None else "off"
            continue
        needed = cache_bytes(count, img_size)
        if total + needed <= limit:
            plan[name, split] = "memory"
            total += needed
        elif cache == "memory":
            raise CacheLimitError(
                f"{name} {split}: caching its {count} images at {img_size[0]}x{img_size[1]} needs "
                f"{format_bytes(needed)} ({needed} bytes); with the {format_bytes(total)} of the splits before it the "
                f"stream's image cache would exceed its limit of {format_bytes(limit)} ({limit} bytes); raise the "
                "limit (cache_limit_bytes, $CKDA_DATA_CACHE_LIMIT), or use cache='auto' (caches what fits) or "
                "cache='off' (reads from disk in DataLoader workers)")
        else:
            plan[name, split] = "off"
            logger.info("%s %s: %d images (%s) do not fit in the image cache (%s of %s used); read from disk", name,
                        split, count, format_bytes(needed), format_bytes(total), format_bytes(limit))
    return plan


def vi_lreid_benchmark(
    root: str | os.PathLike[str] | None = None,
    *,
    datasets: Sequence[str] | None = None,
    readers: Sequence[ReIDReader] | None = None,
    protocol: str = "paper",
    img_size: tuple[int, int] = (256, 128),
    augment: AugmentConfig | None = None,
    train_transform: ImageTransform | None = None,
    eval_transform: ImageTransform | None = None,
    reader_options: Mapping[str, Mapping[str, Any]] | None = None,
    llcm_flip_test_modality: bool = False,
    cache: str | None = None,
    cache_limit_bytes: int | None = None,
) -> CLScenario:
    """Build the VI-LReID benchmark: ``train_stream`` and ``test_stream`` with one experience per dataset.

    Either ``root`` (a folder holding ``RegDB/``, ``SYSU-MM01/``, ``LLCM/``, ``HITSZ-VCM/`` or ``VCM/``) with
    ``datasets`` (names in session order, default `DEFAULT_ORDER`) and optional ``reader_options`` (per dataset
    name, keyword arguments of its reader, e.g. ``{"regdb": {"trial": 2}, "llcm": {"max_train_label": 500}}``), or
    ``readers``: already-built reader objects, in session order.

    ``protocol`` ("paper" or "full") is passed to ``reader.protocol``. Transforms default to
    ``build_train_transform(img_size, config=augment)`` and ``build_eval_transform(img_size)``; a custom transform
    is either a `ModalityAwareTransform` or a one-argument image transform. ``llcm_flip_test_modality`` enables the
    published LLCM quirk (docs/method.md §7 b, see the module docstring); it is an error when "llcm" is not in the stream.

    ``cache`` ("auto", "memory" or "off"; default ``$CKDA_DATA_CACHE`` or "auto") and ``cache_limit_bytes``
    (default ``$CKDA_DATA_CACHE_LIMIT`` or a quarter of the machine's memory) decide which splits are decoded once
    into memory (`plan_image_cache`; training sets first); the others are read from disk. The choice changes speed
    and memory only, never results.

    Returns the Avalanche benchmark; every experience carries ``experience.reid`` (`ReIDExperienceInfo`), the
    benchmark carries ``reid_datasets`` (names in session order) and ``reid_image_sources`` (``{"regdb/train":
    "memory"|"file"|"pil", ...}``: the memory cache, the disk, or PIL images for custom transforms).
    """
    if readers is not None:
        if root is not None or datasets is not None or reader_options is not None:
            raise ValueError("pass either readers=... or root/datasets/reader_options, not both")
        reader_list = list(readers)
    else:
        if root is None:
            raise ValueError("vi_lreid_benchmark needs a root folder or readers=[...]")
        names = _check_names(DEFAULT_ORDER if datasets is None else datasets)
        options = dict(reader_options or {})
        stray = sorted(set(options) - set(names))
        if stray:
            raise ValueError(f"reader_options names {stray}, which are not in datasets {names}")
        reader_list = _build_readers(root, names, options)
    if not reader_list:
        raise ValueError("the stream needs at least one dataset")
    for position, reader in enumerate(reader_list):
        _check_reader(reader, position)
    names = [reader.name for reader in reader_list]
    if len(set(names)) != len(names):
        raise ValueError(f"each dataset may appear once in a stream, got {names}")
    if llcm_flip_test_modality and "llcm" not in names:
        raise ValueError(f"llcm_flip_test_modality=True but 'llcm' is not in the stream {names}")

    train_tf = build_train_transform(img_size, config=augment) if train_transform is None else train_transform
    eval_tf = build_eval_transform(img_size) if eval_transform is None else eval_transform

    geometry = transform_geometry(train_tf, eval_tf)
    limit = default_cache_limit() if cache_limit_bytes is None else int(cache_limit_bytes)
    splits = [(_display_name(r.name), "train", len(r.train)) for r in reader_list]
    splits += [(_display_name(r.name), "test", len(r.test_pool)) for r in reader_list]
    plan = plan_image_cache(splits, img_size=None if geometry is None else geometry[0],
                            cache=default_cache_mode() if cache is None else cache, limit=limit)

    def dataset_for(reader: ReIDReader, split: str, samples: Sequence[ReIDSample], **kwargs: Any) -> Any:
        name = _display_name(reader.name)
        return make_reid_dataset(samples, dataset=name, train_transform=train_tf, eval_transform=eval_tf,
                                 cache=plan[name, split], cache_limit_bytes=limit, **kwargs)

    train_sets, train_infos = [], []
    offset = 0
    for reader in reader_list:
        labels, identities = _labels(reader.train, offset)
        train_sets.append(dataset_for(reader, "train", reader.train, labels=labels, initial_group="train"))
        train_infos.append(
            ReIDExperienceInfo(dataset=reader.name, split="train", num_identities=len(identities),
                               label_offset=offset, identities=identities, samples=tuple(reader.train),
                               protocol=None, max_train_label=getattr(reader, "max_train_label", None))
        )
        offset += len(identities)

    test_sets, test_infos = [], []
    for reader in reader_list:
        labels, identities = _labels(reader.test_pool, offset)
        flip = llcm_flip_test_modality and reader.name == "llcm"
        modalities = [INFRARED if s.modality == VISIBLE else VISIBLE for s in reader.test_pool] if flip else None
        test_sets.append(dataset_for(reader, "test", reader.test_pool, labels=labels, initial_group="eval",
                                     modalities=modalities))
        test_infos.append(
            ReIDExperienceInfo(dataset=reader.name, split="test", num_identities=len(identities),
                               label_offset=offset, identities=identities, samples=tuple(reader.test_pool),
                               protocol=reader.protocol(protocol), modality_flipped=flip)
        )
        offset += len(identities)

    benchmark = with_classes_timeline(with_task_labels(benchmark_from_datasets(train=train_sets, test=test_sets)))
    for experience, info in zip(benchmark.train_stream, train_infos):
        experience.reid = info
    for experience, info in zip(benchmark.test_stream, test_infos):
        experience.reid = info
    benchmark.reid_datasets = names
    kind = {"memory": "memory", "off": "file"}
    benchmark.reid_image_sources = {
        f"{reader.name}/{split}": "pil" if geometry is None else kind[plan[_display_name(reader.name), split]]
        for split in ("train", "test") for reader in reader_list}
    return benchmark
