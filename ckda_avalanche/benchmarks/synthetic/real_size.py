"""Real-size stand-ins: RegDB and LLCM written at exactly the paths of their real index files, with generated images.

For rehearsing the ``paper`` preset's data path at real scale without the real images (cache planning, decoding,
augmentation, memory): the index files (``RegDB/idx/*``, ``LLCM/idx/*``, e.g. the DMM-CDCN redistribution) are copied
and every image they list is written at ``img_size`` (256x128 by default, the paper model's input), as BMP for RegDB
and JPEG for LLCM like the real files. Images are smooth random colour fields with noise (identity-independent: the
content only has to cost what a photo costs to decode); the real counts follow from the index files (RegDB: 412
identities, 8,240 images over its ten trials; LLCM: 1,064 identities, 46,767 images).

SYSU-MM01's index lists identities only (no per-camera image counts) and HITSZ-VCM's frame-name lists are not part
of the redistributed index, so those two are not written here; `generate_synthetic` writes all four at a reduced
scale.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["REAL_SIZE_DATASETS", "write_real_size"]

REAL_SIZE_DATASETS: dict[str, tuple[str, str]] = {"regdb": ("RegDB", ".bmp"), "llcm": ("LLCM", ".jpg")}
"""Datasets written at real size: name -> (folder, image format)."""


def _listed(index_dir: Path) -> list[str]:
    paths: list[str] = []
    for path in sorted(index_dir.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2 and "/" in parts[0]:
                paths.append(parts[0])
    return list(dict.fromkeys(paths))  # every image once, in first-listed order


def _image(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    coarse = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    smooth = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:h, :w]
    noise = rng.integers(-20, 21, (h, w, 3), dtype=np.int16)
    return np.clip(smooth.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def write_real_size(out: str | Path, index_root: str | Path, *, datasets: tuple[str, ...] | None = None,
                    img_size: tuple[int, int] = (256, 128), seed: int = 0, quality: int = 90) -> dict[str, dict]:
    """Write ``datasets`` under ``out`` in their official layouts at the real counts of ``index_root``'s index files;
    returns per dataset ``{"images": n, "bytes": on-disk size, "seconds": write time}``. ``datasets=None``: those of
    `REAL_SIZE_DATASETS` whose index folder ``index_root`` holds."""
    if datasets is None:
        datasets = tuple(name for name, (folder, _) in REAL_SIZE_DATASETS.items()
                         if (Path(index_root) / folder / "idx").is_dir())
    unknown = [d for d in datasets if d not in REAL_SIZE_DATASETS]
    if unknown:
        raise ValueError(f"datasets: {unknown[0]!r} cannot be written at real size; expected some of "
                         f"{sorted(REAL_SIZE_DATASETS)}")
    rng = np.random.default_rng(seed)
    report: dict[str, dict] = {}
    for name in datasets:
        folder, suffix = REAL_SIZE_DATASETS[name]
        source = Path(index_root) / folder / "idx"
        if not source.is_dir():
            raise FileNotFoundError(f"{source}: no index folder for {name}; expected {folder}/idx/*.txt")
        root = Path(out) / folder
        start = time.perf_counter()
        shutil.copytree(source, root / "idx", dirs_exist_ok=True)
        made: set[Path] = set()
        size = 0
        listed = _listed(source)
        for rel in listed:
            path = root / rel
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            image = Image.fromarray(_image(rng, img_size))
            if suffix == ".jpg":
                image.save(path, format="JPEG", quality=quality)
            else:
                image.save(path, format="BMP")
            size += path.stat().st_size
        report[name] = {"images": len(listed), "bytes": size, "seconds": time.perf_counter() - start}
    return report
