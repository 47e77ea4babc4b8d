"""Method variants as first-class methods: ``ckda[no_cka+no_merge]``, ``ewc[ewc_lambda=100]``, ``ckda[quirks]``.

A *variant* is a method name with overrides of that method's config dataclass (``METHOD_CONFIGS``) in square
brackets. It runs like any method: its own folder ``OUT/<variant>/seed<k>/``, its own ``method`` value in the tidy
CSV (hence its own leaderboard row and plot colour) and its fully resolved config in ``config.json``.

Syntax of one name (`ckda_avalanche.method_names`, shared with the reports): ``BASE`` or ``BASE[ITEM+ITEM+...]``.
What an ITEM means here:

- ``flag``: a boolean field switched on (``ckda[no_msp]``);
- ``field=value``: any field set to a value: an integer, a number (``1e-3``; write exponents without ``+``), ``true``
  / ``false``, ``none``, or a word for string / choice fields (``lwf[mode=logits]``);
- an alias of the method, e.g. CKDA's ``quirks`` (the three quirks of docs/method.md §7 on), ``quirk_a``, ``quirk_b``,
  ``quirk_c`` (`ckda_avalanche.strategies.ckda_config.CKDA_VARIANT_ALIASES`).

Fields are checked against the dataclass (unknown field, wrong type, a bare flag on a non-boolean field, a field set
twice) and the dataclass's own validation runs; every error names the variant and the field. Tuple-valued fields
cannot be set here (use ``--config`` with ``method_overrides``). ``method_overrides[BASE]`` from ``--config`` applies
first, to every variant of BASE; the variant's items apply on top.

Canonical name (folder, CSV, leaderboard): items sorted alphabetically, flags written bare (``flag=true`` ->
``flag``), numbers as Python writes them without a trailing ``.0`` (``100.0`` -> ``100``). So
``ckda[no_merge+no_cka]`` runs as ``ckda[no_cka+no_merge]``. Two names of one run that resolve to the same
configuration are an error.

Shell quoting: ``[`` and ``]`` are glob characters, so quote the list: ``--methods 'ckda,ckda[no_msp]'``.

Shorthands in a ``--methods`` list: ``all`` (the nine leaderboard methods), ``ablations`` (CKDA and each ablation of
docs/method.md §8, `ABLATION_METHODS`), ``quirks`` (CKDA with each quirk of docs/method.md §7 and with all three,
`QUIRK_METHODS`) and ``readings`` (CKDA under the alternative readings of CKA that docs/method.md §4 names: s = 10, s = 100,
the normalised student feature, `READING_METHODS`); a name that two shorthands share runs once.
"""
from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ckda_avalanche.method_names import MethodNameError, format_method_name, parse_method_name
from ckda_avalanche.runner.overrides import ConfigError, apply_overrides
from ckda_avalanche.strategies.ckda_config import ABLATION_FLAGS, CKDA_VARIANT_ALIASES

__all__ = [
    "ABLATION_METHODS", "QUIRK_METHODS", "READING_METHODS", "SHORTHANDS", "VARIANT_ALIASES", "ResolvedMethod",
    "base_method", "check_known_method", "model_overrides", "parse_method_list", "resolve_method", "resolve_methods",
    "split_method", "stream_overrides",
]

VARIANT_ALIASES: dict[str, dict[str, dict[str, Any]]] = {"ckda": CKDA_VARIANT_ALIASES}
"""Per base method: alias item -> the field values it stands for."""

ABLATION_METHODS: tuple[str, ...] = ("ckda", *(f"ckda[{flag}]" for flag in ABLATION_FLAGS))
"""CKDA and its twelve ablations of docs/method.md §8 (`ABLATION_FLAGS`), one variant each."""

QUIRK_METHODS: tuple[str, ...] = ("ckda", "ckda[quirk_a]", "ckda[quirk_b]", "ckda[quirk_c]", "ckda[quirks]")
"""CKDA without the published quirks (docs/method.md §7), with each one, and with all three."""

READING_METHODS: tuple[str, ...] = ("ckda", "ckda[sharp_affinity]", "ckda[affinity_scale=100]",
                                    "ckda[normalized_student]", "ckda[normalized_student+sharp_affinity]")
"""CKDA at the published s = 0.1 and under the alternative readings of docs/method.md §4 (never the default): s = 10,
s = 100 (the published affinity helper's own default), the normalised student L2norm(BN(f)), and both."""

