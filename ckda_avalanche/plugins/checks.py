"""Checks of a strategy's plugin list and model that run before any training, each failing with the real reason.

Without them these set-ups train for a whole session (hours at paper scale) and then fail, or train silently wrong:

- **plugin order** (CKDA, Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016: the teacher and the prototypes of a session
  come from the MERGED model): every `WeightMergePlugin` before every `TeacherPlugin`, and each plugin that uses a
  teacher (`PromptConsistencyPlugin`, `CKAPlugin`) after it, with the teacher in the list. Before, a wrong order
  failed at the end of session 1;
- **Avalanche plugins that cannot drive a ReID model** (`AVALANCHE_INCOMPATIBLE`): they call the model themselves,
  outside the strategy's forward, as ``model(x)``, so the model gets no modality (`ReIDBatchPlugin` sets it only
  around the strategy's own forward), or they read ``strategy.mb_output`` as a logits tensor (a ReID model returns
  a `ReIDOutput` in training). ``avalanche.training.LwF`` / ``EWC`` add such plugins; before, they failed after the
  first session with a hint pointing at `ReIDBatchPlugin`;
- **no identity classifier** under a plain Avalanche strategy (`Naive` keeps the model's classifier as built): a
  model created without ``num_classes`` trained silently without the identity loss.

`ReIDTemplate` runs `check_plugin_list` at construction; `ReIDBatchPlugin` (needed by every plain Avalanche
strategy driving our model) runs `check_plain_strategy` in ``before_training``, the first hook a plugin gets, and
`TeacherPlugin` checks the order there too (plugins appended after construction).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ckda_avalanche.plugins.roles import TeacherRole, WeightMergeRole

__all__ = ["AVALANCHE_INCOMPATIBLE", "check_identity_head", "check_plain_strategy", "check_plugin_list",
           "check_plugin_order", "incompatible_plugins"]

_OUTSIDE = ("outside the strategy's forward, where the model gets no modality (ReIDBatchPlugin sets it only around "
            "the strategy's own forward)")
_LOGITS = "treats strategy.mb_output as a logits tensor, but a ReID model returns a ReIDOutput in training"

AVALANCHE_INCOMPATIBLE: dict[str, tuple[str, str]] = {
    "LwFPlugin": (f"it runs the previous model as model(x) {_OUTSIDE}, and {_LOGITS}",
                  "use ckda_avalanche.strategies.LwF or plugins.ReIDLwFPlugin"),
    "EWCPlugin": (f"its importance pass runs model(x) {_OUTSIDE}, and in eval mode, where the ReID criterion has no "
                  "graph", "use ckda_avalanche.strategies.EWC or plugins.ReIDEWCPlugin"),
    "MASPlugin": (f"its importance pass runs model(x) {_OUTSIDE}", "use ckda_avalanche.strategies.EWC"),
    "RWalkPlugin": (f"its importance pass runs model(x) {_OUTSIDE}", "use ckda_avalanche.strategies.EWC"),
    "AGEMPlugin": (f"its memory-gradient pass runs model(x) {_OUTSIDE}", "use ckda_avalanche.strategies.Replay"),
    "GEMPlugin": (f"its memory-gradient pass runs model(x) {_OUTSIDE}", "use ckda_avalanche.strategies.Replay"),
    "MIRPlugin": (f"its retrieval pass runs model(x) {_OUTSIDE}", "use ckda_avalanche.strategies.Replay"),
    "FeatureDistillationPlugin": (f"it runs the previous model as model(x) {_OUTSIDE}",
                                  "use ckda_avalanche.strategies.LwF or LSTKC"),
    "LFLPlugin": (f"it runs get_features(x) on both models {_OUTSIDE}", "use ckda_avalanche.strategies.LwF"),
    "BiCPlugin": (f"it {_LOGITS}", "use a ckda_avalanche strategy"),
    "CoPEPlugin": (f"it {_LOGITS}", "use a ckda_avalanche strategy"),
}
"""Avalanche 0.6 plugin class name -> (why it cannot drive a ckda ReID model, what to use instead). Read from
avalanche-lib 0.6.0's code; LwFPlugin and EWCPlugin were also run (`avalanche.training.LwF` / `EWC`)."""


