"""Real-size stand-ins: every image an index file lists is written, at the asked size and format, and the real
readers read the tree."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ckda_avalanche.benchmarks.datasets import LLCM
from ckda_avalanche.benchmarks.synthetic.real_size import write_real_size
from ckda_avalanche.cli import main


def _llcm_index(root: Path) -> Path:
    idx = root / "LLCM" / "idx"
    idx.mkdir(parents=True)
    lines = {"train_vis": [], "train_nir": [], "test_vis": [], "test_nir": []}
    for label, pid in enumerate((1, 2)):
        for k in range(2):
            lines["train_vis"].append(f"vis/{pid:04d}/{pid:04d}_c0{k + 1}_s1_f{k}_vis.jpg {label}")
            lines["train_nir"].append(f"nir/{pid:04d}/{pid:04d}_c0{k + 5}_s1_f{k}_nir.jpg {label}")
    for label, pid in enumerate((3, 4)):
        for k in range(2):
            lines["test_vis"].append(f"vis/{pid:04d}/{pid:04d}_c0{k + 1}_s1_f{k}_vis.jpg {label}")
            lines["test_nir"].append(f"nir/{pid:04d}/{pid:04d}_c0{k + 5}_s1_f{k}_nir.jpg {label}")
    for name, rows in lines.items():
        (idx / f"{name}.txt").write_text("\n".join(rows) + "\n")
    (idx / "test_id.txt").write_text("3,4")
    return root


def test_every_listed_image_written_at_size(tmp_path):
    index = _llcm_index(tmp_path / "index")
    report = write_real_size(tmp_path / "out", index, datasets=("llcm",), img_size=(64, 32))
    assert report["llcm"]["images"] == 16
    files = sorted((tmp_path / "out" / "LLCM").glob("*/*/*.jpg"))
    assert len(files) == 16
    with Image.open(files[0]) as image:
        assert image.size == (32, 64) and image.format == "JPEG"
    reader = LLCM(tmp_path / "out" / "LLCM")
    assert len(reader.train) == 8 and len(reader.test_pool) == 8
    with pytest.raises(ValueError, match="'sysu' cannot be written at real size"):
        write_real_size(tmp_path / "x", index, datasets=("sysu",))
    with pytest.raises(FileNotFoundError, match="RegDB/idx"):
        write_real_size(tmp_path / "x", index, datasets=("regdb",))


def test_cli_real_sizes(tmp_path, capsys):
    index = _llcm_index(tmp_path / "index")
    main(["data", "synth", "--out", str(tmp_path / "cli"), "--real-sizes", str(index), "--img-size", "64", "32"])
    assert "llcm: 16 images" in capsys.readouterr().out
    assert len(list((tmp_path / "cli" / "LLCM").glob("*/*/*.jpg"))) == 16