_INT = re.compile(r"^[+-]?\d+$")


def _shorthands() -> dict[str, tuple[str, ...]]:
    from ckda_avalanche.strategies.registry import registered_methods

    return {"all": registered_methods(), "ablations": ABLATION_METHODS, "quirks": QUIRK_METHODS,
            "readings": READING_METHODS}


SHORTHANDS: tuple[str, ...] = ("all", "ablations", "quirks", "readings")
"""Names that expand to several methods inside a ``--methods`` list."""


def split_method(name: str) -> tuple[str, tuple[str, ...]]:
    """``"ckda[no_cka+no_merge]"`` -> ``("ckda", ("no_cka", "no_merge"))``; syntax errors raise `ConfigError`."""
    try:
        parsed = parse_method_name(name)
    except MethodNameError as exc:
        raise ConfigError(str(exc)) from None
    return parsed.base, parsed.items


def base_method(name: str) -> str:
    """The method a (possibly variant) name runs: ``"ckda[no_msp]"`` -> ``"ckda"``."""
    return split_method(name)[0]


def check_known_method(base: str, where: str) -> None:
    """`ConfigError` ``<where>: unknown method <base>; available: ...`` unless ``base`` is a registered method: the
    one check of a method name (``--methods``, ``method_overrides``, a run's ``config.json``)."""
    from ckda_avalanche.strategies.registry import registered_methods

    known = registered_methods()
    if base not in known:
        raise ConfigError(f"{where}: unknown method {base!r}; available: {', '.join(sorted(known))}")


def stream_overrides(method_cfg: Any | None) -> dict[str, Any]:
    """Stream-level switches a method config asks for (CKDA's published data quirks), else none."""
    get = getattr(method_cfg, "stream_overrides", None)
    return dict(get()) if callable(get) else {}


def model_overrides(method_cfg: Any | None) -> dict[str, Any]:
    """Model-level switches a method config asks for (e.g. CKDA's ``no_msp`` -> ``use_msp=False``), else none."""
    get = getattr(method_cfg, "model_overrides", None)
    return dict(get()) if callable(get) else {}


def parse_method_list(text: str) -> list[str]:
    """Split a ``--methods`` value on top-level commas, expand the shorthands and check the syntax of each name.

    A name listed twice is an error; a name that several shorthands (or a shorthand and the list) share runs once.
    """
    parts, depth, current = [], 0, []
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    names = [p.strip() for p in parts if p.strip()]
    if not names:
        raise ConfigError("expected a comma-separated list of methods (or all, ablations, quirks)")
    explicit = [n for n in names if n not in SHORTHANDS]
    if len(set(explicit)) != len(explicit):
        twice = sorted({n for n in explicit if explicit.count(n) > 1})
        raise ConfigError(f"method(s) listed twice in {text!r}: {twice}")
    shorthands = _shorthands()
    out: list[str] = []
    for name in names:
        for expanded in shorthands.get(name, (name,)):
            split_method(expanded)
            if expanded not in out:
                out.append(expanded)
    return out


@dataclass(frozen=True)
class ResolvedMethod:
    """A method name resolved against its config dataclass."""

    name: str
    """Canonical name: the folder name and the tidy CSV's ``method`` value (``"ckda[no_cka+no_merge]"``)."""
    base: str
    """The strategy it runs (a key of ``STRATEGIES``)."""
    overrides: dict[str, Any]
    """Field values set by the variant's items (aliases expanded), typed; empty for a plain method."""
    config: Any | None
    """The method's config dataclass with ``method_overrides[base]`` and the variant applied; None for methods
    without a config (e.g. ``finetune``)."""
    stream: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Stream-level switches of the config (keyword arguments of ``vi_lreid_benchmark``; `stream_overrides`)."""
    model: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Model-level switches of the config (``config_overrides`` of ``create_model``; `model_overrides`)."""


def _resolved(name: str, base: str, overrides: dict[str, Any], config: Any | None) -> ResolvedMethod:
    return ResolvedMethod(name=name, base=base, overrides=overrides, config=config,
                          stream=stream_overrides(config), model=model_overrides(config))


