"""Float32 loss maths whatever autocast does around it.

`torch.autocast` rewrites matmuls to bf16/fp16 *inside* every function called in its region, and ``.float()`` on
the inputs does not stop it: ``a.float() @ b.float().t()`` still runs in bf16. For the losses of this package that
is not a rounding detail: CKDA's CKA term at the published s = 0.1 is a KL of about 1e-7, below bf16's resolution,
and batch-hard triplets pick their hardest pairs from distances that bf16 quantises.

`float32_loss` is therefore applied once, to every public loss function (and `ReIDCriterion.__call__`): it leaves
any autocast region for the duration of the call and promotes half-precision floating tensors in the arguments
(nested in tuples, lists, dicts and named tuples such as `ReIDOutput`) to float32. Gradients flow back through the
promotion to the reduced-precision model outputs. Mixed precision thus stays a property of the model forward only,
and users who call these losses from their own mixed-precision loops get float32 maths too.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch.utils import _pytree as pytree

__all__ = ["float32_loss", "autocast_disabled", "to_float32"]

F = TypeVar("F", bound=Callable[..., Any])

_AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps")
"""Device types whose autocast state is checked (and switched off) around a loss call."""


def autocast_disabled() -> contextlib.ExitStack:
    """A context that switches off every autocast region active on entry (a no-op when none is)."""
    stack = contextlib.ExitStack()
    for device_type in _AUTOCAST_DEVICES:
        try:
            enabled = torch.is_autocast_enabled(device_type)
        except (RuntimeError, TypeError):  # a device type this torch build does not know
            continue
        if enabled:
            stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
    return stack


def to_float32(value: Any) -> Any:
    """``value`` with every float16/bfloat16 tensor in it promoted to float32 (other leaves unchanged)."""

    def promote(leaf: Any) -> Any:
        if isinstance(leaf, torch.Tensor) and leaf.dtype in (torch.float16, torch.bfloat16):
            return leaf.float()
        return leaf

    return pytree.tree_map(promote, value)


def float32_loss(fn: F) -> F:
    """Decorator: run ``fn`` outside autocast with half-precision tensor arguments promoted to float32."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with autocast_disabled():
            return fn(*to_float32(args), **to_float32(kwargs))

    wrapper.float32_loss = True  # type: ignore[attr-defined]  # marker checked by the tests
    return wrapper  # type: ignore[return-value]
