"""Tests of the embedded synthetic VI-ReID generator: layouts, index formats, determinism, image physics, reuse."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ckda_avalanche.benchmarks.synthetic import (
    DATASET_DIRS,
    DOMAINS,
    MARKER,
    DomainSpec,
    SyntheticParametersError,
    generate_synthetic,
    identity_counts,
    sample_identities,
)
from ckda_avalanche.benchmarks.synthetic.nuisance import sample_cameras

SCALE = 0.15
TINY = 0.07


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return generate_synthetic(root, seed=0, scale=SCALE)


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    a = generate_synthetic(tmp_path_factory.mktemp("tiny_a"), seed=3, scale=TINY)
    b = generate_synthetic(tmp_path_factory.mktemp("tiny_b"), seed=3, scale=TINY)
    return a, b


def _path_label_lines(path: Path) -> list[tuple[str, int]]:
    rows = []
    for line in path.read_text().splitlines():
        rel, label = line.split(" ")
        rows.append((rel, int(label)))
    assert rows, path
    return rows


def _check_labels(rows: list[tuple[str, int]], pid_of) -> dict[int, int]:
    """Labels are 0-based, contiguous, assigned in order of first appearance, one per identity folder."""
    first: list[int] = []
    pid_to_label: dict[int, int] = {}
    for rel, label in rows:
        if label not in first:
            first.append(label)
        assert pid_to_label.setdefault(pid_of(rel), label) == label, rel
    assert first == list(range(len(first)))
    assert len(set(pid_to_label.values())) == len(pid_to_label)
    return pid_to_label


def _grey(path: Path, size=(8, 16)) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L").resize(size), dtype=np.float64).ravel() / 255.0


# ----------------------------------------------------------------------------------------------- layouts
def test_regdb_layout_and_trials(synth):
    root = synth.dataset_root("regdb")
    n_train, n_test = identity_counts(SCALE, "regdb")
    splits = []
    for t in range(1, 11):
        ids = {}
        for part in ("train", "test"):
            vis_path, th_path = root / "idx" / f"{part}_visible_{t}.txt", root / "idx" / f"{part}_thermal_{t}.txt"
            assert b"\r\n" in vis_path.read_bytes()  # CRLF like the real RegDB index files
            vis, th = _path_label_lines(vis_path), _path_label_lines(th_path)
            for (rv, lv), (rt, lt) in zip(vis, th, strict=True):
                assert rv.startswith("Visible/") and rt.startswith("Thermal/") and lv == lt
                assert re.fullmatch(r"Visible/(\d+)/(male|female)_(front|back)_v_\d{5}_\1\.bmp", rv), rv
                assert rt == rv.replace("Visible/", "Thermal/").replace("_v_", "_t_")
                assert (root / rv).is_file() and (root / rt).is_file()
            labels = _check_labels(vis, lambda rel: int(rel.split("/")[1]))
            assert all(sum(1 for r, _ in vis if int(r.split("/")[1]) == pid) == 10 for pid in labels)
            ids[part] = set(labels)
        assert len(ids["train"]) == n_train and len(ids["test"]) == n_test and not ids["train"] & ids["test"]
        assert ids["train"] | ids["test"] == set(range(1, n_train + n_test + 1))
        splits.append(frozenset(ids["train"]))
    assert len(set(splits)) > 1  # trials are different random half splits
    with Image.open(root / _path_label_lines(root / "idx" / "train_visible_1.txt")[0][0]) as img:
        assert img.format == "BMP" and img.size == (64, 128)


def test_sysu_layout_and_cameras(synth):
    root = synth.dataset_root("sysu")
    lists = {}
    for name in ("train_id", "val_id", "test_id"):
        text = (root / "exp" / f"{name}.txt").read_text()
        assert len(text.strip().splitlines()) == 1 and re.fullmatch(r"\d+(,\d+)*\n", text)
        lists[name] = [int(x) for x in text.strip().split(",")]
    train, val, test = (set(lists[k]) for k in ("train_id", "val_id", "test_id"))
    assert not (train & val or train & test or val & test) and val
    cams_of: dict[int, set[int]] = defaultdict(set)
    for cam_dir in root.glob("cam*"):
        cam = int(cam_dir.name[3:])
        assert cam in range(1, 7)
        for pid_dir in cam_dir.iterdir():
            assert re.fullmatch(r"\d{4}", pid_dir.name)
            files = sorted(p.name for p in pid_dir.iterdir())
            assert files == [f"{k:04d}.jpg" for k in range(1, len(files) + 1)]
            cams_of[int(pid_dir.name)].add(cam)
    assert set(cams_of) == train | val | test
    for pid, cams in cams_of.items():
        assert cams & {1, 2, 4, 5} and cams & {3, 6}, (pid, cams)  # both modalities for every id
    assert any(len(c) < 6 for c in cams_of.values())  # not every id in every camera
    assert len(train | val) == identity_counts(SCALE)[0] == synth.datasets["sysu"].train_ids


def test_llcm_layout_and_labels(synth):
    root = synth.dataset_root("llcm")
    maps = {}
    for part in ("train", "test"):
        for tag in ("vis", "nir"):
            rows = _path_label_lines(root / "idx" / f"{part}_{tag}.txt")
            for rel, _ in rows:
                m = re.fullmatch(rf"{tag}/(\d{{4}})/\1_c(\d\d)_s\d{{6}}_f\d+_{tag}\.jpg", rel)
                assert m, rel
                assert (root / rel).is_file()
                if tag == "nir":
                    assert int(m.group(2)) != 3  # LLCM has no near-infrared image from camera 3
            maps[part, tag] = _check_labels(rows, lambda rel: int(rel.split("/")[1]))
        assert maps[part, "vis"] == maps[part, "nir"]
    assert not set(maps["train", "vis"]) & set(maps["test", "vis"])
    text = (root / "idx" / "test_id.txt").read_text()
    assert not text.endswith("\n") and re.fullmatch(r"\d{4}(,\d{4})*", text)
    test_order = sorted(maps["test", "vis"], key=maps["test", "vis"].get)
    assert [int(x) for x in text.split(",")] == test_order


def test_vcm_layout_tracklets_and_queries(synth):
    root = synth.dataset_root("vcm")
    info = root / "info"
    short = 0
    for part, folder in (("train", "Train"), ("test", "Test")):
        names = (info / f"{part}_name.txt").read_text().splitlines()
        rows = [line.split(" ") for line in (info / f"track_{part}_info.txt").read_text().splitlines()]
        expected_start = 1
        for row in rows:
            assert len(row) == 5 and re.fullmatch(r"\d{4}", row[3]), row
            m_code, start, end, pid, cam = (int(x) for x in row)
            assert m_code in (1, 2) and start == expected_start and end >= start
            expected_start = end + 1
            short += end - start + 1 < 12
            assert end - start + 1 <= 24
            for name in names[start - 1:end]:
                m = re.fullmatch(r"(\d{4})M([12])D(\d+)T(\d+)F(\d+\.jpg)", name)
                assert m and (int(m.group(1)), int(m.group(2)), int(m.group(3))) == (pid, m_code, cam), name
                tag = "ir" if m_code == 1 else "rgb"
                assert (root / folder / m.group(1) / tag / f"D{cam}" / m.group(5)).is_file()
        assert expected_start == len(names) + 1  # the rows cover the name list exactly
        if part == "test":
            text = (info / "query_IDX.txt").read_text()
            query = [int(x) for x in text.split()]
            assert query == [i + 1 for i, r in enumerate(rows) if r[0] == "1"]
    assert short >= 2  # some tracklets exercise the documented min_seq_len skip


def test_vcm_frames_move_smoothly(synth):
    root = synth.dataset_root("vcm")
    names = (root / "info" / "train_name.txt").read_text().splitlines()
    info_lines = (root / "info" / "track_train_info.txt").read_text().splitlines()
    rows = [[int(x) for x in line.split()] for line in info_lines]

    def frame(i):
        m = re.fullmatch(r"(\d{4})M([12])D(\d+)T\d+F(\d+\.jpg)", names[i])
        tag = "ir" if m.group(2) == "1" else "rgb"
        return _grey(root / "Train" / m.group(1) / tag / f"D{m.group(3)}" / m.group(4))

    within = [np.abs(frame(s - 1) - frame(s)).mean() for _, s, e, _, _ in rows[:12]]
    across = [np.abs(frame(a[1] - 1) - frame(b[1] - 1)).mean() for a, b in zip(rows[:12], rows[12:24])]
    assert np.mean(within) < 0.6 * np.mean(across)


# ----------------------------------------------------------------------------------------------- image physics
def test_infrared_has_equal_channels_visible_does_not(synth):
    pairs = {
        "regdb": ("Thermal/*/*.bmp", "Visible/*/*.bmp"),
        "sysu": ("cam3/*/*.jpg", "cam1/*/*.jpg"),
        "llcm": ("nir/*/*.jpg", "vis/*/*.jpg"),
        "vcm": ("Train/*/ir/*/*.jpg", "Train/*/rgb/*/*.jpg"),
    }
    for name, (ir_glob, vis_glob) in pairs.items():
        root = synth.dataset_root(name)
        ir_files, vis_files = sorted(root.glob(ir_glob))[:5], sorted(root.glob(vis_glob))[:5]
        assert ir_files and vis_files, name
        for path in ir_files:
            arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
            assert np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]), path
        for path in vis_files:
            arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
            assert np.abs(arr[..., 0] - arr[..., 2]).mean() > 2.0, path


@pytest.mark.parametrize("glob_pattern", ["Visible/*/*.bmp", "Thermal/*/*.bmp"])
def test_identity_is_encoded_within_a_modality(synth, glob_pattern):
    """Same-identity images are closer (mean absolute grey difference) than images of different identities."""
    root = synth.dataset_root("regdb")
    feats, pids = [], []
    for path in sorted(root.glob(glob_pattern)):
        feats.append(_grey(path))
        pids.append(int(path.parent.name))
    x, y = np.stack(feats), np.asarray(pids)
    dist = np.abs(x[:, None, :] - x[None, :, :]).mean(-1)
    same = y[:, None] == y[None, :]
    off_diag = ~np.eye(len(y), dtype=bool)
    assert dist[same & off_diag].mean() < 0.9 * dist[~same].mean()


# ----------------------------------------------------------------------------------------------- determinism / reuse
def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != MARKER}


def test_same_seed_same_bytes_different_seed_differs(tiny_pair, tmp_path):
    a, b = tiny_pair
    bytes_a, bytes_b = _tree_bytes(a.root), _tree_bytes(b.root)
    assert bytes_a.keys() == bytes_b.keys() and len(bytes_a) > 100
    assert all(bytes_a[k] == bytes_b[k] for k in bytes_a)
    assert a.datasets == b.datasets
    # A folder holding a dataset directory but no marker is refused; overwrite replaces only our directories.
    (tmp_path / "RegDB").mkdir()
    (tmp_path / "RegDB" / "stale.bmp").write_bytes(b"x")
    (tmp_path / "keep.txt").write_text("not ours")
    with pytest.raises(SyntheticParametersError, match="without"):
        generate_synthetic(tmp_path, seed=4, scale=TINY)
    c = generate_synthetic(tmp_path, seed=4, scale=TINY, overwrite=True)
    assert (tmp_path / "keep.txt").read_text() == "not ours" and not (tmp_path / "RegDB" / "stale.bmp").exists()
    bytes_c = _tree_bytes(c.root)
    common = bytes_a.keys() & bytes_c.keys()
    assert sum(bytes_a[k] != bytes_c[k] for k in common) > 0.9 * len(common)


def test_reuse_mismatch_and_overwrite(tiny_pair):
    a, _ = tiny_pair
    probe = next(a.dataset_root("regdb").rglob("*.bmp"))
    mtime = probe.stat().st_mtime_ns
    again = generate_synthetic(a.root, seed=3, scale=TINY)
    assert again.datasets == a.datasets and probe.stat().st_mtime_ns == mtime
    stored = json.loads((a.root / MARKER).read_text())
    assert stored["seed"] == 3 and stored["scale"] == TINY and set(stored["datasets"]) == set(DATASET_DIRS)
    with pytest.raises(SyntheticParametersError, match="seed"):
        generate_synthetic(a.root, seed=5, scale=TINY)
    with pytest.raises(SyntheticParametersError):
        generate_synthetic(a.root, seed=3, scale=TINY, img_size=(96, 48))


def test_overwrite_in_the_same_process_regenerates_identically(tiny_pair):
    a, b = tiny_pair
    (b.dataset_root("llcm") / "stray.txt").write_text("removed by overwrite")
    again = generate_synthetic(b.root, seed=3, scale=TINY, overwrite=True)
    assert not (b.dataset_root("llcm") / "stray.txt").exists()
    assert again.datasets == a.datasets and _tree_bytes(b.root) == _tree_bytes(a.root)


def test_one_dataset_alone_equals_its_part_of_a_full_generation(synth, tmp_path):
    from ckda_avalanche.benchmarks.synthetic import write_dataset

    counts = write_dataset(tmp_path / "LLCM", "llcm", seed=0, scale=SCALE)
    assert counts == synth.datasets["llcm"]
    assert _tree_bytes(tmp_path / "LLCM") == _tree_bytes(synth.dataset_root("llcm"))
    with pytest.raises(KeyError, match="unknown synthetic dataset 'market'"):
        write_dataset(tmp_path / "x", "market")


def test_scale_changes_identity_counts(synth, tiny_pair):
    assert identity_counts(1.0) == (64, 32) == identity_counts(1.0, "sysu")
    assert identity_counts(1.0, "regdb") == (64, 64)  # split in half, like the real RegDB
    assert synth.datasets["regdb"].test_ids == synth.datasets["regdb"].train_ids == 10
    assert identity_counts(SCALE) == (10, 5) and identity_counts(TINY) == (4, 2)
    for name in DATASET_DIRS:
        assert synth.datasets[name].train_ids > tiny_pair[0].datasets[name].train_ids
        assert synth.datasets[name].test_ids > tiny_pair[0].datasets[name].test_ids
    llcm_ids = {p.name for p in (synth.dataset_root("llcm") / "vis").iterdir()}
    assert len(llcm_ids) == sum(identity_counts(SCALE))


def test_bad_arguments_and_specs(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        generate_synthetic(tmp_path, scale=0)
    with pytest.raises(ValueError, match="seed"):
        generate_synthetic(tmp_path, seed=-1)
    with pytest.raises(ValueError, match="img_size"):
        generate_synthetic(tmp_path, img_size=(8, 4))
    bad = DomainSpec(name="bad", visible_cameras=(1,), infrared_cameras=(2,), background_families=("moon",))
    with pytest.raises(ValueError, match="moon"):
        sample_cameras(bad, np.random.default_rng(0))
    with pytest.raises(ValueError, match="resolution_factor"):
        DomainSpec(name="bad", visible_cameras=(1,), infrared_cameras=(2,), resolution_factor=2.0)
    with pytest.raises(ValueError, match="carry_weights"):
        DomainSpec(name="bad", visible_cameras=(1,), infrared_cameras=(2,), carry_weights=(1.0, 0.0))
    with pytest.raises(ValueError, match="outdoor_cameras"):
        DomainSpec(name="bad", visible_cameras=(1,), infrared_cameras=(2,), outdoor_cameras=(2,))
    with pytest.raises(ValueError, match="nir_channel_weights"):
        DomainSpec(name="bad", visible_cameras=(1,), infrared_cameras=(2,), nir_channel_weights=(0.0, 0.0, 0.0))
    assert set(DOMAINS) == {"regdb", "sysu", "llcm", "vcm"}
    assert len({(d.resolution_factor, d.thermal_weight, d.visible_brightness) for d in DOMAINS.values()}) == 4


def test_each_dye_has_its_domains_own_near_infrared_grey():
    """Benchmark domains give every garment its dye's domain-specific reflectance (`DomainSpec.palette_nir`); the
    same hue reads as different greys in different domains, and each domain's greys are far apart."""
    rng = np.random.default_rng(0)
    for name, spec in DOMAINS.items():
        palette = np.asarray(spec.palette)
        greys = np.sort(np.asarray(spec.palette_nir))
        assert len(greys) == len(palette) and np.diff(greys).min() >= 0.1 - 1e-9, name
        people = sample_identities(spec, 200, rng)
        for colour, nir in ([(p.upper, p.upper_nir) for p in people] + [(p.lower, p.lower_nir) for p in people]
                            + [(p.upper_secondary, p.upper_secondary_nir) for p in people]
                            + [(p.bag_colour, p.bag_nir) for p in people]):
            dye = int(np.argmin(((palette - np.asarray(colour)) ** 2).sum(1)))  # tint 0.02 << palette spacing
            assert abs(nir - spec.palette_nir[dye]) < 0.1, (name, colour, nir)
    # Every two domains give at least three of the eight dyes different greys (a domain-specific link to learn).
    specs = list(DOMAINS.values())
    for i, a in enumerate(specs):
        for b in specs[i + 1:]:
            assert sum(x != y for x, y in zip(a.palette_nir, b.palette_nir)) >= 3, (a.name, b.name)
    with pytest.raises(ValueError, match="palette_nir"):
        DomainSpec(name="bad", visible_cameras=(1,), infrared_cameras=(2,), palette=((0, 0, 0), (1, 1, 1)),
                   palette_nir=(0.5,))


