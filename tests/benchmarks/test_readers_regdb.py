"""RegDB reader: tiny official-layout tree, every malformed case, and the real trial-1 index files."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ckda_avalanche.benchmarks import INFRARED, VISIBLE, DatasetLayoutError, RegDB


def _edit_line(path: Path, number: int, new: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = new
    path.write_text("\n".join(lines) + "\n")


def test_reads_tiny_tree(regdb_root):
    reader = RegDB(regdb_root)
    assert reader.name == "regdb" and reader.root == str(regdb_root.resolve())
    assert len(reader.train) == 12 and len(reader.test_pool) == 12
    assert {s.pid for s in reader.train} == {1, 2, 3} and {s.pid for s in reader.test_pool} == {4, 5, 6}
    first = reader.train[0]
    assert first.path == str(regdb_root / "Visible/1/male_back_v_00000_1.bmp")
    assert (first.camid, first.modality, first.tracklet) == (1, VISIBLE, -1)
    assert {(s.camid, s.modality) for s in reader.train if "Thermal" in s.path} == {(2, INFRARED)}
    assert [s.modality for s in reader.query] == [VISIBLE] * 6
    assert [s.modality for s in reader.gallery] == [INFRARED] * 6
    summary = reader.summary()["splits"]
    assert summary["train"] == {"ids": 3, "images": {"visible": 6, "infrared": 6}, "cameras": [1, 2]}
    assert reader.notes == []


def test_other_trial_reads_its_own_files(builders, tmp_path):
    root = builders["regdb"](tmp_path / "RegDB", trial=7, train_ids=(10, 11), test_ids=(12,))
    reader = RegDB(root, trial=7)
    assert {s.pid for s in reader.test_pool} == {12}
    assert [t.name for t in reader.protocol().trials(reader.test_pool)] == ["vis2ir/trial7"]
    with pytest.raises(DatasetLayoutError, match="train_visible_1.txt"):
        RegDB(root)
    with pytest.raises(ValueError, match="1..10"):
        RegDB(root, trial=11)


def test_missing_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="missing folder") as error:
        RegDB(tmp_path / "nowhere")
    assert error.value.path == str(tmp_path / "nowhere")


def test_missing_sub_folder(regdb_root):
    shutil.rmtree(regdb_root / "Thermal")
    with pytest.raises(DatasetLayoutError, match=r"Thermal.*missing folder"):
        RegDB(regdb_root)


def test_missing_index_file(regdb_root):
    (regdb_root / "idx" / "test_thermal_1.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="test_thermal_1.txt: missing index file"):
        RegDB(regdb_root)


def test_malformed_index_line(regdb_root):
    index = regdb_root / "idx" / "train_visible_1.txt"
    _edit_line(index, 3, "Visible/2/male_back_v_00000_2.bmp 1 extra")
    with pytest.raises(DatasetLayoutError, match="train_visible_1.txt line 3: expected") as error:
        RegDB(regdb_root)
    assert error.value.line == 3 and error.value.dataset == "RegDB"


def test_non_integer_label(regdb_root):
    _edit_line(regdb_root / "idx" / "train_thermal_1.txt", 2, "Thermal/1/male_back_t_00001_1.bmp zero")
    with pytest.raises(DatasetLayoutError, match="train_thermal_1.txt line 2: label must be an integer"):
        RegDB(regdb_root)


def test_entry_pointing_at_missing_image(regdb_root):
    (regdb_root / "Visible/5/male_back_v_00001_5.bmp").unlink()
    with pytest.raises(DatasetLayoutError, match=r"test_visible_1.txt line 4: image 'Visible/5/male_back_v_00001_5"):
        RegDB(regdb_root)


def test_inconsistent_labels(regdb_root):
    _edit_line(regdb_root / "idx" / "train_visible_1.txt", 3, "Visible/2/male_back_v_00000_2.bmp 0")
    with pytest.raises(DatasetLayoutError, match=r"train_visible_1.txt line 3: label 0 .*folder 2.*folder 1"):
        RegDB(regdb_root)
    _edit_line(regdb_root / "idx" / "train_visible_1.txt", 3, "Visible/2/male_back_v_00000_2.bmp 1")
    _edit_line(regdb_root / "idx" / "train_visible_1.txt", 4, "Visible/2/male_back_v_00001_2.bmp 2")
    with pytest.raises(DatasetLayoutError, match=r"line 4: identity folder 2 has label 2"):
        RegDB(regdb_root)


def test_path_under_wrong_modality_folder(regdb_root):
    _edit_line(regdb_root / "idx" / "train_visible_1.txt", 1, "Thermal/1/male_back_t_00000_1.bmp 0")
    with pytest.raises(DatasetLayoutError, match=r"train_visible_1.txt line 1: expected a path under Visible/"):
        RegDB(regdb_root)


def test_test_id_without_thermal_images(regdb_root):
    index = regdb_root / "idx" / "test_thermal_1.txt"
    index.write_text("\n".join(line for line in index.read_text().splitlines() if "/6/" not in line) + "\n")
    with pytest.raises(DatasetLayoutError, match=r"test_thermal_1.txt: test identities \[6\]"):
        RegDB(regdb_root)


def test_split_with_no_image_of_one_modality(regdb_root):
    (regdb_root / "idx" / "train_thermal_1.txt").write_text("\n\n")
    with pytest.raises(DatasetLayoutError, match="train_thermal_1.txt: index file is empty"):
        RegDB(regdb_root)


@pytest.fixture(scope="module")
def real_regdb(real_index, builders, placeholder_dir) -> Path:
    root = placeholder_dir / "RegDB"
    shutil.copytree(real_index / "RegDB" / "idx", root / "idx")
    for path in (root / "idx").iterdir():
        path.chmod(0o644)
    listed = {line.split()[0] for name in ("train_visible", "train_thermal", "test_visible", "test_thermal")
              for line in (root / "idx" / f"{name}_1.txt").read_text().splitlines() if line.strip()}
    builders["touch_listed"](root, listed)
    return root


def test_real_trial_1_index(real_regdb):
    reader = RegDB(real_regdb, trial=1)
    folders = {int(line.split("/")[1]) for line in (real_regdb / "idx/train_visible_1.txt").read_text().split("\n")
               if line.strip()}
    assert len(folders) == 206
    summary = reader.summary()["splits"]
    assert summary["train"]["ids"] == 206 and {s.pid for s in reader.train} == folders
    assert summary["train"]["images"] == {"visible": 2060, "infrared": 2060}
    assert summary["test_pool"]["ids"] == 206 and not folders & {s.pid for s in reader.test_pool}
    assert len(reader.query) == 2060 and len(reader.gallery) == 2060
    assert {s.modality for s in reader.query} == {VISIBLE} and {s.modality for s in reader.gallery} == {INFRARED}
    sample = next(s for s in reader.test_pool if s.path.endswith("female_back_t_01102_88.bmp"))
    assert (sample.pid, sample.camid, sample.modality) == (88, 2, INFRARED)
