"""Writers of the four official VI-ReID layouts (RegDB, SYSU-MM01, LLCM, HITSZ-VCM) from synthetic identities.

Every writer produces exactly the directory layout and index-file formats of the real dataset (as in
docs/real_datasets.md), so the real readers are the only code path that reads synthetic data:

- RegDB: ``Visible/<pid>/<sex>_<view>_v_<n:05d>_<pid>.bmp`` (+ ``Thermal``, ``_t_``), ``idx/{train,test}_{visible,
  thermal}_{t}.txt`` for 10 random half splits, CRLF lines ``path label`` with labels 0-based by first appearance.
- SYSU-MM01: ``cam<k>/<pid:04d>/<n:04d>.jpg``, ``exp/{train,val,test,available}_id.txt`` (one comma-separated line).
- LLCM: ``{vis,nir}/<pid:04d>/<pid:04d>_c<NN>_s<session>_f<frame>_{vis,nir}.jpg``, ``idx/{train,test}_{vis,nir}.txt``
  and ``idx/test_id.txt`` (comma-separated 4-digit ids, no newline).
- HITSZ-VCM: ``{Train,Test}/<pid:04d>/{rgb,ir}/D<cam>/<frame>.jpg``, ``info/{train,test}_name.txt`` with names
  ``<pid:04d>M<m>D<cam>T<track>F<frame>.jpg``, ``info/track_{train,test}_info.txt`` rows ``m start end pid cam``
  (m: 1 infrared, 2 visible; 1-based inclusive rows of the name list) and ``info/query_IDX.txt``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .domains import DomainSpec
from .identity import IdentityAttributes, sample_identities
from .nuisance import VIEWS, CameraCondition, sample_cameras, sample_nuisance, tracklet_nuisance
from .render import render_images

JPEG_QUALITY = 90
"""JPEG quality of the written images."""
VCM_MIN_SEQ_LEN = 12
"""Tracklets shorter than this are skipped by the published HITSZ-VCM protocol; a few are written on purpose."""


@dataclass(frozen=True, kw_only=True)
class DatasetCounts:
    """What one writer produced."""

    name: str
    """Reader name (``regdb``, ``sysu``, ``llcm``, ``vcm``)."""
    directory: str
    """Directory name under the synthetic root."""
    train_ids: int
    """Number of training identities (RegDB: per trial)."""
    test_ids: int
    """Number of test identities (RegDB: per trial)."""
    visible_images: int
    """Visible image files written."""
    infrared_images: int
    """Infrared image files written."""
    tracklets: int = 0
    """Tracklets listed in the track-info files (HITSZ-VCM only)."""


@dataclass(frozen=True, kw_only=True)
class _Context:
    root: Path
    spec: DomainSpec
    img_size: tuple[int, int]
    rng: np.random.Generator
    cameras: dict[tuple[int, int], CameraCondition]
    made_dirs: set[Path] = dataclasses.field(default_factory=set)


def _context(root: Path, spec: DomainSpec, img_size: tuple[int, int], seed: np.random.SeedSequence) -> _Context:
    cam_seed, render_seed = seed.spawn(2)
    return _Context(root=root, spec=spec, img_size=img_size, rng=np.random.default_rng(render_seed),
                    cameras=sample_cameras(spec, np.random.default_rng(cam_seed)))


def _save(ctx: _Context, arr: np.ndarray, path: Path) -> None:
    if path.parent not in ctx.made_dirs:  # one mkdir per folder, not per file: the disk is shared and slow
        path.parent.mkdir(parents=True, exist_ok=True)
        ctx.made_dirs.add(path.parent)
    if path.suffix == ".bmp":
        Image.fromarray(arr).save(path, format="BMP")
    else:
        Image.fromarray(arr).save(path, format="JPEG", quality=JPEG_QUALITY)


def _write_lines(path: Path, lines: list[str], *, newline: str = "\n", final_newline: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = newline.join(lines) + (newline if final_newline and lines else "")
    path.write_bytes(text.encode("ascii"))


def _identities(ctx: _Context, count: int) -> list[IdentityAttributes]:
    return sample_identities(ctx.spec, count, ctx.rng)


def write_regdb(root: Path, *, spec: DomainSpec, n_train: int, n_test: int, img_size: tuple[int, int],
                seed: np.random.SeedSequence) -> DatasetCounts:
    """RegDB layout: one visible/thermal pair per capture (same pose), 10 of each per id, 10 random trials."""
    ctx = _context(root, spec, img_size, seed)
    n_ids = n_train + n_test
    people = _identities(ctx, n_ids)
    vis_cam, ir_cam = ctx.cameras[(0, spec.visible_cameras[0])], ctx.cameras[(1, spec.infrared_cameras[0])]
    files: dict[int, tuple[list[str], list[str]]] = {}
    number = 0
    for pid, who in enumerate(people, start=1):
        sex = "female" if (who.long_hair or who.skirt) else "male"
        view = spec.views[int(ctx.rng.integers(len(spec.views)))]
        nz = sample_nuisance(spec, ctx.rng, 10)
        nz = dataclasses.replace(nz, view=np.full(10, VIEWS.index(view)))
        vis = render_images(who, vis_cam, nz, spec, img_size, ctx.rng)
        ir = render_images(who, ir_cam, nz, spec, img_size, ctx.rng)
        names_v, names_t = [], []
        for a, b in zip(vis, ir):
            number += int(ctx.rng.integers(1, 4))
            rel_v = f"Visible/{pid}/{sex}_{view}_v_{number:05d}_{pid}.bmp"
            rel_t = f"Thermal/{pid}/{sex}_{view}_t_{number:05d}_{pid}.bmp"
            _save(ctx, a, root / rel_v)
            _save(ctx, b, root / rel_t)
            names_v.append(rel_v)
            names_t.append(rel_t)
        files[pid] = (names_v, names_t)
    split_rng = np.random.default_rng(seed.spawn(1)[0])
    for trial in range(1, 11):
        order = (split_rng.permutation(n_ids) + 1).tolist()
        for part, pids in (("train", order[:n_train]), ("test", order[n_train:])):
            for k, modality in ((0, "visible"), (1, "thermal")):
                lines = [f"{path} {label}" for label, pid in enumerate(pids) for path in files[pid][k]]
                _write_lines(root / "idx" / f"{part}_{modality}_{trial}.txt", lines, newline="\r\n")
    return DatasetCounts(name="regdb", directory=root.name, train_ids=n_train, test_ids=n_test,
                         visible_images=10 * n_ids, infrared_images=10 * n_ids)


def _pick(rng: np.random.Generator, options: tuple[int, ...] | list[int], low: int, high: int) -> list[int]:
    """A sorted random subset of ``options`` of size in [low, high] (clamped to the options available)."""
    k = int(rng.integers(min(low, len(options)), min(high, len(options)) + 1))
    return sorted(int(c) for c in rng.choice(np.asarray(options), size=k, replace=False))


def _cross_cameras(rng: np.random.Generator, vis_opts, ir_opts, vis_range, ir_range) -> tuple[list[int], list[int]]:
    """Visible and infrared camera subsets such that at least one visible camera is not an infrared one.

    This keeps every identity retrievable under the market rule (same id and same camera are dropped).
    """
    ir = _pick(rng, ir_opts, *ir_range)
    vis = _pick(rng, vis_opts, *vis_range)
    spare = [c for c in vis_opts if c not in ir]
    if all(c in ir for c in vis) and spare:
        vis[0] = int(rng.choice(spare))
        vis = sorted(set(vis))
    return vis, ir


def write_sysu(root: Path, *, spec: DomainSpec, n_train: int, n_test: int, img_size: tuple[int, int],
               seed: np.random.SeedSequence) -> DatasetCounts:
    """SYSU-MM01 layout: not every id in every camera; ids are a sparse subset of 1..N like the real ones."""
    ctx = _context(root, spec, img_size, seed)
    n_ids = n_train + n_test
    people = _identities(ctx, n_ids)
    pool = np.arange(1, n_ids + max(1, n_ids // 8) + 1)
    pids = sorted(ctx.rng.choice(pool, size=n_ids, replace=False).tolist())
    shuffled = ctx.rng.permutation(pids).tolist()
    test = sorted(shuffled[:n_test])
    trainval = sorted(shuffled[n_test:])
    n_val = max(1, n_train // 5) if n_train > 1 else 0
    val = trainval[len(trainval) - n_val:]
    train = trainval[: len(trainval) - n_val]
    counts = [0, 0]
    for pid, who in zip(pids, people):
        vis_cams, ir_cams = _cross_cameras(ctx.rng, spec.visible_cameras, spec.infrared_cameras, (2, 4), (1, 2))
        for modality, cams, (lo, hi) in ((0, vis_cams, (2, 5)), (1, ir_cams, (4, 7))):
            for cam in cams:
                n = int(ctx.rng.integers(lo, hi))
                imgs = render_images(who, ctx.cameras[(modality, cam)], sample_nuisance(spec, ctx.rng, n), spec,
                                     img_size, ctx.rng)
                for k, arr in enumerate(imgs, start=1):
                    _save(ctx, arr, root / f"cam{cam}" / f"{pid:04d}" / f"{k:04d}.jpg")
                counts[modality] += n
    for name, ids in (("train_id", train), ("val_id", val), ("test_id", test), ("available_id", pids)):
        _write_lines(root / "exp" / f"{name}.txt", [",".join(str(i) for i in ids)])
    return DatasetCounts(name="sysu", directory=root.name, train_ids=len(trainval), test_ids=len(test),
                         visible_images=counts[0], infrared_images=counts[1])


def write_llcm(root: Path, *, spec: DomainSpec, n_train: int, n_test: int, img_size: tuple[int, int],
               seed: np.random.SeedSequence) -> DatasetCounts:
    """LLCM layout: train and test ids alike under ``vis/`` and ``nir/``; index files list ids in shuffled order."""
    ctx = _context(root, spec, img_size, seed)
    n_ids = n_train + n_test
    people = _identities(ctx, n_ids)
    order = ctx.rng.permutation(np.arange(1, n_ids + 1)).tolist()
    files: dict[int, tuple[list[str], list[str]]] = {}
    counts = [0, 0]
    for pid, who in enumerate(people, start=1):
        vis_cams, ir_cams = _cross_cameras(ctx.rng, spec.visible_cameras, spec.infrared_cameras, (2, 3), (2, 3))
        lists: tuple[list[str], list[str]] = ([], [])
        for modality, cams, tag in ((0, vis_cams, "vis"), (1, ir_cams, "nir")):
            for cam in cams:
                n = int(ctx.rng.integers(3, 5))
                hour, minute, second = (int(ctx.rng.integers(0, k)) for k in (24, 60, 60))
                session = hour * 10000 + minute * 100 + second  # hhmmss, like 's183650'
                frame = int(ctx.rng.integers(1, 300)) * 15
                imgs = render_images(who, ctx.cameras[(modality, cam)], sample_nuisance(spec, ctx.rng, n), spec,
                                     img_size, ctx.rng)
                for arr in imgs:
                    frame += 15 * int(ctx.rng.integers(1, 6))
                    rel = f"{tag}/{pid:04d}/{pid:04d}_c{cam:02d}_s{session:06d}_f{frame}_{tag}.jpg"
                    _save(ctx, arr, root / rel)
                    lists[modality].append(rel)
                counts[modality] += n
        files[pid] = lists
    train, test = order[:n_train], order[n_train:]
    for part, pids in (("train", train), ("test", test)):
        for k, tag in ((0, "vis"), (1, "nir")):
            lines = [f"{path} {label}" for label, pid in enumerate(pids) for path in files[pid][k]]
            _write_lines(root / "idx" / f"{part}_{tag}.txt", lines)
    _write_lines(root / "idx" / "test_id.txt", [",".join(f"{pid:04d}" for pid in test)], final_newline=False)
    return DatasetCounts(name="llcm", directory=root.name, train_ids=n_train, test_ids=n_test,
                         visible_images=counts[0], infrared_images=counts[1])


def write_vcm(root: Path, *, spec: DomainSpec, n_train: int, n_test: int, img_size: tuple[int, int],
              seed: np.random.SeedSequence) -> DatasetCounts:
    """HITSZ-VCM layout: per id and modality 2 tracklets of 12-24 frames (sometimes a third, shorter than 12)."""
    ctx = _context(root, spec, img_size, seed)
    people = _identities(ctx, n_train + n_test)
    counts = [0, 0]
    n_tracklets = 0
    for part, folder, pids in (("train", "Train", range(1, n_train + 1)),
                               ("test", "Test", range(n_train + 1, n_train + n_test + 1))):
        names: list[str] = []
        rows: list[str] = []
        query: list[int] = []
        for pid in pids:
            who = people[pid - 1]
            vis_cams, ir_cams = _cross_cameras(ctx.rng, spec.visible_cameras, spec.infrared_cameras, (1, 2), (1, 2))
            for modality, cams, m_code, tag in ((0, vis_cams, 2, "rgb"), (1, ir_cams, 1, "ir")):
                # 12 .. 24 frames, most of them short (keeps the generation fast), like many real tracklets.
                lengths = [VCM_MIN_SEQ_LEN + int(min(12, ctx.rng.poisson(3.0))) for _ in range(2)]
                # A short third tracklet, always for the split's first infrared identity, exercises the documented
                # skip of tracklets below VCM_MIN_SEQ_LEN.
                if ctx.rng.random() < 0.2 or (pid == pids[0] and modality == 1):
                    lengths.append(int(ctx.rng.integers(5, VCM_MIN_SEQ_LEN)))
                next_frame: dict[int, int] = {}
                next_track: dict[int, int] = {}
                for k, length in enumerate(lengths):
                    cam = cams[k % len(cams)]
                    track = next_track.get(cam, 1)
                    next_track[cam] = track + 1
                    frame = next_frame.get(cam, 1)
                    imgs = render_images(who, ctx.cameras[(modality, cam)], tracklet_nuisance(spec, ctx.rng, length),
                                         spec, img_size, ctx.rng)
                    start = len(names) + 1
                    for arr in imgs:
                        _save(ctx, arr, root / folder / f"{pid:04d}" / tag / f"D{cam}" / f"{frame}.jpg")
                        names.append(f"{pid:04d}M{m_code}D{cam}T{track}F{frame}.jpg")
                        frame += 1
                    next_frame[cam] = frame + int(ctx.rng.integers(1, 6))  # a gap between tracklets
                    rows.append(f"{m_code} {start} {len(names)} {pid:04d} {cam}")
                    if part == "test" and m_code == 1:
                        query.append(len(rows))
                    counts[modality] += length
        n_tracklets += len(rows)
        _write_lines(root / "info" / f"{part}_name.txt", names)
        _write_lines(root / "info" / f"track_{part}_info.txt", rows)
        if part == "test":
            _write_lines(root / "info" / "query_IDX.txt", [" ".join(str(q) for q in query)], final_newline=False)
    return DatasetCounts(name="vcm", directory=root.name, train_ids=n_train, test_ids=n_test,
                         visible_images=counts[0], infrared_images=counts[1], tracklets=n_tracklets)