def _avalanche_plugin_classes() -> dict[type, str]:
    import avalanche.training.plugins as avalanche_plugins

    return {getattr(avalanche_plugins, name): name for name in AVALANCHE_INCOMPATIBLE
            if hasattr(avalanche_plugins, name)}


def incompatible_plugins(plugins: Sequence[Any]) -> list[str]:
    """One message per plugin of ``plugins`` that is (a subclass of) an `AVALANCHE_INCOMPATIBLE` class."""
    classes = _avalanche_plugin_classes()
    found = []
    for position, plugin in enumerate(plugins):
        for cls, name in classes.items():
            if isinstance(plugin, cls):
                reason, instead = AVALANCHE_INCOMPATIBLE[name]
                found.append(f"plugins[{position}]: Avalanche's {type(plugin).__name__} cannot drive a ckda ReID "
                             f"model: {reason}; {instead}")
                break
    return found


def check_plugin_order(plugins: Sequence[Any]) -> None:
    """Raise ``ValueError`` unless merge -> teacher -> the teacher's users, with every used teacher in the list."""
    plugins = list(plugins)
    order = ("order them WeightMergePlugin, TeacherPlugin, then PromptConsistencyPlugin / CKAPlugin, since the "
             "teacher and the prototypes must come from the MERGED model")
    teachers = [i for i, p in enumerate(plugins) if isinstance(p, TeacherRole)]
    merges = [i for i, p in enumerate(plugins) if isinstance(p, WeightMergeRole)]
    if teachers and merges and min(teachers) < max(merges):
        raise ValueError(f"plugins: TeacherPlugin (plugins[{min(teachers)}]) comes before WeightMergePlugin "
                         f"(plugins[{max(merges)}]); {order}")
    for i, plugin in enumerate(plugins):
        teacher = getattr(plugin, "teacher", None)
        if isinstance(plugin, WeightMergeRole) or not isinstance(teacher, TeacherRole):
            continue
        where = next((j for j, p in enumerate(plugins) if p is teacher), None)
        name = type(plugin).__name__
        if where is None:
            raise ValueError(f"plugins: the TeacherPlugin of {name} (plugins[{i}]) is not among the strategy's "
                             f"plugins; add it; {order}")
        if where > i:
            raise ValueError(f"plugins: {name} (plugins[{i}]) comes before its TeacherPlugin (plugins[{where}]); "
                             f"{order}")


def check_plugin_list(plugins: Sequence[Any]) -> None:
    """`check_plugin_order` plus no `AVALANCHE_INCOMPATIBLE` plugin (``ValueError`` naming the first problem)."""
    check_plugin_order(plugins)
    problems = incompatible_plugins(plugins)
    if problems:
        raise ValueError(problems[0])


def check_identity_head(strategy: Any) -> None:
    """Raise ``ValueError`` when a plain Avalanche strategy would train a classifier-less model with `ReIDCriterion`
    (identity loss weight > 0): the identity loss would be missing. `ReIDTemplate` sizes the classifier itself."""
    from ckda_avalanche.losses.reid_criterion import ReIDCriterion

    if getattr(strategy, "sizes_classifier_per_session", False):  # `ReIDTemplate` and its methods
        return
    criterion = getattr(strategy, "_criterion", None)
    num_classes = getattr(strategy.model, "num_classes", None)
    if isinstance(criterion, ReIDCriterion) and criterion.config.id_weight > 0 and num_classes == 0:
        raise ValueError(
            f"{type(strategy).__name__}: the model has no identity classifier (created without num_classes) but "
            f"ReIDCriterion's identity loss has weight {criterion.config.id_weight}; a plain Avalanche strategy keeps "
            "the classifier the model was built with, so create it with create_model(..., num_classes=<identities "
            "of all sessions>), use a ckda_avalanche strategy (one classifier per session), or pass "
            "ReIDCriterion(config=ReIDLossConfig(id_weight=0)) to train without the identity loss")


def check_plain_strategy(strategy: Any) -> None:
    """All checks for a strategy driving a ckda model: `check_plugin_list` and `check_identity_head`."""
    check_plugin_list(strategy.plugins)
    check_identity_head(strategy)