def test_near_infrared_greys_follow_luminance_but_one_dye():
    """Generator v6: each domain's greys rank its dyes by their visible luminance (ITU-R BT.601 weights, computed
    here), except for one dye placed exactly two ranks higher."""
    moved = {}
    for name, spec in DOMAINS.items():
        lum = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in spec.palette]
        by_luminance = sorted(range(len(lum)), key=lambda k: lum[k])
        by_grey = sorted(range(len(lum)), key=lambda k: spec.palette_nir[k])
        candidates = []
        for dye in range(len(lum)):
            rest = [k for k in by_luminance if k != dye]
            rank = by_luminance.index(dye)
            if rank + 2 < len(lum) and rest[:rank + 2] + [dye] + rest[rank + 2:] == by_grey:
                candidates.append(dye)
        assert len(candidates) == 1, (name, by_luminance, by_grey)
        moved[name] = candidates[0]
    assert moved == {"regdb": 2, "sysu": 2, "llcm": 3, "vcm": 4}  # red, red, blue, green (palette order)


def test_without_dye_greys_reflectance_follows_the_channel_mix():
    """A domain without `palette_nir` (the pretraining pool's) keeps the linear visible-to-infrared link, falling
    instead of rising with the channel mix when `nir_inverted` (the pool's domains)."""
    import dataclasses

    from ckda_avalanche.benchmarks.synthetic.pretrain_pool import POOL_DOMAINS

    rng = np.random.default_rng(0)
    for pool in POOL_DOMAINS:
        assert not pool.palette_nir and pool.nir_inverted
        for spec, sign in ((pool, -1.0), (dataclasses.replace(pool, nir_inverted=False), 1.0)):
            mix = np.asarray(spec.nir_channel_weights) / sum(spec.nir_channel_weights)
            people = sample_identities(spec, 300, rng)
            colours = np.array([p.lower for p in people] + [p.bag_colour for p in people])
            nir = np.array([p.lower_nir for p in people] + [p.bag_nir for p in people])
            assert sign * np.corrcoef(colours @ mix, nir)[0, 1] > 0.9, spec.name


