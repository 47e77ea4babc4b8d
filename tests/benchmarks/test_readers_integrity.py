"""The readers' cheap cross-checks, one broken tree per case: train/test identity leaks, duplicated index lines and
tracklet rows, SYSU-MM01 identity folders (unpadded, ambiguous), empty cameras, broken symlinks; and symlinked
identity folders and files, which must read like plain ones."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ckda_avalanche.benchmarks import HITSZVCM, LLCM, SYSUMM01, DatasetLayoutError, RegDB
from ckda_avalanche.benchmarks.datasets import DatasetProblemsError


def _append(path: Path, lines: list[str]) -> None:
    path.write_text(path.read_text().rstrip("\n") + "\n" + "\n".join(lines) + "\n")


def _line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


# ------------------------------------------------------------------------------------------------------- leaks
def test_regdb_identity_in_train_and_test_is_a_leak(regdb_root):
    test_file = regdb_root / "idx" / "test_visible_1.txt"
    before = _line_count(test_file)
    _append(test_file, ["Visible/2/male_back_v_00000_2.bmp 9"])
    _append(regdb_root / "idx" / "test_thermal_1.txt", ["Thermal/2/male_back_t_00000_2.bmp 9"])
    with pytest.raises(DatasetLayoutError, match=r"test_visible_1.txt line (\d+): train/test identity leak: "
                       r"identities \[2\] .*train_visible_1.txt line 3") as error:
        RegDB(regdb_root)
    assert error.value.path == str(test_file) and error.value.line == before + 1
    assert "and 1 more error" in str(error.value)  # the thermal file leaks too
    assert [p.path for p in error.value.problems] == [str(test_file),
                                                      str(regdb_root / "idx" / "test_thermal_1.txt")]


def test_llcm_identity_in_train_and_test_is_a_leak(llcm_root, builders):
    rel = builders["llcm_name"](3, 1, 0, "vis")
    _append(llcm_root / "idx" / "test_vis.txt", [f"{rel} 7"])
    with pytest.raises(DatasetLayoutError, match=r"LLCM: .*test_vis.txt line \d+: train/test identity leak: "
                       r"identities \[3\]"):
        LLCM(llcm_root)


def test_llcm_leak_ignores_train_lines_dropped_by_max_train_label(llcm_root, builders):
    # identity 3 has train label 2; with max_train_label=2 its train lines are dropped, so it is no leak
    rel = builders["llcm_name"](3, 1, 0, "vis")
    _append(llcm_root / "idx" / "test_vis.txt", [f"{rel} 7"])
    with pytest.raises(DatasetLayoutError, match="not listed as test ids"):  # the next check, not a leak
        LLCM(llcm_root, max_train_label=2)


def test_vcm_identity_in_train_and_test_is_a_leak(tmp_path, builders):
    root = builders["vcm"](tmp_path / "HITSZ-VCM", train_ids=(1, 2), test_ids=(2, 4))
    with pytest.raises(DatasetLayoutError, match=r"HITSZ-VCM: .*track_test_info.txt line 1: train/test identity "
                       r"leak: identities \[2\]"):
        HITSZVCM(root)


# -------------------------------------------------------------------------------------------------- duplicates
def test_regdb_duplicated_index_line(regdb_root):
    gallery = regdb_root / "idx" / "test_thermal_1.txt"
    first = gallery.read_text().splitlines()[0]
    _append(gallery, [first])
    with pytest.raises(DatasetLayoutError, match=r"test_thermal_1.txt line 7: duplicated line: image "
                       r"'Thermal/4/male_back_t_00000_4.bmp' is already listed on line 1") as error:
        RegDB(regdb_root)
    assert error.value.path == str(gallery)


def test_llcm_duplicated_index_line(llcm_root):
    train = llcm_root / "idx" / "train_nir.txt"
    second = train.read_text().splitlines()[1]
    _append(train, [second, second])
    with pytest.raises(DatasetProblemsError) as error:
        LLCM(llcm_root)
    lines = [(p.path, p.line) for p in error.value.problems]
    count = _line_count(train)
    assert lines == [(str(train), count - 1), (str(train), count)]
    assert "already listed on line 2" in str(error.value)


def test_vcm_duplicated_and_overlapping_tracklet_rows(vcm_root):
    info = vcm_root / "info" / "track_train_info.txt"
    rows = info.read_text().splitlines()
    info.write_text("\n".join(rows[:2] + [rows[1]] + rows[2:]) + "\n")  # row 2 repeated as row 3
    with pytest.raises(DatasetLayoutError, match=r"track_train_info.txt line 3: duplicated tracklet row: frames "
                       r"13\.\.24 of this row are also in row 2"):
        HITSZVCM(vcm_root)
    m, start, end, pid, cam = rows[1].split()
    overlapping = f"{m} {int(start) - 2} {end} {pid} {cam}"  # shares frames 11..12 with row 1
    info.write_text("\n".join(rows[:1] + [overlapping] + rows[2:]) + "\n")
    with pytest.raises(DatasetProblemsError, match=r"track_train_info.txt line 2: overlapping tracklet rows: frames "
                       r"11\.\.24 of this row are also in row 1") as error:
        HITSZVCM(vcm_root)
    # frames 11..12 are visible frames of camera 1 inside an infrared camera-2 row: reported too
    assert [(p.severity, p.path.rsplit("/", 1)[1], p.line) for p in error.value.problems] == [
        ("error", "track_train_info.txt", 2), ("error", "train_name.txt", 11), ("warning", "train_name.txt", 11)]


def test_vcm_frame_camera_disagreeing_with_its_row_is_a_warning(vcm_root):
    info = vcm_root / "info" / "track_train_info.txt"
    rows = info.read_text().splitlines()
    m, start, end, pid, _cam = rows[0].split()
    info.write_text("\n".join([f"{m} {start} {end} {pid} 5"] + rows[1:]) + "\n")
    reader = HITSZVCM(vcm_root)
    assert {s.camid for s in reader.train if s.tracklet == 0} == {5}
    (problem,) = reader.problems
    assert problem.severity == "warning" and problem.path == str(vcm_root / "info" / "train_name.txt")
    assert problem.line == 1 and "12 frame(s) in all" in problem.message
    assert any(note.startswith("warning: HITSZ-VCM:") for note in reader.notes)


# ------------------------------------------------------------------------------------------ SYSU-MM01 folders
def test_sysu_unpadded_identity_folder(sysu_root):
    (sysu_root / "cam2" / "0004").rename(sysu_root / "cam2" / "4")
    with pytest.raises(DatasetLayoutError, match=r"SYSU-MM01: .*cam2/4: identity folder '4' is not zero-padded; "
                       "expected 0004") as error:
        SYSUMM01(sysu_root)
    assert error.value.path == str(sysu_root / "cam2" / "4")


def test_sysu_ambiguous_identity_folders(sysu_root):
    shutil.copytree(sysu_root / "cam5" / "0001", sysu_root / "cam5" / "001")
    with pytest.raises(DatasetProblemsError) as error:
        SYSUMM01(sysu_root)
    texts = [p.text for p in error.value.problems]
    assert any(text.endswith("cam5/001: identity folder '001' is not zero-padded; expected 0001 (folders are "
                             "named <pid:04d>)") for text in texts)
    assert any("cam5/0001: ambiguous identity folders: 0001 and 001 in cam5 both hold identity 1" in text
               for text in texts)


def test_sysu_non_numeric_identity_folder(sysu_root):
    (sysu_root / "cam1" / "backup").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"cam1/backup: expected identity folders named <pid:04d>"):
        SYSUMM01(sysu_root)


def test_sysu_empty_camera_folder(sysu_root):
    for folder in (sysu_root / "cam3").iterdir():
        shutil.rmtree(folder)
    with pytest.raises(DatasetProblemsError, match=r"cam3: camera folder holds no image") as error:
        SYSUMM01(sysu_root)
    warning = [p for p in error.value.problems if p.severity == "warning"]
    assert [p.path for p in warning] == [str(sysu_root / "cam3")] and "query set has no cam3" in warning[0].message


def test_sysu_camera_without_test_images_and_empty_identity_folders_are_warnings(builders, tmp_path):
    no_test_in_cam6 = {(pid, 6): 0 for pid in (4, 5)}
    root = builders["sysu"](tmp_path / "SYSU-MM01", per_group=no_test_in_cam6)
    (root / "cam2" / "0009").mkdir()
    reader = SYSUMM01(root)
    messages = {(p.severity, p.path): p.message for p in reader.problems}
    assert messages[("warning", str(root / "cam6"))].endswith("the query set has no cam6 image")
    assert messages[("warning", str(root / "cam2"))] == "1 identity folder(s) hold no image: ['0009']"
    assert sum(note.startswith("warning: ") for note in reader.notes) == 2


# ----------------------------------------------------------------------------------------------------- symlinks
def _move_and_link(folder: Path, shared: Path) -> None:
    shared.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(folder), shared)
    os.symlink(shared, folder)


def test_symlinked_identity_folders_and_files_read_like_plain_ones(tmp_path, builders):
    shared = tmp_path / "shared"
    regdb = builders["regdb"](tmp_path / "RegDB")
    expected = [(s.path, s.pid, s.camid) for s in RegDB(regdb).train]
    _move_and_link(regdb / "Visible" / "2", shared / "regdb-2")
    image = regdb / "Thermal" / "3" / "male_back_t_00001_3.bmp"
    _move_and_link(image, shared / "regdb-file.bmp")
    assert [(s.path, s.pid, s.camid) for s in RegDB(regdb).train] == expected

    llcm = builders["llcm"](tmp_path / "LLCM")
    count = len(LLCM(llcm).test_pool)
    _move_and_link(llcm / "nir" / "0004", shared / "llcm-4")
    assert len(LLCM(llcm).test_pool) == count

    vcm = builders["vcm"](tmp_path / "HITSZ-VCM")
    count = len(HITSZVCM(vcm).train)
    _move_and_link(vcm / "Train" / "0001", shared / "vcm-1")
    assert len(HITSZVCM(vcm).train) == count

    sysu = builders["sysu"](tmp_path / "SYSU-MM01")
    count = len(SYSUMM01(sysu).train)
    _move_and_link(sysu / "cam3" / "0002", shared / "sysu-2")
    reader = SYSUMM01(sysu)
    assert len(reader.train) == count and not reader.problems


def test_folder_linked_twice_is_listed_once_and_a_link_cycle_ends(regdb_root):
    os.symlink(regdb_root / "Visible", regdb_root / "Visible" / "4" / "again")  # a cycle through an ancestor
    assert len(RegDB(regdb_root).train) == 12


def test_broken_symlinks_named_by_the_index_are_errors(regdb_root):
    loop = regdb_root / "Visible" / "1" / "male_back_v_00001_1.bmp"
    loop.unlink()
    os.symlink(loop.name, loop)
    dangling = regdb_root / "Thermal" / "5" / "male_back_t_00000_5.bmp"
    dangling.unlink()
    os.symlink(regdb_root / "gone.bmp", dangling)
    with pytest.raises(DatasetProblemsError) as error:
        RegDB(regdb_root)
    texts = [p.text for p in error.value.problems]
    assert texts[0].endswith("train_visible_1.txt line 2: image 'Visible/1/male_back_v_00001_1.bmp' is a symlink "
                             "loop")
    assert "test_thermal_1.txt line 3: image 'Thermal/5/male_back_t_00000_5.bmp' is a dangling symlink" in texts[1]


def test_sysu_broken_symlinks_are_errors(sysu_root):
    os.symlink(sysu_root / "nowhere", sysu_root / "cam1" / "0042")
    image = sysu_root / "cam2" / "0001" / "0001.jpg"
    image.unlink()
    os.symlink(image.name, image)
    with pytest.raises(DatasetProblemsError) as error:
        SYSUMM01(sysu_root)
    assert [p.path for p in error.value.problems] == [str(sysu_root / "cam1" / "0042"), str(image)]
    assert all("broken symlink" in p.message for p in error.value.problems)
