"""Byte sizes as people write them: ``"2G"`` / ``"500M"`` / ``"1536"`` in, ``"1.5 KiB"`` out.

Shared by the memory image cache (``$CKDA_DATA_CACHE_LIMIT``) and the on-disk decoded-image store
(``$CKDA_DECODED_CACHE_MAX``), so neither imports the other for it."""
from __future__ import annotations

import math

__all__ = ["format_bytes", "parse_bytes"]


def format_bytes(value: int) -> str:
    """``1536 -> "1.5 KiB"`` (binary units, one decimal)."""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def parse_bytes(text: str, where: str) -> int:
    """A number of bytes, optionally with a K, M, G or T suffix (powers of 1024; ``KB``, ``KiB`` accepted).

    Anything else (empty, negative, NaN, infinite, words) raises ``ValueError`` naming ``where``."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    if value and value[-1] in "KMGT":
        factor = 1024 ** ("KMGT".index(value[-1]) + 1)
        value = value[:-1]
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not (number >= 0 and math.isfinite(number)):
        raise ValueError(f"{where}: expected a number of bytes (e.g. 2000000000 or 2G), got {text!r}")
    return int(number * factor)