def test_project_readers_accept_the_synthetic_layouts(synth):
    from ckda_avalanche.benchmarks.datasets import HITSZVCM, LLCM, RegDB, SYSUMM01

    for reader_class, name in ((RegDB, "regdb"), (SYSUMM01, "sysu"), (LLCM, "llcm"), (HITSZVCM, "vcm")):
        n_train, n_test = identity_counts(SCALE, name)
        reader = reader_class(synth.dataset_root(name))
        assert len({s.pid for s in reader.train}) == n_train, name
        assert len({s.pid for s in reader.test_pool}) == n_test, name
        assert {s.modality for s in reader.query} and {s.modality for s in reader.gallery}, name


def test_black_hot_camera_inverts_the_infrared_image():
    """`DomainSpec.black_hot_fraction` (no built-in domain uses it any more) flips infrared polarity: the same scene
    rendered by a black-hot camera is 255 minus the white-hot one, up to blur and sensor noise."""
    import dataclasses

    from ckda_avalanche.benchmarks.synthetic.nuisance import sample_nuisance
    from ckda_avalanche.benchmarks.synthetic.render import render_images

    spec = dataclasses.replace(DOMAINS["regdb"], black_hot_fraction=1.0, infrared_noise=(0.0, 0.0))
    white = dataclasses.replace(spec, black_hot_fraction=0.0)
    cam_black = sample_cameras(spec, np.random.default_rng(1))[(1, 2)]
    cam_white = sample_cameras(white, np.random.default_rng(1))[(1, 2)]
    assert cam_black.black_hot and not cam_white.black_hot
    who = sample_identities(spec, 1, np.random.default_rng(2))[0]
    nz = sample_nuisance(spec, np.random.default_rng(3), 4)
    black = np.stack(render_images(who, cam_black, nz, spec, (64, 32), np.random.default_rng(4))).astype(float)
    plain = np.stack(render_images(who, cam_white, nz, white, (64, 32), np.random.default_rng(4))).astype(float)
    assert np.abs(black + plain - 255.0).mean() < 3.0