def _parse_value(text: str, annotation: Any) -> Any:
    """The value ``text`` stands for: kept as text for string and choice fields, else bool / none / int / float."""
    choices = typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()
    if annotation is str or (choices and all(isinstance(c, str) for c in choices)):
        return text
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    if _INT.match(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        text = repr(value).replace("e+", "e")
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def resolve_method(name: str, base_overrides: Mapping[str, Any] | None = None, *, where: str | None = None,
                   source: str | None = None) -> ResolvedMethod:
    """Resolve ``name`` (a method or a variant) to its canonical name and config; errors raise `ConfigError`.

    ``base_overrides`` are ``RunConfig.method_overrides[base]`` (applied before the variant's items). ``where``
    names the origin of ``name`` in an unknown-method error (default ``method '<name>'``); ``source`` (the config
    file) prefixes errors of ``base_overrides``.
    """
    from ckda_avalanche.strategies import METHOD_CONFIGS

    base, items = split_method(name)
    check_known_method(base, where or f"method {name!r}")
    if base not in METHOD_CONFIGS:
        if items:
            raise ConfigError(f"method {name!r}: {base!r} has no config dataclass, so it has no variants "
                              f"(methods with one: {sorted(METHOD_CONFIGS)})")
        if base_overrides:
            raise ConfigError(f"{_field(source, base)}: method {base!r} has no configuration to override")
        return _resolved(base, base, {}, None)
    cls = METHOD_CONFIGS[base]
    hints = typing.get_type_hints(cls)
    fields = sorted(f.name for f in dataclasses.fields(cls) if f.init)
    aliases = VARIANT_ALIASES.get(base, {})
    values: dict[str, Any] = {}  # field -> value parsed from the text (coerced to the field's type below)
    shown: list[tuple[str, str | None]] = []  # (alias, None) or (field, field): what the canonical name lists
    for item in items:
        key, _, text = item.partition("=")
        if not text and key in aliases:
            item_values = dict(aliases[key])
            shown.append((key, None))
        elif key in fields:
            if not text and hints[key] is not bool:
                raise ConfigError(f"method {name!r}: {cls.__name__}.{key} is not a boolean flag; write "
                                  f"{key}=VALUE")
            item_values = {key: True if not text else _parse_value(text, hints[key])}
            shown.append((key, key))
        else:
            alias_note = f"; aliases: {sorted(aliases)}" if aliases else ""
            raise ConfigError(f"method {name!r}: {cls.__name__} has no field {key!r} (method {base!r}); valid "
                              f"fields: {fields}{alias_note}")
        for field_name, value in item_values.items():
            if field_name in values:
                raise ConfigError(f"method {name!r}: {cls.__name__}.{field_name} is set twice")
            annotation = hints[field_name]
            if annotation in (tuple, list) or typing.get_origin(annotation) in (tuple, list):
                raise ConfigError(f"method {name!r}: {cls.__name__}.{field_name} holds a list; set it with "
                                  "--config method_overrides instead")
            values[field_name] = value
    try:
        config = apply_overrides(cls(), dict(base_overrides or {}), where=_field(source, base))
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # the dataclass's own validation (__post_init__)
        raise ConfigError(f"{_field(source, base)}: {exc}") from exc
    try:
        config = apply_overrides(config, values, where=f"method {name!r}: {cls.__name__}")
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"method {name!r}: {exc}") from exc
    overrides = {field_name: getattr(config, field_name) for field_name in values}
    labels = []
    for key, field_name in shown:
        if field_name is None:
            labels.append(key)
        else:
            value = overrides[field_name]
            labels.append(key if value is True else f"{key}={_format_value(value)}")
    canonical = format_method_name(base, labels)
    return _resolved(canonical, base, overrides, config)


def _field(source: str | None, base: str) -> str:
    return f"{source}: method_overrides.{base}" if source else f"method_overrides.{base}"


def resolve_methods(names: Sequence[str], method_overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
                    where: str | None = None, source: str | None = None) -> list[ResolvedMethod]:
    """Resolve every name of a run; two names with the same canonical name or the same config are an error.

    ``where`` and ``source`` as for `resolve_method` (``ckda run`` passes ``--methods`` and its ``--config``)."""
    overrides = dict(method_overrides or {})
    resolved: list[ResolvedMethod] = []
    for name in names:
        method = resolve_method(name, overrides.get(base_method(name)), where=where, source=source)
        for other, earlier in zip(names, resolved):
            if earlier.base == method.base and (earlier.name == method.name or earlier.config == method.config):
                raise ConfigError(f"methods {other!r} and {name!r} resolve to the same configuration "
                                  f"({earlier.name}); list it once")
        resolved.append(method)
    return resolved
