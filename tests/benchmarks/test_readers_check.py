"""check_root / format_check_report over a data folder, and load_image's decoding errors."""
from __future__ import annotations

import pytest

from ckda_avalanche.benchmarks import DatasetLayoutError, check_root, format_check_report, load_image


def test_check_root_reads_present_datasets_and_reports_errors(tmp_path, builders):
    builders["regdb"](tmp_path / "RegDB")
    builders["llcm"](tmp_path / "LLCM")
    builders["vcm"](tmp_path / "VCM")
    (tmp_path / "SYSU-MM01").mkdir()  # present but empty: reported as an error, not raised
    reports = check_root(tmp_path)
    assert [r.dataset for r in reports] == ["regdb", "sysu", "llcm", "vcm"]
    by_name = {r.dataset: r for r in reports}
    assert by_name["regdb"].ok and by_name["regdb"].summary["splits"]["query"]["images"]["visible"] == 6
    assert not by_name["sysu"].ok and "exp: missing folder" in by_name["sysu"].error
    assert by_name["vcm"].folder == str(tmp_path / "VCM")
    text = format_check_report(reports)
    lines = text.splitlines()
    assert lines[0].split() == ["dataset", "split", "ids", "visible", "infrared", "cameras"]
    assert any(line.split() == ["regdb", "train", "3", "6", "6", "1,2"] for line in lines)
    assert any(line.split() == ["llcm", "gallery", "2", "4", "0", "1,2"] for line in lines)
    assert any(line.startswith("sysu") and "ERROR" in line and "exp" in line for line in lines)
    assert any("note: track_train_info.txt: skipped 2 of 6" in line for line in lines)


def test_check_root_prefers_hitsz_vcm_and_handles_nothing(tmp_path, builders):
    assert format_check_report(check_root(tmp_path)).startswith("no dataset folder found")
    builders["vcm"](tmp_path / "HITSZ-VCM")
    (tmp_path / "VCM").mkdir()
    (report,) = check_root(tmp_path)
    assert report.ok and report.folder == str(tmp_path / "HITSZ-VCM")
    with pytest.raises(DatasetLayoutError, match="missing folder"):
        check_root(tmp_path / "absent")


def test_load_image_decodes_rgb_and_names_broken_files(regdb_root):
    image = load_image(str(regdb_root / "Visible/1/male_back_v_00000_1.bmp"), dataset="RegDB")
    assert image.mode == "RGB" and image.size == (4, 8)
    broken = regdb_root / "Visible/1/male_back_v_00001_1.bmp"
    broken.write_bytes(b"not an image")
    with pytest.raises(DatasetLayoutError, match=r"RegDB: .*male_back_v_00001_1.bmp: cannot decode image") as error:
        load_image(str(broken), dataset="RegDB")
    assert error.value.path == str(broken)
    with pytest.raises(DatasetLayoutError, match="image file is missing"):
        load_image(str(regdb_root / "nope.bmp"), dataset="RegDB")
