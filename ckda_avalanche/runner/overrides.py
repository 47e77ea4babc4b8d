"""Apply nested overrides (from ``--config file.yaml|json``) to typed dataclass configs, with clear errors.

Config files are read strictly: a key given twice in one mapping is an error (YAML and JSON would silently keep the
last one), and YAML numbers in exponent form without a dot or exponent sign (``1e-3``, ``1e6``, ``1.5e3``), which
PyYAML's YAML 1.1 rules read as strings, are numbers as in YAML 1.2. Float fields must be finite; integer fields
accept integral floats (``1e6``). Checks done in a dataclass's ``__post_init__`` are reported like type errors,
under the dotted field name (``train.epochs: expected >= 1, got 0``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration file or override names an unknown field or gives a value of the wrong type."""


_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
"""Exponent-form numbers that YAML 1.1 (PyYAML) reads as strings: ``1e-3``, ``1e6``, ``1.5e3``."""


def _strict_yaml_loader(path: Path) -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """SafeLoader that refuses duplicated keys and reads ``1e-3`` as a number."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable key: SafeLoader reports it
                if first is not None:
                    raise ConfigError(f"{path}: line {line}: key {key!r} given twice (first on line {first}); "
                                      f"keep one")
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789."))
    return StrictLoader


def _json_pairs(path: Path):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ConfigError(f"{path}: key {key!r} given twice in one object; keep one")
            out[key] = value
        return out

    return hook


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.yaml``/``.yml`` or ``.json`` file holding a mapping of overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.load(text, Loader=_strict_yaml_loader(path))  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_json_pairs(path))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    else:
        raise ConfigError(f"{path}: expected a .yaml, .yml or .json file")
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of field names to values at the top level")
    return dict(data)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: value {value!r} matches none of {annotation}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, where) for v, a in zip(args, value))
        inner = args[0] if args else typing.Any
        return origin(_coerce(v, inner, where) for v in value)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {annotation.__name__}, got {value!r}")
        return apply_overrides(annotation(), value, where=where)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)  # 1e6 in YAML / JSON
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _post_init_message(message: str, cls: str, where: str) -> str:
    """A dataclass's own check (``"TrainConfig.epochs: expected >= 1"``) under the dotted name (``train.epochs``)."""
    if f"{cls}." not in message and f"{cls}:" not in message:
        return f"{where}: {message}" if where else message
    if where:
        return message.replace(f"{cls}.", f"{where}.").replace(f"{cls}:", f"{where}:")
    return message.replace(f"{cls}.", "").replace(f"{cls}: ", "")


def apply_overrides(config: Any, overrides: Mapping[str, Any], *, where: str = "config") -> Any:
    """Return a copy of dataclass ``config`` with ``overrides`` applied (nested mappings for nested dataclasses).

    Unknown field names, wrongly typed values and values the dataclass's own ``__post_init__`` refuses raise
    :class:`ConfigError` naming the dotted field (prefixed by ``where``; ``where=""`` for bare field names).
    """
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"{where}: {config!r} is not a dataclass instance")
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where or type(config).__name__}: expected a mapping of field names to values, got "
                          f"{overrides!r}")
    hints = typing.get_type_hints(type(config))
    fields = {f.name: f for f in dataclasses.fields(config) if f.init}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            raise ConfigError(
                f"{where or type(config).__name__}: unknown field {key!r}; valid fields of "
                f"{type(config).__name__}: {sorted(fields)}"
            )
        current = getattr(config, key)
        field_where = f"{where}.{key}" if where else str(key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key] = apply_overrides(current, value, where=field_where)
        else:
            changes[key] = _coerce(value, hints[key], field_where)
    try:
        return dataclasses.replace(config, **changes)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(_post_init_message(str(exc), type(config).__name__, where)) from exc
