"""Fixtures building tiny official-layout trees of RegDB, SYSU-MM01, LLCM and HITSZ-VCM (8x4 images).

Each ``*_root`` fixture returns a fresh tree under ``tmp_path``; the ``build_*`` fixtures return the builder so a
test can choose ids, image counts and so on. Index files are written exactly in the formats of the real files in
/work/shared/vi_reid_index (``path label`` lines, one line of comma-separated ids, VCM ``M/D/T/F`` frame names).
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from PIL import Image

REAL_INDEX = Path(os.environ.get("CKDA_VI_REID_INDEX",
                                 Path(__file__).resolve().parents[3] / "shared" / "vi_reid_index"))
"""The real split/index files: ``shared/vi_reid_index`` beside this checkout, or ``$CKDA_VI_REID_INDEX``."""


def _image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 8), (120, 30, 200)).save(buffer, format=fmt)
    return buffer.getvalue()


_BYTES = {".bmp": _image_bytes("BMP"), ".jpg": _image_bytes("JPEG")}


def write_image(path: Path) -> None:
    """Write a valid 8x4 (HxW) image, format from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_BYTES[path.suffix])


def build_regdb(root: Path, *, trial: int = 1, train_ids: Iterable[int] = (1, 2, 3),
                test_ids: Iterable[int] = (4, 5, 6), per_id: int = 2) -> Path:
    """RegDB tree: ``Visible|Thermal/<pid>/<x>_<v|t>_<k>_<pid>.bmp`` and ``idx/*_{trial}.txt``."""
    (root / "idx").mkdir(parents=True, exist_ok=True)
    for split, ids in (("train", list(train_ids)), ("test", list(test_ids))):
        for folder, word, letter in (("Visible", "visible", "v"), ("Thermal", "thermal", "t")):
            lines = []
            for label, pid in enumerate(ids):
                for k in range(per_id):
                    rel = f"{folder}/{pid}/male_back_{letter}_{k:05d}_{pid}.bmp"
                    write_image(root / rel)
                    lines.append(f"{rel} {label}")
            (root / "idx" / f"{split}_{word}_{trial}.txt").write_text("\n".join(lines) + "\n")
    return root


def build_sysu(root: Path, *, train_ids: Iterable[int] = (1, 2), val_ids: Iterable[int] = (3,),
               test_ids: Iterable[int] = (4, 5), per_cam: int = 2,
               per_group: dict[tuple[int, int], int] | None = None) -> Path:
    """SYSU-MM01 tree: ``cam{1..6}/<pid:04d>/<n:04d>.jpg`` and ``exp/{train,val,test}_id.txt``.

    ``per_group[(pid, cam)]`` overrides ``per_cam`` (0 leaves the camera folder of that id absent).
    """
    per_group = per_group or {}
    ids = {"train": list(train_ids), "val": list(val_ids), "test": list(test_ids)}
    for cam in range(1, 7):
        (root / f"cam{cam}").mkdir(parents=True, exist_ok=True)
        for pid in ids["train"] + ids["val"] + ids["test"]:
            for n in range(per_group.get((pid, cam), per_cam)):
                write_image(root / f"cam{cam}" / f"{pid:04d}" / f"{n + 1:04d}.jpg")
    (root / "exp").mkdir(exist_ok=True)
    for split, values in ids.items():
        (root / "exp" / f"{split}_id.txt").write_text(",".join(str(v) for v in values) + "\n")
    return root


def llcm_name(pid: int, cam: int, k: int, folder: str) -> str:
    """An LLCM relative path in the official naming: ``vis/0250/0250_c03_s200519_f13770_vis.jpg``."""
    return f"{folder}/{pid:04d}/{pid:04d}_c{cam:02d}_s{100000 + k:06d}_f{k * 15}_{folder}.jpg"


def build_llcm(root: Path, *, train_ids: Iterable[int] = (1, 2, 3), test_ids: Iterable[int] = (4, 5),
               vis_cams: Iterable[int] = (1, 2), nir_cams: Iterable[int] = (3, 4), per_cam: int = 2) -> Path:
    """LLCM tree: ``vis|nir/<pid:04d>/*.jpg`` and ``idx/{train,test}_{vis,nir}.txt`` + ``idx/test_id.txt``."""
    (root / "idx").mkdir(parents=True, exist_ok=True)
    cams = {"vis": list(vis_cams), "nir": list(nir_cams)}
    for split, ids in (("train", list(train_ids)), ("test", list(test_ids))):
        for folder in ("vis", "nir"):
            lines = []
            for label, pid in enumerate(ids):
                for cam in cams[folder]:
                    for k in range(per_cam):
                        rel = llcm_name(pid, cam, k, folder)
                        write_image(root / rel)
                        lines.append(f"{rel} {label}")
            (root / "idx" / f"{split}_{folder}.txt").write_text("\n".join(lines) + "\n")
    (root / "idx" / "test_id.txt").write_text(",".join(f"{pid:04d}" for pid in test_ids))
    return root


