import dataclasses
import json

import pytest

from ckda_avalanche.runner.overrides import ConfigError, apply_overrides, load_config_file


@dataclasses.dataclass(frozen=True)
class Inner:
    lr: float = 0.1
    """learning rate"""
    names: tuple[str, ...] = ("a",)
    """names"""


@dataclasses.dataclass(frozen=True)
class Outer:
    epochs: int = 1
    """epochs"""
    mode: str | None = None
    """mode"""
    inner: Inner = dataclasses.field(default_factory=Inner)
    """nested"""


def test_nested_override_and_coercion():
    cfg = apply_overrides(Outer(), {"epochs": 3, "inner": {"lr": 1, "names": ["x", "y"]}})
    assert cfg.epochs == 3 and cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.names == ("x", "y")
    assert Outer().epochs == 1  # the original is untouched


def test_unknown_field_names_the_dotted_path():
    with pytest.raises(ConfigError, match=r"config\.inner: unknown field 'lrr'"):
        apply_overrides(Outer(), {"inner": {"lrr": 1}})


@pytest.mark.parametrize("value", ["3", 2.5, True])
def test_wrong_type_is_rejected(value):
    with pytest.raises(ConfigError, match=r"config\.epochs: expected an integer"):
        apply_overrides(Outer(), {"epochs": value})


def test_optional_accepts_none_and_string():
    assert apply_overrides(Outer(mode="x"), {"mode": None}).mode is None
    assert apply_overrides(Outer(), {"mode": "y"}).mode == "y"


def test_load_yaml_and_json(tmp_path):
    (tmp_path / "a.yaml").write_text("epochs: 4\ninner:\n  lr: 0.5\n")
    (tmp_path / "b.json").write_text(json.dumps({"epochs": 5}))
    assert apply_overrides(Outer(), load_config_file(tmp_path / "a.yaml")).inner.lr == 0.5
    assert load_config_file(tmp_path / "b.json") == {"epochs": 5}
    (tmp_path / "c.txt").write_text("x")
    with pytest.raises(ConfigError, match="expected a .yaml"):
        load_config_file(tmp_path / "c.txt")
    (tmp_path / "d.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config_file(tmp_path / "d.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml")
