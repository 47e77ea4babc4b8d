"""Checks of the plugins' keyword hyperparameters, shared with the method configs that hand them on.

``owner`` is the plugin (``"ReIDLwFPlugin"``) or the config dataclass (``"LwFConfig"``), so the error names the
class and the field the user wrote."""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ["check_choice"]


def check_choice(owner: str, field: str, value: object, choices: Sequence[str]) -> None:
    """Raise ``ValueError("<owner>.<field>: expected 'a', 'b' or 'c', got <value>")`` unless ``value`` is a choice."""
    if value not in choices:
        quoted = [repr(c) for c in choices]
        listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        raise ValueError(f"{owner}.{field}: expected {listed}, got {value!r}")
