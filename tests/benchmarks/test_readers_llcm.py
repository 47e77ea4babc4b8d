"""LLCM reader: tiny tree, malformed cases, max_train_label, and the real idx/ files with placeholder images."""
from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from ckda_avalanche.benchmarks import INFRARED, LLCM, VISIBLE, DatasetLayoutError


def _edit_line(path: Path, number: int, new: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = new
    path.write_text("\n".join(lines) + "\n")


def test_reads_tiny_tree(llcm_root, builders):
    reader = LLCM(llcm_root)
    assert reader.name == "llcm"
    assert len(reader.train) == 3 * 2 * 2 * 2 and len(reader.test_pool) == 2 * 2 * 2 * 2
    sample = reader.train[0]
    assert sample.path == str(llcm_root / builders["llcm_name"](1, 1, 0, "vis"))
    assert (sample.pid, sample.camid, sample.modality) == (1, 1, VISIBLE)
    assert {s.camid for s in reader.train if s.modality == INFRARED} == {3, 4}
    assert {s.modality for s in reader.query} == {INFRARED} and len(reader.query) == 8
    assert Counter((s.pid, s.camid) for s in reader.gallery) == {(p, c): 1 for p in (4, 5) for c in (1, 2)}
    assert reader.notes == []


def test_max_train_label_drops_and_reports(llcm_root):
    reader = LLCM(llcm_root, max_train_label=2)
    assert {s.pid for s in reader.train} == {1, 2}
    assert reader.notes == ["train_vis.txt: dropped 4 of 12 lines with label >= max_train_label=2",
                            "train_nir.txt: dropped 4 of 12 lines with label >= max_train_label=2"]
    assert reader.summary()["notes"] == reader.notes


def test_gallery_seed_follows_trial(builders, tmp_path):
    root = builders["llcm"](tmp_path / "LLCM", per_cam=6)
    galleries = {tuple(s.path for s in LLCM(root, trial=t).gallery) for t in range(5)}
    assert len(galleries) > 1
    assert [s.path for s in LLCM(root, trial=3).gallery] == [s.path for s in LLCM(root, trial=3).gallery]


def test_missing_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="LLCM: .*missing folder"):
        LLCM(tmp_path / "LLCM")


def test_missing_sub_folder(llcm_root):
    shutil.rmtree(llcm_root / "nir")
    with pytest.raises(DatasetLayoutError, match=r"nir: missing folder"):
        LLCM(llcm_root)


def test_missing_index_file(llcm_root):
    (llcm_root / "idx" / "test_id.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="test_id.txt: missing index file"):
        LLCM(llcm_root)


def test_malformed_index_line(llcm_root):
    _edit_line(llcm_root / "idx" / "test_nir.txt", 5, "nir/0004/0004_c04_s100000_f0_nir.jpg")
    with pytest.raises(DatasetLayoutError, match=r"test_nir.txt line 5: expected '<relative path> <integer label>'"):
        LLCM(llcm_root)


def test_non_integer_label(llcm_root):
    _edit_line(llcm_root / "idx" / "train_vis.txt", 2, "vis/0001/0001_c01_s100001_f15_vis.jpg 0.5")
    with pytest.raises(DatasetLayoutError, match=r"train_vis.txt line 2: label must be an integer, got '0.5'"):
        LLCM(llcm_root)


def test_malformed_camera_field(llcm_root):
    bad = "vis/0001/0001_cam1_s100001_f15_vis.jpg"
    (llcm_root / bad).write_bytes(b"")
    _edit_line(llcm_root / "idx" / "train_vis.txt", 2, f"{bad} 0")
    with pytest.raises(DatasetLayoutError, match=r"train_vis.txt line 2: file name must carry the camera as '_c<NN>_'"):
        LLCM(llcm_root)


def test_entry_pointing_at_missing_image(llcm_root, builders):
    (llcm_root / builders["llcm_name"](5, 3, 1, "nir")).unlink()
    with pytest.raises(DatasetLayoutError, match=r"test_nir.txt line 6: image 'nir/0005/0005_c03"):
        LLCM(llcm_root)


def test_test_id_without_images(llcm_root):
    (llcm_root / "idx" / "test_id.txt").write_text("0004,0005,0099")
    with pytest.raises(DatasetLayoutError, match=r"test_id.txt: test ids \[99\] \(1 in all\) have no image"):
        LLCM(llcm_root)


def test_split_with_no_image_of_one_modality(llcm_root):
    index = llcm_root / "idx" / "train_nir.txt"
    index.write_text("".join(line + "\n" for line in index.read_text().splitlines() if not line.endswith(" 0")))
    # infrared training lines now only carry labels 1 and 2, which max_train_label=1 drops
    with pytest.raises(DatasetLayoutError, match=r"idx: the train split has no infrared image"):
        LLCM(llcm_root, max_train_label=1)


@pytest.fixture(scope="module")
def real_llcm(real_index, builders, placeholder_dir) -> Path:
    root = placeholder_dir / "LLCM"
    shutil.copytree(real_index / "LLCM" / "idx", root / "idx")
    for path in (root / "idx").iterdir():
        path.chmod(0o644)
    listed = (line.split()[0] for name in ("train_vis", "train_nir", "test_vis", "test_nir")
              for line in (root / "idx" / f"{name}.txt").read_text().splitlines() if line.strip())
    builders["touch_listed"](root, listed)
    return root


def _lines(root: Path, name: str) -> list[tuple[str, int]]:
    return [(line.split()[0], int(line.split()[1])) for line in (root / "idx" / f"{name}.txt").read_text().split("\n")
            if line.strip()]


def test_real_index(real_llcm):
    reader = LLCM(real_llcm)
    lines = {name: _lines(real_llcm, name) for name in ("train_vis", "train_nir", "test_vis", "test_nir")}
    train_ids = {int(path.split("/")[1]) for name in ("train_vis", "train_nir") for path, _ in lines[name]}
    test_ids = {int(token) for token in (real_llcm / "idx/test_id.txt").read_text().split(",") if token.strip()}
    summary = reader.summary()["splits"]
    assert summary["train"]["ids"] == len(train_ids) == 713
    assert summary["train"]["images"] == {"visible": len(lines["train_vis"]), "infrared": len(lines["train_nir"])}
    assert summary["test_pool"]["ids"] == len(test_ids) == 351
    assert summary["test_pool"]["images"] == {"visible": len(lines["test_vis"]), "infrared": len(lines["test_nir"])}
    assert len(reader.query) == len(lines["test_nir"]) == 7166
    camera_groups = {(path.split("/")[1], re.search(r"_c(\d+)_", path).group(1)) for path, _ in lines["test_vis"]}
    assert len(reader.gallery) == len(camera_groups)
    assert summary["train"]["cameras"] == sorted({int(re.search(r"_c(\d+)_", p).group(1))
                                                  for name in ("train_vis", "train_nir") for p, _ in lines[name]})
    capped = LLCM(real_llcm, max_train_label=500)
    kept = sum(label < 500 for name in ("train_vis", "train_nir") for _, label in lines[name])
    assert len(capped.train) == kept and capped.summary()["splits"]["train"]["ids"] == 500
    dropped = len(lines["train_vis"]) + len(lines["train_nir"]) - kept
    assert sum(int(re.search(r"dropped (\d+)", note).group(1)) for note in capped.notes) == dropped
