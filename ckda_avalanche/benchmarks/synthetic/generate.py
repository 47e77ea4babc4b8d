"""Entry point: write the four synthetic VI-ReID datasets under one root, once per parameter set.

``generate_synthetic(out)`` writes ``out/RegDB``, ``out/SYSU-MM01``, ``out/LLCM`` and ``out/HITSZ-VCM`` in their
official layouts, then ``out/SYNTHETIC.json`` last, as the completion marker. A later call with the same parameters
returns the stored summary without regenerating; different parameters raise :class:`SyntheticParametersError`
instead of silently mixing two generations.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .domains import LLCM_DOMAIN, REGDB_DOMAIN, SYSU_DOMAIN, VCM_DOMAIN, DomainSpec
from .writers import DatasetCounts, write_llcm, write_regdb, write_sysu, write_vcm

SYNTHETIC_VERSION = 6
"""Bumped whenever the generator's output changes for a given seed; part of the stored parameters."""
MARKER = "SYNTHETIC.json"
"""Name of the summary/completion file written under the root."""
BASE_TRAIN_IDS = 64
"""Training identities per dataset at ``scale=1``."""
BASE_TEST_IDS = 32
"""Test identities per dataset at ``scale=1`` (RegDB: see :data:`HALF_SPLIT_DATASETS`)."""
HALF_SPLIT_DATASETS = ("regdb",)
"""Datasets whose identities are split in half, as the real RegDB is (206 / 206): as many test identities as training
ones. Each synthetic RegDB identity is seen in one view by one camera pair, so its test set needs more identities
than the others' for a stable score (docs/calibration.md, generator v6)."""
STORED_SIZE = (128, 64)
"""Default (height, width) the synthetic images are stored at."""
DATASET_DIRS: dict[str, str] = {"regdb": "RegDB", "sysu": "SYSU-MM01", "llcm": "LLCM", "vcm": "HITSZ-VCM"}
"""Directory of each dataset under the synthetic root, by reader name."""

_WRITERS = (("regdb", write_regdb, REGDB_DOMAIN), ("sysu", write_sysu, SYSU_DOMAIN),
            ("llcm", write_llcm, LLCM_DOMAIN), ("vcm", write_vcm, VCM_DOMAIN))


class SyntheticParametersError(ValueError):
    """The output directory already holds synthetic data made with other parameters, or foreign content."""


@dataclass(frozen=True, kw_only=True)
class SyntheticSummary:
    """What :func:`generate_synthetic` wrote (also stored as ``SYNTHETIC.json``)."""

    root: Path
    """Root directory holding the four datasets."""
    seed: int
    """Seed of the generation."""
    scale: float
    """Identity-count multiplier."""
    img_size: tuple[int, int]
    """Stored image size (height, width)."""
    version: int
    """Generator version (:data:`SYNTHETIC_VERSION`)."""
    datasets: dict[str, DatasetCounts] = field(default_factory=dict)
    """Per-dataset counts, by reader name."""
    seconds: float = 0.0
    """Wall time the generation took."""

    def dataset_root(self, name: str) -> Path:
        """Root directory of one dataset, by reader name (``regdb``, ``sysu``, ``llcm``, ``vcm``)."""
        if name not in DATASET_DIRS:
            raise KeyError(f"unknown synthetic dataset {name!r}; expected one of {sorted(DATASET_DIRS)}")
        return self.root / DATASET_DIRS[name]

    def parameters(self) -> dict:
        """The parameters that identify a generation (compared on reuse)."""
        return {"version": self.version, "seed": self.seed, "scale": self.scale, "img_size": list(self.img_size)}

    def to_json(self) -> dict:
        """JSON-serialisable form (without the root, which is where the file lies)."""
        return {**self.parameters(), "seconds": round(self.seconds, 3),
                "datasets": {k: asdict(v) for k, v in self.datasets.items()}}

    @classmethod
    def from_json(cls, root: Path, data: dict) -> SyntheticSummary:
        """Inverse of :meth:`to_json`; raises :class:`SyntheticParametersError` naming a missing or bad field."""
        try:
            return cls(root=root, seed=int(data["seed"]), scale=float(data["scale"]),
                       img_size=(int(data["img_size"][0]), int(data["img_size"][1])), version=int(data["version"]),
                       datasets={k: DatasetCounts(**v) for k, v in data["datasets"].items()},
                       seconds=float(data.get("seconds", 0.0)))
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise SyntheticParametersError(
                f"{root / MARKER}: expected fields version, seed, scale, img_size [h, w] and datasets; "
                f"could not read it ({err!r})") from err


def identity_counts(scale: float, dataset: str | None = None) -> tuple[int, int]:
    """(training, test) identities of ``dataset`` (a reader name; None: the common counts) at ``scale``, at least 2
    each so that every protocol has a gallery."""
    n_train = max(2, int(round(BASE_TRAIN_IDS * scale)))
    return n_train, n_train if dataset in HALF_SPLIT_DATASETS else max(2, int(round(BASE_TEST_IDS * scale)))


