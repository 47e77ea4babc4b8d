"""Build a data root in which every bad-input case of ``ckda data check --deep`` occurs once, for the docs and tests.

    python benchmarks/make_broken_tree.py OUT        # then: ckda data check OUT --deep

The tree starts as the synthetic data (``generate_synthetic(OUT, scale=0.1, img_size=(32, 16))``: RegDB,
SYSU-MM01, LLCM and HITSZ-VCM in their official layouts, 1k tiny images) and then each case below is applied to
it. `build_broken_tree` returns the cases; each names the file the check must name and a phrase of its message, so
``tests/benchmarks/test_deep_check.py`` can assert the report lists all of them. Two cases are layouts that must
keep working (symlinked identity folders, a full-range 16-bit infrared PNG): they expect no problem.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SCALE = 0.1
"""Synthetic identity-count multiplier (6 train / 3 test identities per dataset)."""
IMG_SIZE = (32, 16)
"""Synthetic image size (height, width)."""


@dataclass(frozen=True)
class BrokenCase:
    """One bad input planted in the tree."""

    name: str
    """Short id of the case."""
    description: str
    """What was done to the tree."""
    severity: str | None
    """``"error"`` or ``"warning"`` expected in the report, None when the case must pass silently."""
    path: str
    """The file or folder the report must name (relative to the tree root)."""
    phrase: str
    """A phrase of the expected message ('' when no problem is expected)."""


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())  # RegDB/LLCM index files use CRLF, like the originals


def _png16(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def _replace_with_png16(root: Path, index: Path, line_no: int, values: np.ndarray) -> str:
    """Write ``values`` as a 16-bit PNG beside the image of ``index`` line ``line_no`` and point the line at it."""
    lines = _lines(index)
    rel, label = lines[line_no - 1].split()
    new_rel = rel.rsplit(".", 1)[0] + ".png"
    (root / new_rel).write_bytes(_png16(values))
    (root / rel).unlink()
    lines[line_no - 1] = f"{new_rel} {label}"
    _write_lines(index, lines)
    return new_rel


def build_broken_tree(out: str | Path) -> list[BrokenCase]:
    """Generate the synthetic tree under ``out`` (must not exist or be empty) and plant every case in it."""
    from ckda_avalanche.benchmarks.synthetic import generate_synthetic

    out = Path(out)
    generate_synthetic(out, seed=0, scale=SCALE, img_size=IMG_SIZE)
    cases: list[BrokenCase] = []
    rng = np.random.default_rng(0)
    height, width = IMG_SIZE

    # --- RegDB: 16-bit infrared PNGs, leak, duplicated lines, an empty image, a symlinked identity folder
    regdb = out / "RegDB"
    idx = regdb / "idx"
    ramp = np.linspace(0, 65535, height * width).reshape(height, width)
    full = _replace_with_png16(regdb, idx / "train_thermal_1.txt", 1, ramp)
    cases.append(BrokenCase("regdb-16bit-full-range", "a 16-bit infrared PNG using the whole 0..65535 range (was: "
                            "saturated to white); scaled to 8 bits, no problem", None, f"RegDB/{full}", ""))
    twelve = _replace_with_png16(regdb, idx / "train_thermal_1.txt", 2,
                                 rng.integers(1000, 3000, size=(height, width)))
    cases.append(BrokenCase("regdb-16bit-low-range", "a 16-bit infrared PNG with values 1000..3000 only (12-bit "
                            "sensor data)", "warning", f"RegDB/{twelve}", "grey levels"))
    eight = _replace_with_png16(regdb, idx / "train_thermal_1.txt", 3, rng.integers(0, 256, size=(height, width)))
    cases.append(BrokenCase("regdb-16bit-flat", "a 16-bit infrared PNG holding 8-bit values (0..255): scaling to 8 "
                            "bits leaves a flat (black) image", "error", f"RegDB/{eight}", "flat image"))
    train_v, train_t = _lines(idx / "train_visible_1.txt"), _lines(idx / "train_thermal_1.txt")
    leak_pid = train_v[0].split()[0].split("/")[1]
    for name, rows in (("test_visible_1.txt", train_v), ("test_thermal_1.txt", train_t)):
        test = _lines(idx / name)
        extra = [f"{row.split()[0]} 99" for row in rows if row.split()[0].split("/")[1] == leak_pid][:2]
        _write_lines(idx / name, test + extra)
    cases.append(BrokenCase("regdb-leak", f"2 images of training identity {leak_pid} appended to "
                            "test_visible_1.txt and test_thermal_1.txt", "error", "RegDB/idx/test_visible_1.txt",
                            "train/test identity leak"))
    test_t = _lines(idx / "test_thermal_1.txt")
    _write_lines(idx / "test_thermal_1.txt", test_t + test_t[:3])
    cases.append(BrokenCase("regdb-duplicate-lines", "the first 3 lines of test_thermal_1.txt repeated at its end",
                            "error", "RegDB/idx/test_thermal_1.txt", "duplicated line"))
    empty = train_v[1].split()[0]
    (regdb / empty).write_bytes(b"")
    cases.append(BrokenCase("regdb-empty-image", "a training image truncated to 0 bytes", "error",
                            f"RegDB/{empty}", "the file is empty (0 bytes)"))
    shared = out / "shared-storage" / "RegDB-Visible"
    shared.parent.mkdir(parents=True, exist_ok=True)
    moved = regdb / "Visible" / train_v[-1].split()[0].split("/")[1]
    shutil.move(str(moved), shared)
    os.symlink(shared, moved)
    cases.append(BrokenCase("regdb-symlinked-identity-folder", f"Visible/{moved.name} is a symlink to a folder "
                            "elsewhere: must work", None, f"RegDB/Visible/{moved.name}", ""))

    # --- SYSU-MM01: unpadded and ambiguous identity folders, an empty camera, a truncated image
    sysu = out / "SYSU-MM01"
    cam1 = sorted(p for p in (sysu / "cam1").iterdir())
    unpadded = cam1[0]
    unpadded.rename(sysu / "cam1" / str(int(unpadded.name)))
    cases.append(BrokenCase("sysu-unpadded-folder", f"cam1/{unpadded.name} renamed to cam1/{int(unpadded.name)}",
                            "error", f"SYSU-MM01/cam1/{int(unpadded.name)}", "not zero-padded"))
    cam4 = sorted(p for p in (sysu / "cam4").iterdir())
    twin = sysu / "cam4" / str(int(cam4[0].name))
    shutil.copytree(cam4[0], twin)
    cases.append(BrokenCase("sysu-ambiguous-folders", f"cam4/{twin.name} added beside cam4/{cam4[0].name}", "error",
                            f"SYSU-MM01/cam4/{cam4[0].name}", "ambiguous identity folders"))
    for folder in list((sysu / "cam3").iterdir()):
        shutil.rmtree(folder)
    cases.append(BrokenCase("sysu-empty-camera", "every identity folder of cam3 (infrared) removed", "error",
                            "SYSU-MM01/cam3", "camera folder holds no image"))
    jpg = sorted((sysu / "cam2").rglob("*.jpg"))[0]
    jpg.write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 2])
    cases.append(BrokenCase("sysu-truncated-image", "a JPEG cut to half its bytes", "error",
                            f"SYSU-MM01/{jpg.relative_to(sysu).as_posix()}", "truncated"))

    # --- LLCM: leak, a symlink loop, a file that is not an image
    llcm = out / "LLCM"
    lidx = llcm / "idx"
    train_vis, train_nir = _lines(lidx / "train_vis.txt"), _lines(lidx / "train_nir.txt")
    leak = train_vis[0].split()[0].split("/")[1]
    for name, rows in (("test_vis.txt", train_vis), ("test_nir.txt", train_nir)):
        extra = [f"{row.split()[0]} 99" for row in rows if row.split()[0].split("/")[1] == leak][:1]
        _write_lines(lidx / name, _lines(lidx / name) + extra)
    cases.append(BrokenCase("llcm-leak", f"an image of training identity {leak} appended to test_vis.txt and "
                            "test_nir.txt", "error", "LLCM/idx/test_vis.txt", "train/test identity leak"))
    loop = llcm / train_nir[1].split()[0]
    loop.unlink()
    os.symlink(loop.name, loop)
    cases.append(BrokenCase("llcm-symlink-loop", "a training image replaced by a symlink to itself", "error",
                            "LLCM/idx/train_nir.txt", "symlink loop"))
    garbage = llcm / train_vis[2].split()[0]
    garbage.write_bytes(b"this is not a JPEG" * 10)
    cases.append(BrokenCase("llcm-not-an-image", "a training .jpg overwritten with text", "error",
                            f"LLCM/{train_vis[2].split()[0]}", "cannot decode image"))

    # --- HITSZ-VCM: a duplicated tracklet row, a dangling symlink frame
    vcm = out / "HITSZ-VCM"
    info = vcm / "info"
    rows = _lines(info / "track_train_info.txt")
    _write_lines(info / "track_train_info.txt", rows[:2] + rows[1:2] + rows[2:])
    cases.append(BrokenCase("vcm-duplicate-row", "row 2 of track_train_info.txt repeated as row 3", "error",
                            "HITSZ-VCM/info/track_train_info.txt", "duplicated tracklet row"))
    frame = sorted((vcm / "Test").rglob("*.jpg"))[0]
    frame.unlink()
    os.symlink(out / "nowhere" / "frame.jpg", frame)
    cases.append(BrokenCase("vcm-dangling-symlink", "a test frame replaced by a symlink to a missing file", "error",
                            f"HITSZ-VCM/{frame.relative_to(vcm).as_posix()}", "dangling symlink"))
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to create (must not exist)")
    args = parser.parse_args(argv)
    if Path(args.out).exists():
        parser.error(f"{args.out} exists; choose a new folder")
    for case in build_broken_tree(args.out):
        expected = f"{case.severity}: {case.phrase!r}" if case.severity else "no problem"
        print(f"{case.name:<32} {case.path}  ({expected})\n    {case.description}")
    print(f"\nnow run: ckda data check {args.out} --deep")
    return 0


if __name__ == "__main__":
    sys.exit(main())
