import os

import pytest
import torch

from ckda_avalanche.runner import atomic


def test_atomic_writes_roundtrip(tmp_path):
    atomic.atomic_write_json(tmp_path / "sub" / "a.json", {"x": 1})
    assert (tmp_path / "sub" / "a.json").read_text().strip().startswith("{")
    atomic.atomic_torch_save(tmp_path / "t.pt", {"w": torch.arange(3)})
    assert torch.equal(torch.load(tmp_path / "t.pt")["w"], torch.arange(3))


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    atomic.atomic_write_text(target, "old")

    class Boom(Exception):
        pass

    def write(handle):
        handle.write(b"half")
        raise Boom

    with pytest.raises(Boom):
        atomic._atomic_write(target, write)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]