def synthetic_folder(base: str | Path, *, seed: int, scale: float) -> Path:
    """The data folder of one draw under ``base``: ``base/v<SYNTHETIC_VERSION>-seed<seed>-scale<scale>`` (scale as
    ``%g``: ``v6-seed7-scale1``). A draw is named by its generator seed; a new generator version or another scale
    gets its own folder, so a run never meets data of another draw."""
    return Path(base) / f"v{SYNTHETIC_VERSION}-seed{int(seed)}-scale{float(scale):g}"


def generate_synthetic(out: str | Path, *, seed: int = 0, scale: float = 1.0, img_size: tuple[int, int] = STORED_SIZE,
                       overwrite: bool = False) -> SyntheticSummary:
    """Write the four synthetic datasets under ``out`` in their official layouts and return their summary.

    Deterministic for ``(seed, scale, img_size)``: files are byte-identical between calls. If ``out/SYNTHETIC.json``
    exists with the same parameters the stored summary is returned without writing anything (unless
    ``overwrite``); if it exists with other parameters, or dataset directories exist without it (an interrupted
    generation), :class:`SyntheticParametersError` is raised unless ``overwrite`` is true, which deletes the four
    dataset directories and the marker (nothing else under ``out``) and generates again.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    if len(img_size) != 2 or min(int(s) for s in img_size) < 16:
        raise ValueError(f"img_size must be (height, width) with both >= 16, got {img_size!r}")
    root = Path(out)
    img_size = (int(img_size[0]), int(img_size[1]))
    wanted = SyntheticSummary(root=root, seed=int(seed), scale=float(scale), img_size=img_size,
                              version=SYNTHETIC_VERSION)
    marker = root / MARKER
    existing_dirs = [root / d for d in DATASET_DIRS.values() if (root / d).exists()]
    if marker.exists() and not overwrite:
        try:
            stored = SyntheticSummary.from_json(root, json.loads(marker.read_text()))
        except json.JSONDecodeError as err:
            raise SyntheticParametersError(
                f"{marker}: not valid JSON ({err}); pass overwrite=True to regenerate") from err
        if stored.parameters() != wanted.parameters():
            raise SyntheticParametersError(
                f"{marker}: holds synthetic data made with {stored.parameters()}, but {wanted.parameters()} was "
                f"asked for; use another directory or pass overwrite=True (`ckda data synth --out DIR --overwrite`) "
                f"to replace it")
        return stored
    if existing_dirs and not overwrite:
        raise SyntheticParametersError(
            f"{root}: dataset directories {[p.name for p in existing_dirs]} exist without {MARKER} (an interrupted "
            f"generation or real data); refusing to mix; pass overwrite=True to delete and regenerate them")
    for path in existing_dirs:
        shutil.rmtree(path)
    marker.unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    datasets = {name: write_dataset(root / DATASET_DIRS[name], name, seed=int(seed), scale=scale, img_size=img_size)
                for name, _, _ in _WRITERS}
    summary = SyntheticSummary(root=root, seed=wanted.seed, scale=wanted.scale, img_size=img_size,
                               version=SYNTHETIC_VERSION, datasets=datasets, seconds=time.perf_counter() - start)
    # The marker holds the wall time, which differs between runs; the datasets themselves are byte-identical.
    marker.write_text(json.dumps(summary.to_json(), indent=2, sort_keys=True) + "\n")
    return summary


def write_dataset(out: str | Path, dataset: str, *, seed: int = 0, scale: float = 1.0,
                  img_size: tuple[int, int] = STORED_SIZE, spec: DomainSpec | None = None,
                  n_test: int | None = None) -> DatasetCounts:
    """Write one dataset (a reader name) into ``out`` from the random stream :func:`generate_synthetic` gives it, so
    with the defaults the files equal that dataset's in a full generation. ``spec`` replaces the dataset's domain
    and ``n_test`` its test identity count: the calibration variants of ``benchmarks/synthetic_variant.py``. No
    marker is written; ``out`` must not hold an earlier dataset."""
    names = [name for name, _, _ in _WRITERS]
    if dataset not in names:
        raise KeyError(f"unknown synthetic dataset {dataset!r}; expected one of {names}")
    index = names.index(dataset)
    _, writer, default_spec = _WRITERS[index]
    n_train, default_test = identity_counts(scale, dataset)
    child = np.random.SeedSequence([int(seed), SYNTHETIC_VERSION]).spawn(len(_WRITERS))[index]
    return writer(Path(out), spec=default_spec if spec is None else spec, n_train=n_train,
                  n_test=default_test if n_test is None else n_test, img_size=img_size, seed=child)
