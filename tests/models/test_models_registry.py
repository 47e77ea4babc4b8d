"""Model registry, presets and typed configuration overrides."""
from __future__ import annotations

import pytest

from ckda_avalanche.models import ModelConfig, create_model, get_model_config, list_models, register_model


def test_presets_and_aliases() -> None:
    assert list_models() == ["vit_base_reid", "vit_micro_reid", "vit_tiny_faithful_reid", "vit_tiny_reid"]
    for name, alias in (("vit_base_reid", "paper"), ("vit_tiny_reid", "cpu"), ("vit_micro_reid", "test"),
                        ("vit_tiny_faithful_reid", "cpu-faithful")):
        assert get_model_config(name) == get_model_config(alias)
    paper = get_model_config("paper")
    assert (paper.embed_dim, paper.depth, paper.num_heads) == (768, 12, 12)
    assert (paper.img_size, paper.patch_size, paper.stride) == ((256, 128), 16, 12)
    assert (paper.drop_path_rate, paper.drop_rate) == (0.1, 0.03)
    assert paper.num_patches == 210
    assert paper.use_msp and paper.use_mcp and paper.mcp_gates and paper.mcp_instance_norm
    assert paper.use_modality_embedding
    cpu = get_model_config("cpu")
    assert (cpu.img_size, cpu.embed_dim, cpu.depth, cpu.num_heads, cpu.patch_size, cpu.stride) == ((32, 16), 128, 3, 4, 8, 8)
    assert cpu.prompt_patch == 16 and cpu.grid_size == (4, 2)
    assert get_model_config("test").img_size == (64, 32)
    faithful = get_model_config("cpu-faithful")
    # 1/8 of the paper's side: (32 - 4) // 3 + 1 = 10 rows, (16 - 4) // 3 + 1 = 5 columns; prompts 32/2 x 16/2.
    assert (faithful.patch_size, faithful.stride, faithful.grid_size, faithful.num_patches) == (4, 3, (10, 5), 50)
    assert (faithful.img_size[0] // faithful.prompt_patch, faithful.img_size[1] // faithful.prompt_patch) == (16, 8)


def test_overrides_are_validated_and_typed() -> None:
    config = get_model_config("test", {"img_size": [128, 64], "drop_rate": 0, "use_msp": False})
    assert config.img_size == (128, 64) and isinstance(config.drop_rate, float) and not config.use_msp
    with pytest.raises(ValueError, match="unknown ModelConfig field.*'depht'"):
        get_model_config("test", {"depht": 3})
    with pytest.raises(TypeError, match="ModelConfig.depth expects int"):
        get_model_config("test", {"depth": 2.5})
    with pytest.raises(TypeError, match="ModelConfig.use_mcp expects bool"):
        get_model_config("test", {"use_mcp": 1})
    with pytest.raises(TypeError, match="img_size expects two ints"):
        get_model_config("test", {"img_size": "64x32"})
    with pytest.raises(TypeError, match="ModelConfig.stride expects int"):
        ModelConfig(stride="12")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divisible by num_heads"):
        get_model_config("test", {"num_heads": 3})
    with pytest.raises(ValueError, match="drop_path_rate must be in"):
        get_model_config("test", {"drop_path_rate": 1.5})


def test_create_model_arguments() -> None:
    model = create_model("test", num_classes=4, img_size=(96, 48))
    assert model.config.img_size == (96, 48) and model.num_classes == 4
    assert model.grid_size == (6, 3)
    with pytest.raises(ValueError, match="conflicts"):
        create_model("test", img_size=(96, 48), config_overrides={"img_size": (64, 32)})
    with pytest.raises(ValueError, match="unknown model 'vit_huge'"):
        create_model("vit_huge")
    with pytest.raises(ValueError, match="download"):
        create_model("test", pretrained=True)


def test_register_model_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        @register_model("paper")
        def _again() -> ModelConfig:  # pragma: no cover - never called
            return ModelConfig()
