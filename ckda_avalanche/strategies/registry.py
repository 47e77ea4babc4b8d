"""The method registry: one place that names every method's strategy, config and plot colour.

Like timm's model registry (and `models/registry.py` here), a method is registered once and everything else derives
from that: ``ckda run --methods`` (and its ``all`` shorthand and ``--help``), the variant grammar, re-scoring,
the leaderboard and the plots.

Methods from outside the package come from installed distributions through the entry-point group
``ckda_avalanche.methods``: the entry point's name is the method's name and its object is the strategy class, a
subclass of `MethodStrategy` (a `ReIDTemplate` configured by one method dataclass). The class says the rest:
``default_method`` (an instance of its config dataclass) and, optionally, ``plot_colour`` and ``upper_bound``.
Entry points are read the first time the registry is asked for a method, in every process that asks (a Ray
worker included), so an installed method runs wherever the package does.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from ckda_avalanche.method_names import is_base_name

__all__ = ["ENTRY_POINT_GROUP", "MethodRegistryError", "MethodSpec", "get_method", "method_configs",
           "register_method", "registered_methods", "strategies"]

ENTRY_POINT_GROUP = "ckda_avalanche.methods"
"""The entry-point group through which installed distributions add methods."""


class MethodRegistryError(ValueError):
    """A method that cannot be registered or found (the message names it and what was expected)."""


@dataclass(frozen=True)
class MethodSpec:
    """One registered method."""

    name: str
    """The name used on the command line, in run folders and in the leaderboard (lower case, ``[a-z][a-z0-9_]*``)."""
    strategy: type
    """The strategy class (a `ReIDTemplate` subclass), constructed with ``model=``, ``config=`` ... and ``method=``."""
    config: type | None
    """The method's config dataclass (the type of ``method=``), or None for a strategy that takes none."""
    colour: str | None = None
    """Its colour in every plot (``#rrggbb``); None gives a stable colour derived from the name."""
    upper_bound: bool = False
    """True for a reference that is not a continual method (it re-reads past data, as Joint does); the leaderboard
    labels it so."""
    source: str = "ckda_avalanche"
    """Where it was registered: the package, or the distribution that provides its entry point."""


_REGISTRY: dict[str, MethodSpec] = {}
_ENTRY_POINTS_LOADED = False


def _check_spec(spec: MethodSpec) -> None:
    from ckda_avalanche.strategies.base import ReIDTemplate

    where = f"method {spec.name!r} (from {spec.source})"
    if not is_base_name(spec.name):
        raise MethodRegistryError(f"{where}: the name must match [a-z][a-z0-9_]* (it is used in folder names and in "
                                  "the variant grammar NAME[ITEM+ITEM])")
    if not (isinstance(spec.strategy, type) and issubclass(spec.strategy, ReIDTemplate)):
        raise MethodRegistryError(f"{where}: the strategy must be a subclass of "
                                  f"ckda_avalanche.strategies.ReIDTemplate, got {spec.strategy!r}")
    if spec.config is not None and not dataclasses.is_dataclass(spec.config):
        raise MethodRegistryError(f"{where}: the config must be a dataclass type, got {spec.config!r}")
    if spec.colour is not None and not re.match(r"^#[0-9a-fA-F]{6}$", str(spec.colour)):
        raise MethodRegistryError(f"{where}: plot colour must be '#rrggbb', got {spec.colour!r}")


def register_method(name: str, *, strategy: type, config: type | None = None, colour: str | None = None,
                    upper_bound: bool = False, source: str = "ckda_avalanche") -> MethodSpec:
    """Register ``name``; registering a name twice is an error (unless it is the very same registration)."""
    spec = MethodSpec(name=name, strategy=strategy, config=config, colour=colour, upper_bound=upper_bound,
                      source=source)
    _check_spec(spec)
    existing = _REGISTRY.get(name)
    if existing is not None and existing != spec:
        raise MethodRegistryError(f"method {name!r} is registered twice: by {existing.source} and by {source}")
    _REGISTRY[name] = spec
    return spec


def _spec_from_strategy(name: str, strategy: Any, source: str) -> MethodSpec:
    """The registration an entry point's strategy class describes (``default_method``, ``plot_colour``, ...)."""
    from ckda_avalanche.strategies.method_strategy import MethodStrategy

    if not (isinstance(strategy, type) and issubclass(strategy, MethodStrategy)):
        raise MethodRegistryError(f"entry point {name!r} of group {ENTRY_POINT_GROUP} (from {source}): expected a "
                                  f"subclass of ckda_avalanche.strategies.MethodStrategy, got {strategy!r}")
    default = getattr(strategy, "default_method", None)
    if default is None or not dataclasses.is_dataclass(default):
        raise MethodRegistryError(f"entry point {name!r} (from {source}): {strategy.__name__}.default_method must be "
                                  "an instance of the method's config dataclass")
    return MethodSpec(name=name, strategy=strategy, config=type(default), colour=getattr(strategy, "plot_colour", None),
                      upper_bound=bool(getattr(strategy, "upper_bound", False)), source=source)


def _load_entry_points() -> None:
    """Register the methods that installed distributions declare (once per process)."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    import ckda_avalanche.strategies  # noqa: F401  (the package's own methods first: a clash names both)

    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        source = f"distribution {entry.dist.name}" if entry.dist is not None else f"entry point {entry.value}"
        try:
            strategy = entry.load()
        except Exception as exc:  # an installed method that cannot be imported: say which, and why
            raise MethodRegistryError(f"entry point {entry.name!r} ({entry.value}, {source}) could not be loaded: "
                                      f"{type(exc).__name__}: {exc}") from exc
        spec = _spec_from_strategy(entry.name, strategy, source)
        register_method(spec.name, strategy=spec.strategy, config=spec.config, colour=spec.colour,
                        upper_bound=spec.upper_bound, source=spec.source)


def registered_methods() -> tuple[str, ...]:
    """Every method's name, the package's in registration order, then the installed ones."""
    _load_entry_points()
    return tuple(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """The registration of ``name``; an error listing the available methods otherwise."""
    _load_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise MethodRegistryError(f"unknown method {name!r}; available: {', '.join(sorted(_REGISTRY))}") from None


class _View(Mapping):
    """A read-only mapping name -> one attribute of the registrations (what `STRATEGIES` used to be)."""

    def __init__(self, attribute: str, *, only_with: bool = False) -> None:
        self._attribute = attribute
        self._only_with = only_with

    def _items(self) -> dict[str, Any]:
        _load_entry_points()
        items = {name: getattr(spec, self._attribute) for name, spec in _REGISTRY.items()}
        return {k: v for k, v in items.items() if v is not None} if self._only_with else items

    def __getitem__(self, key: str) -> Any:
        return self._items()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items()!r})"


def strategies() -> Mapping[str, type]:
    """name -> strategy class, over every registered method."""
    return _View("strategy")


def method_configs() -> Mapping[str, type]:
    """name -> config dataclass, over the registered methods that take one."""
    return _View("config", only_with=True)
