"""The grammar of method names: ``BASE`` or ``BASE[ITEM+ITEM+...]`` (``ckda``, ``ckda[no_cka+no_merge]``,
``ewc[ewc_lambda=100]``).

- ``BASE``: a registered method's name, lower case, ``[a-z][a-z0-9_]*``;
- each ``ITEM``: ``FLAG`` or ``FIELD=VALUE``; FLAG and FIELD start with a letter or ``_`` and hold letters, digits and
  ``_``; VALUE holds letters, digits, ``.``, ``-`` and ``_`` (write exponents without ``+``: ``1e3``, ``1e-3``);
- spaces around the name and around each item are ignored; items are joined by ``+``, never by ``,``.

This module owns the syntax only: which items a method accepts and what they mean is the runner's business
(`ckda_avalanche.runner.variants`), and the reports read the names back with the same grammar
(`ckda_avalanche.reporting.ablation`, `ckda_avalanche.reporting.claims`). The *canonical* spelling, written by
`format_method_name`, lists the items sorted and without spaces, so two spellings of one variant name one folder.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["BASE_NAME", "MethodName", "MethodNameError", "format_method_name", "is_base_name", "parse_method_name"]

BASE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
"""A method's own name (no variant part): lower case, ``[a-z][a-z0-9_]*``."""

SYNTAX = "NAME or NAME[ITEM+ITEM...]"
"""The grammar in one line, as the error messages write it."""

_NAME = re.compile(r"^([a-z][a-z0-9_]*)(?:\[([^\[\]]*)\])?$")
_ITEM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:=[A-Za-z0-9_.\-]+)?$")


class MethodNameError(ValueError):
    """A method name that does not follow the grammar (the message quotes the name and says what was expected)."""


@dataclass(frozen=True)
class MethodName:
    """A parsed method name: its base method and its variant items, in the order written."""

    base: str
    """The method it runs (``"ckda"`` for ``"ckda[no_msp]"``)."""
    items: tuple[str, ...] = ()
    """The variant's items, stripped of spaces (``("no_cka", "no_merge")``); empty for a plain method."""

    def __str__(self) -> str:
        return format_method_name(self.base, self.items)


def is_base_name(name: str) -> bool:
    """True when ``name`` is a valid method name without a variant part."""
    return isinstance(name, str) and BASE_NAME.match(name) is not None


def _check_item(name: str, item: str) -> None:
    if not item:
        raise MethodNameError(f"method {name!r}: empty item inside [...]")
    if not _ITEM.match(item):
        raise MethodNameError(f"method {name!r}: item {item!r} is not FLAG or FIELD=VALUE (values: letters, digits, "
                              "'.', '-', '_'; write 1e3, not 1e+3)")


def parse_method_name(name: str) -> MethodName:
    """``"ckda[no_cka + no_merge]"`` -> ``MethodName("ckda", ("no_cka", "no_merge"))``; `MethodNameError` otherwise."""
    if not isinstance(name, str):
        raise MethodNameError(f"method {name!r}: expected a string of the form {SYNTAX}")
    match = _NAME.match(name.strip())
    if match is None:
        raise MethodNameError(f"method {name!r}: expected {SYNTAX} (lower-case NAME, one pair of square brackets at "
                              "the end)")
    base, inner = match.group(1), match.group(2)
    if inner is None:
        return MethodName(base)
    if "," in inner:
        raise MethodNameError(f"method {name!r}: combine items with '+', not ',' (e.g. ckda[no_cka+no_merge])")
    items = tuple(item.strip() for item in inner.split("+"))
    for item in items:
        _check_item(name, item)
    return MethodName(base, items)


def format_method_name(base: str, items: Iterable[str] = ()) -> str:
    """The canonical name of ``base`` with ``items``: ``base`` alone without items, else the items sorted and joined
    by ``+`` in brackets (``format_method_name("ckda", ["no_merge", "no_cka"]) == "ckda[no_cka+no_merge]"``)."""
    items = tuple(item.strip() for item in items)
    name = f"{base}[{'+'.join(items)}]" if items else str(base)
    if not is_base_name(base):
        raise MethodNameError(f"method {name!r}: the base name {base!r} must match [a-z][a-z0-9_]*")
    for item in items:
        _check_item(name, item)
    return f"{base}[{'+'.join(sorted(items))}]" if items else base
