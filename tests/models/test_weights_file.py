"""Backbone weight files of `ckda pretrain`: round trip, architecture record, sha256 sidecar, built-in names."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from ckda_avalanche.models import create_model
from ckda_avalanche.models.weights_file import BUILTIN_WEIGHTS, resolve_weights, save_backbone


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = create_model("test", config_overrides={"use_msp": False, "use_mcp": False})
    path = tmp_path / "w.safetensors"
    digest = save_backbone(model, path, metadata={"note": "x"})
    return model, path, digest


def test_round_trip_fills_every_backbone_tensor(saved):
    model, path, digest = saved
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (path.parent / "w.safetensors.sha256").read_text() == f"{digest}  w.safetensors\n"
    fresh = create_model("test", str(path))  # prompts on: they keep their initialisation
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(fresh.backbone.state_dict()[key], value), key


def test_architecture_mismatch_names_each_field(saved):
    _, path, _ = saved
    with pytest.raises(ValueError, match=r"stride: file 16 vs model 8.*another architecture|another architecture.*"
                                         r"stride: file 16 vs model 8"):
        create_model("test", str(path), config_overrides={"stride": 8})


def test_sha256_mismatch_is_refused_with_the_remedy(saved):
    _, path, _ = saved
    (path.parent / "w.safetensors.sha256").write_text("0" * 64 + "  w.safetensors\n")
    with pytest.raises(ValueError, match="does not match w.safetensors.sha256.*--pretrained none"):
        create_model("test", str(path))


def test_architecture_record_is_json_in_the_metadata(saved):
    from safetensors import safe_open

    _, path, _ = saved
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["ckda_format"] == "ckda-backbone-v1" and meta["note"] == "x"
    arch = json.loads(meta["architecture"])
    assert arch["img_size"] == [64, 32] and arch["embed_dim"] == 64 and arch["depth"] == 2


def test_builtin_name_resolves_and_ships_with_a_matching_sidecar():
    path = resolve_weights("synthetic-cpu-faithful")
    assert path == BUILTIN_WEIGHTS["synthetic-cpu-faithful"] and path.is_file()
    expected = (path.parent / (path.name + ".sha256")).read_text().split()[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected
    model = create_model("cpu-faithful", "synthetic-cpu-faithful")  # the cpu-faithful architecture matches the shipped file
    assert model.config.img_size == (32, 16)


def test_shipped_weights_come_from_the_current_pool():
    """The shipped file records the pool it was pretrained on; a pool change must re-create it (docs/pretraining.md)."""
    from safetensors import safe_open

    from ckda_avalanche.benchmarks.synthetic.pretrain_pool import POOL_VERSION, pool_record

    with safe_open(str(resolve_weights("synthetic-cpu-faithful")), framework="pt") as handle:
        pool = json.loads(handle.metadata()["pool"])
    assert pool["pool_version"] == POOL_VERSION
    assert pool["domains"] == json.loads(json.dumps(pool_record()["domains"]))
