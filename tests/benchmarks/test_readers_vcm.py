"""HITSZ-VCM reader: tiny tree, frame sampling, malformed cases, and the real info/ files with generated names."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ckda_avalanche.benchmarks import INFRARED, VISIBLE, DatasetLayoutError, HITSZVCM


def _edit_line(path: Path, number: int, new: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = new
    path.write_text("\n".join(lines) + "\n")


def test_reads_tiny_tree(vcm_root):
    reader = HITSZVCM(vcm_root)
    assert reader.name == "vcm"
    # per id: visible (cam 1, 12 frames), infrared (cam 2, 12 frames), visible (cam 3, 5 frames: skipped)
    assert len(reader.train) == 2 * 2 * 3
    assert [s.tracklet for s in reader.train[:6]] == [0, 0, 0, 1, 1, 1]
    first = reader.train[0]
    assert (first.pid, first.camid, first.modality) == (1, 1, VISIBLE)
    assert first.path.startswith(str(vcm_root / "Train" / "0001" / "rgb" / "D1"))
    assert {(s.camid, s.modality) for s in reader.train if s.tracklet == 1} == {(2, INFRARED)}
    assert any("skipped 2 of 6 tracklets" in note for note in reader.notes)
    # test rows: 0 vis(3), 1 ir(3), 2 short, 3 vis(4), 4 ir(4), 5 short; query_IDX = rows 2 and 5 (1-based)
    assert [s.tracklet for s in reader.test_pool] == [0, 1, 3, 4]
    assert reader.test_pool[1].path == str(vcm_root / "Test" / "0003" / "ir" / "D2" / f"{13 + 6:04d}.jpg")
    assert [s.tracklet for s in reader.query] == [1, 4] and [s.tracklet for s in reader.gallery] == [0, 3]
    assert reader.summary()["splits"]["query"]["tracklets"] == 2


def test_train_frames_are_seeded_distinct_and_in_order(vcm_root):
    def picks(seed: int) -> list[str]:
        return [s.path for s in HITSZVCM(vcm_root, seed=seed).train]

    assert picks(0) == picks(0)
    assert len({tuple(picks(seed)) for seed in range(4)}) > 1
    reader = HITSZVCM(vcm_root, frames_per_tracklet=12)
    for tracklet in {s.tracklet for s in reader.train}:
        paths = [s.path for s in reader.train if s.tracklet == tracklet]
        assert len(paths) == 12 and paths == sorted(set(paths))


def test_mean_feature_pool_holds_every_frame(vcm_root):
    reader = HITSZVCM(vcm_root, tracklet_feature="mean")
    assert len(reader.test_pool) == 4 * 12
    assert reader.protocol().group_by_tracklet and len(reader.query) == 2


def test_min_tracklet_len_applies_to_test_too(vcm_root):
    reader = HITSZVCM(vcm_root, min_tracklet_len=5, frames_per_tracklet=5)
    assert [s.tracklet for s in reader.test_pool] == [0, 1, 2, 3, 4, 5]
    assert [s.tracklet for s in reader.gallery] == [0, 2, 3, 5]


def test_invalid_options(vcm_root):
    with pytest.raises(ValueError, match="tracklet_feature"):
        HITSZVCM(vcm_root, tracklet_feature="max")
    with pytest.raises(ValueError, match="frames_per_tracklet"):
        HITSZVCM(vcm_root, frames_per_tracklet=13)


def test_missing_root_and_sub_folder(vcm_root, tmp_path):
    with pytest.raises(DatasetLayoutError, match="HITSZ-VCM: .*missing folder"):
        HITSZVCM(tmp_path / "nothing")
    shutil.rmtree(vcm_root / "Test")
    with pytest.raises(DatasetLayoutError, match=r"Test: missing folder"):
        HITSZVCM(vcm_root)


def test_missing_index_file(vcm_root):
    (vcm_root / "info" / "query_IDX.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="query_IDX.txt: missing index file"):
        HITSZVCM(vcm_root)


def test_malformed_name_line(vcm_root):
    _edit_line(vcm_root / "info" / "train_name.txt", 4, "0001_rgb_D1_0004.jpg")
    with pytest.raises(DatasetLayoutError, match=r"train_name.txt line 4: expected a frame name"):
        HITSZVCM(vcm_root)


def test_malformed_track_row(vcm_root):
    _edit_line(vcm_root / "info" / "track_test_info.txt", 2, "1 13 24 0003")
    with pytest.raises(DatasetLayoutError, match=r"track_test_info.txt line 2: expected five integers"):
        HITSZVCM(vcm_root)
    _edit_line(vcm_root / "info" / "track_test_info.txt", 2, "1 13 9999 0003 2")
    with pytest.raises(DatasetLayoutError, match=r"track_test_info.txt line 2: expected modality 1\|2 and 1 <= start"):
        HITSZVCM(vcm_root)


def test_non_integer_query_row(vcm_root):
    (vcm_root / "info" / "query_IDX.txt").write_text("2 five\n")
    with pytest.raises(DatasetLayoutError, match=r"query_IDX.txt line 1: expected integer row numbers, got 'five'"):
        HITSZVCM(vcm_root)


def test_query_row_must_be_infrared_and_in_range(vcm_root):
    (vcm_root / "info" / "query_IDX.txt").write_text("2\n1\n")
    with pytest.raises(DatasetLayoutError, match=r"query_IDX.txt line 2: row 1 of track_test_info.txt is a visible"):
        HITSZVCM(vcm_root)
    (vcm_root / "info" / "query_IDX.txt").write_text("2 99\n")
    with pytest.raises(DatasetLayoutError, match=r"query_IDX.txt line 1: row 99 is outside 1..6"):
        HITSZVCM(vcm_root)


def test_frame_pointing_at_missing_image(vcm_root):
    (vcm_root / "Test" / "0004" / "rgb" / "D1" / "0035.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match=r"test_name.txt line 35: frame resolves to 'Test/0004/rgb/D1/0035"):
        HITSZVCM(vcm_root)


def test_name_inconsistent_with_track_row(vcm_root):
    _edit_line(vcm_root / "info" / "train_name.txt", 3, "0002M2D1T0001F0003.jpg")
    with pytest.raises(DatasetLayoutError, match=r"train_name.txt line 3: frame of pid 2 .* tracklet row 1"):
        HITSZVCM(vcm_root)


def test_split_with_no_infrared_tracklet(vcm_root):
    (vcm_root / "info" / "query_IDX.txt").write_text("2 5\n")
    info = vcm_root / "info" / "track_train_info.txt"
    info.write_text("".join(line + "\n" for line in info.read_text().splitlines() if not line.startswith("1 ")))
    with pytest.raises(DatasetLayoutError, match=r"track_train_info.txt: the training split has no infrared image"):
        HITSZVCM(vcm_root)


ROWS = 300
"""Real track-info rows used (the first ones: rows cover the name list contiguously from frame 1)."""


def _rows(path: Path) -> list[tuple[int, int, int, int, int]]:
    return [tuple(int(v) for v in line.split()) for line in path.read_text().splitlines()[:ROWS]]


@pytest.fixture(scope="module")
def real_vcm(real_index, builders, placeholder_dir) -> Path:
    root = placeholder_dir / "HITSZ-VCM"
    (root / "info").mkdir(parents=True)
    for split in ("train", "test"):
        lines = (real_index / "VCM" / "info" / f"track_{split}_info.txt").read_text().splitlines()[:ROWS]
        (root / "info" / f"track_{split}_info.txt").write_text("\n".join(lines) + "\n")
        builders["write_vcm_split"](root, split, _rows(root / "info" / f"track_{split}_info.txt"),
                                    placeholder=True)
    query = [int(t) for t in (real_index / "VCM" / "info" / "query_IDX.txt").read_text().split()]
    (root / "info" / "query_IDX.txt").write_text(" ".join(str(q) for q in query if q <= ROWS) + "\n")
    return root


def test_real_info_files(real_vcm):
    reader = HITSZVCM(real_vcm)
    train, test = _rows(real_vcm / "info/track_train_info.txt"), _rows(real_vcm / "info/track_test_info.txt")
    query_rows = {int(t) - 1 for t in (real_vcm / "info/query_IDX.txt").read_text().split()}
    long_train = [r for r in train if r[2] - r[1] + 1 >= 12]
    long_test = [i for i, r in enumerate(test) if r[2] - r[1] + 1 >= 12]
    assert len(reader.train) == 3 * len(long_train)
    assert reader.summary()["splits"]["train"]["ids"] == len({r[3] for r in long_train})
    assert {s.modality for s in reader.train} == {VISIBLE, INFRARED}
    assert [s.tracklet for s in reader.query] == [i for i in long_test if i in query_rows]
    assert [s.tracklet for s in reader.gallery] == [i for i in long_test if i not in query_rows and test[i][0] == 2]
    assert {s.camid for s in reader.query} == {test[i][4] for i in long_test if i in query_rows}
    middle = reader.test_pool[0]
    start, end = test[long_test[0]][1:3]
    assert middle.path.endswith(f"/{start + (end - start + 1) // 2:04d}.jpg")
    mean = HITSZVCM(real_vcm, tracklet_feature="mean")
    assert len(mean.test_pool) == sum(test[i][2] - test[i][1] + 1 for i in long_test)
    assert np.all(np.diff([s.tracklet for s in mean.test_pool]) >= 0)


def test_paper_rule_is_the_regdb_evaluator_unless_camera_filter(vcm_root):
    """The published code scores HITSZ-VCM with its RegDB evaluator: no camera filtering (rule "none")."""
    for kind in ("paper", "full"):
        reader = HITSZVCM(vcm_root)
        assert {t.rule for t in reader.protocol(kind).trials(reader.test_pool)} == {"none"}
        filtered = HITSZVCM(vcm_root, camera_filter=True)
        assert {t.rule for t in filtered.protocol(kind).trials(filtered.test_pool)} == {"market"}
