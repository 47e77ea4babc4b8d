"""`MethodStrategy`: a `ReIDTemplate` configured by one method dataclass (``method=``) whose plugins it builds.

Every lifelong method of this package (CKDA, Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016, and the baselines it is
compared with) is `ReIDTemplate` plus a few plugins made from a method config. This class holds the constructor they
share; a method only says what its config is (`default_method`) and overrides the hooks it needs:
`prepare_model` (check / wrap the model), `make_method_plugins` (its plugins, placed before user plugins) and
`make_criterion` (a criterion other than the default `ReIDCriterion`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.optim import Optimizer

from ckda_avalanche.models.backbone_choice import check_model_overrides
from ckda_avalanche.strategies.base import ReIDTemplate, silent_evaluator
from ckda_avalanche.strategies.config import TrainConfig

__all__ = ["MethodConfigT", "MethodStrategy"]

MethodConfigT = TypeVar("MethodConfigT")
"""The method's config dataclass (e.g. `EWCConfig`)."""


def _with_article(name: str) -> str:
    """``"an EWCConfig"``, ``"a ReplayConfig"``, ``"an LSTKCConfig"``: acronyms are read letter by letter."""
    acronym = len(name) > 1 and name[:2].isupper()
    vowel_sound = name[0] in ("AEFHILMNORSX" if acronym else "AEIOU")
    return f"{'an' if vowel_sound else 'a'} {name}"


class MethodStrategy(ReIDTemplate, Generic[MethodConfigT]):
    """`ReIDTemplate` + the plugins of one method, built from ``method`` (an instance of ``type(default_method)``)."""

    default_method: ClassVar[Any]
    """The config used when ``method`` is not given; its class is the type ``method`` must have."""

    def __init__(
        self,
        *,
        model: nn.Module,
        method: MethodConfigT | None = None,
        config: TrainConfig = TrainConfig(),
        optimizer: Optimizer | None = None,
        train_epochs: int | None = None,
        eval_mb_size: int = 64,
        device: str | torch.device = "auto",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] | None = silent_evaluator,
        eval_every: int = -1,
    ) -> None:
        """``method=None`` uses `default_method`; the other keywords are `ReIDTemplate`'s. The method's plugins come
        before ``plugins``; those that follow the model (``bind_template``) are bound to it once it is placed."""
        if method is None:
            method = self.default_method
        expected = type(self.default_method)
        if not isinstance(method, expected):
            raise TypeError(f"method: expected {_with_article(expected.__name__)}, got {type(method).__name__}")
        self.method: MethodConfigT = method
        model = self.prepare_model(model, method)
        own = self.make_method_plugins(method)
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=self.make_criterion(method),
            config=config,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=[*own, *(plugins or [])],
            evaluator=evaluator,
            eval_every=eval_every,
        )
        for plugin in own:
            if callable(getattr(plugin, "bind_template", None)):
                plugin.bind_template(self.model)

    def prepare_model(self, model: nn.Module, method: MethodConfigT) -> nn.Module:
        """Check (and possibly wrap) the model before the template takes it; default: the model as given, after
        checking it was built with ``method.model_overrides()`` when the config has one (`BackboneChoice`)."""
        get = getattr(method, "model_overrides", None)
        if callable(get):
            check_model_overrides(model, get(), owner=type(self).__name__)
        return model

    def make_method_plugins(self, method: MethodConfigT) -> list[BasePlugin]:
        """The method's plugins, in the order they must run (they come before user plugins)."""
        raise NotImplementedError(f"{type(self).__name__}.make_method_plugins")

    def make_criterion(self, method: MethodConfigT) -> Callable[..., torch.Tensor] | None:
        """The training criterion; default None (`ReIDTemplate` then uses `ReIDCriterion` with default weights)."""
        return None
