"""Marker bases naming the two roles CKDA's plugin-order rules are about (Cui, Zhou, Peng, AAAI 2026; docs/method.md §5).

The weight merge must run before the teacher is refreshed, and the teacher before its users (prompt consistency,
CKA), because the teacher and the prototypes come from the MERGED model. `checks.py` states that rule and the
teacher checks it at run time; both only need to recognise the roles, not import the plugins that play them, so the
plugins and the checks import this module instead of each other.
"""
from __future__ import annotations

__all__ = ["TeacherRole", "WeightMergeRole"]


class TeacherRole:
    """A plugin that holds the previous session's (merged) model for other plugins to query (`TeacherPlugin`)."""


class WeightMergeRole:
    """A plugin that merges weights at the end of a session (`WeightMergePlugin`); ``pending`` is True between the
    end of training and its merge."""

    pending: bool = False