def vcm_frame_name(pid: int, modality: int, cam: int, tracklet: int, frame: int) -> str:
    """An HITSZ-VCM frame name, e.g. ``0001M2D3T0001F0005.jpg``."""
    return f"{pid:04d}M{modality}D{cam}T{tracklet:04d}F{frame:04d}.jpg"


def write_vcm_split(root: Path, split: str, rows: list[tuple[int, int, int, int, int]], *,
                    placeholder: bool = False) -> None:
    """Write ``info/{split}_name.txt`` consistent with ``rows`` (modality, start, end, pid, cam) and the frames
    (8x4 images, or empty placeholder files when ``placeholder``)."""
    content = b"" if placeholder else _BYTES[".jpg"]
    folder = "Train" if split == "train" else "Test"
    names: list[str] = []
    for row, (modality, start, end, pid, cam) in enumerate(rows, start=1):
        assert start == len(names) + 1, "rows must cover the name list contiguously"
        directory = root / folder / f"{pid:04d}" / ("ir" if modality == 1 else "rgb") / f"D{cam}"
        directory.mkdir(parents=True, exist_ok=True)
        for index in range(start, end + 1):
            names.append(vcm_frame_name(pid, modality, cam, row, index))
            with open(directory / f"{index:04d}.jpg", "wb") as handle:
                handle.write(content)
    (root / "info").mkdir(parents=True, exist_ok=True)
    (root / folder).mkdir(exist_ok=True)
    (root / "info" / f"{split}_name.txt").write_text("\n".join(names) + "\n")


def vcm_rows(ids: Iterable[int], *, length: int = 12, short: int = 0) -> list[tuple[int, int, int, int, int]]:
    """Per id: a visible tracklet (cam 1), an infrared tracklet (cam 2) of ``length`` frames, and optionally a
    visible tracklet of ``short`` frames (cam 3), laid out contiguously from frame 1."""
    rows, cursor = [], 1
    for pid in ids:
        for modality, cam, size in ((2, 1, length), (1, 2, length), (2, 3, short)):
            if size == 0:
                continue
            rows.append((modality, cursor, cursor + size - 1, pid, cam))
            cursor += size
    return rows


def build_vcm(root: Path, *, train_ids: Iterable[int] = (1, 2), test_ids: Iterable[int] = (3, 4),
              length: int = 12, short: int = 5) -> Path:
    """HITSZ-VCM tree with ``info/`` files; query_IDX = every infrared test row (1-based), on one line."""
    train = vcm_rows(train_ids, length=length, short=short)
    test = vcm_rows(test_ids, length=length, short=short)
    for split, rows in (("train", train), ("test", test)):
        write_vcm_split(root, split, rows)
        (root / "info" / f"track_{split}_info.txt").write_text(
            "\n".join(f"{m} {s} {e} {pid:04d} {cam}" for m, s, e, pid, cam in rows) + "\n")
    query = [str(i) for i, row in enumerate(test, start=1) if row[0] == 1]
    (root / "info" / "query_IDX.txt").write_text(" ".join(query) + "\n")
    return root


@pytest.fixture
def regdb_root(tmp_path: Path) -> Path:
    return build_regdb(tmp_path / "RegDB")


@pytest.fixture
def sysu_root(tmp_path: Path) -> Path:
    return build_sysu(tmp_path / "SYSU-MM01")


@pytest.fixture
def llcm_root(tmp_path: Path) -> Path:
    return build_llcm(tmp_path / "LLCM")


@pytest.fixture
def vcm_root(tmp_path: Path) -> Path:
    return build_vcm(tmp_path / "HITSZ-VCM")


def touch_listed(root: Path, relpaths: Iterable[str]) -> int:
    """Create empty placeholder files at ``relpaths`` under ``root`` (readers never decode images)."""
    made_dirs: set[Path] = set()
    count = 0
    for rel in relpaths:
        path = root / rel
        if path.parent not in made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(path.parent)
        open(path, "wb").close()
        count += 1
    return count


@pytest.fixture(scope="session")
def builders() -> dict[str, Callable[..., object]]:
    """The tree builders and helpers, for tests that need other ids or counts (conftest is not importable)."""
    return {"regdb": build_regdb, "sysu": build_sysu, "llcm": build_llcm, "vcm": build_vcm,
            "vcm_rows": vcm_rows, "write_vcm_split": write_vcm_split, "touch_listed": touch_listed,
            "write_image": write_image, "llcm_name": llcm_name}


@pytest.fixture(scope="session")
def real_index() -> Path:
    """The shared real index files; tests using them are skipped when the folder is absent."""
    if not REAL_INDEX.is_dir():
        pytest.skip(f"{REAL_INDEX} (real VI-ReID index files) is not available")
    return REAL_INDEX


@pytest.fixture(scope="module")
def placeholder_dir(tmp_path_factory) -> Iterator[Path]:
    """A scratch folder for the ~10k-50k placeholder files of the real-index tests: in /dev/shm (tmpfs, ~25x faster
    to fill than a busy disk) when writable, else under pytest's tmp dir; removed after the module."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="ckda-real-index-", dir=shm))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("real")
