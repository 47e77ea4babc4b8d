"""SYSU-MM01 reader: tiny tree, malformed cases, and a placeholder tree built from the real exp/ id lists."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from ckda_avalanche.benchmarks import INFRARED, VISIBLE, DatasetLayoutError, SYSUMM01


def test_reads_tiny_tree(sysu_root):
    reader = SYSUMM01(sysu_root)
    assert reader.name == "sysu"
    assert {s.pid for s in reader.train} == {1, 2, 3}, "train = train + val ids"
    assert len(reader.train) == 3 * 6 * 2 and len(reader.test_pool) == 2 * 6 * 2
    first = reader.train[0]
    assert first.path == str(sysu_root / "cam1" / "0001" / "0001.jpg") and (first.pid, first.camid) == (1, 1)
    assert {s.camid for s in reader.train if s.modality == INFRARED} == {3, 6}
    assert {s.camid for s in reader.train if s.modality == VISIBLE} == {1, 2, 4, 5}
    assert len(reader.query) == 2 * 2 * 2 and {s.modality for s in reader.query} == {INFRARED}
    assert Counter((s.pid, s.camid) for s in reader.gallery) == {(p, c): 1 for p in (4, 5) for c in (1, 2, 4, 5)}


def test_id_lists_tolerate_spaces_newlines_and_multiple_lines(sysu_root):
    (sysu_root / "exp" / "train_id.txt").write_text(" 1 , 2\n\n")
    (sysu_root / "exp" / "val_id.txt").write_text("3,\n")
    assert {s.pid for s in SYSUMM01(sysu_root).train} == {1, 2, 3}


def test_invalid_options(sysu_root):
    with pytest.raises(ValueError, match="search"):
        SYSUMM01(sysu_root, search="outdoor")
    with pytest.raises(ValueError, match="shot"):
        SYSUMM01(sysu_root, shot=5)


def test_missing_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="SYSU-MM01: .*missing folder"):
        SYSUMM01(tmp_path / "SYSU-MM01")


def test_missing_camera_folder(sysu_root):
    shutil.rmtree(sysu_root / "cam6")
    with pytest.raises(DatasetLayoutError, match=r"cam6: missing folder"):
        SYSUMM01(sysu_root)


def test_missing_id_file(sysu_root):
    (sysu_root / "exp" / "val_id.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="val_id.txt: missing index file"):
        SYSUMM01(sysu_root)


def test_malformed_id_list(sysu_root):
    (sysu_root / "exp" / "test_id.txt").write_text("4,5\n6;7\n")
    with pytest.raises(DatasetLayoutError, match=r"test_id.txt line 2: expected comma-separated integer ids") as err:
        SYSUMM01(sysu_root)
    assert err.value.line == 2


def test_test_id_without_images(sysu_root):
    (sysu_root / "exp" / "test_id.txt").write_text("4,5,77\n")
    with pytest.raises(DatasetLayoutError, match=r"test_id.txt: test id 77 has no image"):
        SYSUMM01(sysu_root)
    (sysu_root / "exp" / "test_id.txt").write_text("4,5\n")
    (sysu_root / "exp" / "val_id.txt").write_text("3,88\n")
    with pytest.raises(DatasetLayoutError, match=r"val_id.txt: val id 88 has no image"):
        SYSUMM01(sysu_root)


def test_overlapping_splits(sysu_root):
    (sysu_root / "exp" / "val_id.txt").write_text("3,4\n")
    with pytest.raises(DatasetLayoutError, match=r"test ids \[4\] also appear in val_id.txt"):
        SYSUMM01(sysu_root)


def test_split_with_no_infrared_image(builders, tmp_path):
    no_ir = {(pid, cam): 0 for pid in (1, 2, 3) for cam in (3, 6)}
    root = builders["sysu"](tmp_path / "SYSU-MM01", per_group=no_ir)
    with pytest.raises(DatasetLayoutError, match="train_id.txt: the training split has no infrared image"):
        SYSUMM01(root)


def _count(pid: int, cam: int) -> int:
    """Deterministic per-(id, camera) image count of the placeholder tree; some groups are empty."""
    return 0 if (pid + 2 * cam) % 11 == 0 else 1 + (pid + cam) % 13


def _ids(path: Path) -> list[int]:
    return [int(token) for token in path.read_text().replace("\n", ",").split(",") if token.strip()]


@pytest.fixture(scope="module")
def real_sysu(real_index, builders, placeholder_dir) -> Path:
    root = placeholder_dir / "SYSU-MM01"
    (root / "exp").mkdir(parents=True)
    for name in ("train_id.txt", "val_id.txt", "test_id.txt"):
        shutil.copyfile(real_index / "SYSU-MM01" / "exp" / name, root / "exp" / name)
    ids = [pid for name in ("train", "val", "test") for pid in _ids(root / "exp" / f"{name}_id.txt")]
    builders["touch_listed"](root, (f"cam{cam}/{pid:04d}/{n + 1:04d}.jpg" for pid in ids for cam in range(1, 7)
                                    for n in range(_count(pid, cam))))
    return root


def test_real_id_lists(real_sysu):
    train_ids = _ids(real_sysu / "exp/train_id.txt") + _ids(real_sysu / "exp/val_id.txt")
    test_ids = _ids(real_sysu / "exp/test_id.txt")
    assert len(train_ids) == 395 and len(test_ids) == 96
    reader = SYSUMM01(real_sysu)
    summary = reader.summary()["splits"]
    assert summary["train"]["ids"] == 395 and summary["test_pool"]["ids"] == 96
    assert len(reader.train) == sum(_count(p, c) for p in train_ids for c in range(1, 7))
    assert len(reader.query) == sum(_count(p, c) for p in test_ids for c in (3, 6))
    assert len(reader.gallery) == sum(_count(p, c) > 0 for p in test_ids for c in (1, 2, 4, 5))
    trials = {t.name: t for t in reader.protocol("full").trials(reader.test_pool)}
    assert len(trials["indoor/single/trial5"].gallery) == sum(_count(p, c) > 0 for p in test_ids for c in (1, 2))
    assert len(trials["all/multi/trial2"].gallery) == sum(min(10, _count(p, c)) for p in test_ids
                                                          for c in (1, 2, 4, 5))
