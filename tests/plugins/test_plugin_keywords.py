"""The baselines' plugins take typed keyword-only hyperparameters (as Avalanche's own ``LwFPlugin(alpha=...,
temperature=...)``), check them, and get them from their method's config (which lives next to its strategy)."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from ckda_avalanche.plugins.dkp import DKPPlugin
from ckda_avalanche.plugins.ewc import ReIDEWCPlugin
from ckda_avalanche.plugins.l2p import L2PPlugin
from ckda_avalanche.plugins.lstkc import LSTKCPlugin
from ckda_avalanche.plugins.lwf import ReIDLwFPlugin
from ckda_avalanche.plugins.replay import ReIDReplayPlugin
from ckda_avalanche.strategies import DKP, EWC, L2P, LSTKC, Replay, LwF
from ckda_avalanche.strategies import DKPConfig, EWCConfig, L2PConfig, LSTKCConfig, LwFConfig, ReplayConfig

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "ckda_avalanche" / "plugins"

# Per method: (strategy, config, attribute the strategy keeps its plugin in, plugin class, a setting of every plugin
# keyword away from its default, written by hand).
CASES = [
    (LwF, LwFConfig, "lwf", ReIDLwFPlugin,
     dict(alpha=0.25, mode="logits", affinity_temperature=0.5, logit_temperature=3.0, feature="bn_feat")),
    (EWC, EWCConfig, "ewc", ReIDEWCPlugin,
     dict(ewc_lambda=5.0, mode="online", decay_factor=0.5, fisher_max_batches=3, exclude=("head", "backbone.norm"))),
    (DKP, DKPConfig, "dkp", DKPPlugin,
     dict(af_weight=0.3, lambda_1=0.2, lambda_2=0.4, per_modality=True, accumulate_sessions=True,
          feature="retrieval")),
    (L2P, L2PConfig, "l2p", L2PPlugin, dict(pull_weight=0.7, trainable="last_block")),
    (LSTKC, LSTKCConfig, "lstkc", LSTKCPlugin,
     dict(af_weight=0.5, affinity_temperature=0.2, fusion=False, fusion_temperature=0.05, fusion_max_images=10,
          feature="bn_feat")),
    (Replay, ReplayConfig, "replay", ReIDReplayPlugin, dict(memory_size=40, images_per_identity=2, seed=3)),
]


@pytest.mark.parametrize("strategy, config_cls, attribute, plugin_cls, values", CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_the_strategy_hands_every_setting_to_its_plugin(strategy, config_cls, attribute, plugin_cls, values):
    keywords = inspect.signature(plugin_cls).parameters
    assert set(keywords) == set(values)  # the hand-written setting covers every keyword
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in keywords.values())
    defaults = config_cls()
    assert all(getattr(defaults, k) != v for k, v in values.items())  # each value is away from its default
    bare = object.__new__(strategy)  # make_method_plugins needs no model
    plugins = strategy.make_method_plugins(bare, config_cls(**values))
    plugin = getattr(bare, attribute)
    assert plugin in plugins and isinstance(plugin, plugin_cls)
    assert {k: getattr(plugin, k) for k in values} == values


@pytest.mark.parametrize("plugin_cls, config_cls", [(c[3], c[1]) for c in CASES], ids=[c[3].__name__ for c in CASES])
def test_plugin_defaults_are_the_config_defaults(plugin_cls, config_cls):
    plugin, config = plugin_cls(), config_cls()
    for name in inspect.signature(plugin_cls).parameters:
        assert getattr(plugin, name) == getattr(config, name), name


def test_keywords_only():
    with pytest.raises(TypeError):
        ReIDLwFPlugin(1.0)  # type: ignore[misc]


@pytest.mark.parametrize("make, words", [
    (lambda: ReIDLwFPlugin(mode="kl"), ["ReIDLwFPlugin.mode", "'kl'"]),
    (lambda: ReIDLwFPlugin(alpha=-1.0), ["ReIDLwFPlugin.alpha", ">= 0"]),
    (lambda: ReIDLwFPlugin(logit_temperature=0.0), ["ReIDLwFPlugin", "temperatures"]),
    (lambda: ReIDEWCPlugin(mode="both"), ["ReIDEWCPlugin.mode", "'both'"]),
    (lambda: ReIDEWCPlugin(ewc_lambda=-1.0), ["ReIDEWCPlugin", "ewc_lambda"]),
    (lambda: ReIDEWCPlugin(exclude="head"), ["ReIDEWCPlugin.exclude", "'head'"]),
    (lambda: DKPPlugin(feature="bn_feat"), ["DKPPlugin.feature", "'bn_feat'"]),
    (lambda: DKPPlugin(lambda_2=0.0), ["DKPPlugin", "lambda_2"]),
    (lambda: L2PPlugin(trainable="none"), ["L2PPlugin.trainable", "'none'"]),
    (lambda: L2PPlugin(pull_weight=-0.1), ["L2PPlugin.pull_weight"]),
    (lambda: LSTKCPlugin(fusion_temperature=0.0), ["LSTKCPlugin", "temperatures"]),
    (lambda: LSTKCPlugin(feature="x"), ["LSTKCPlugin.feature", "'x'"]),
    (lambda: ReIDReplayPlugin(images_per_identity=1), ["ReIDReplayPlugin.images_per_identity", ">= 2"]),
    (lambda: ReIDReplayPlugin(memory_size=3, images_per_identity=4), ["ReIDReplayPlugin.memory_size"]),
])
def test_bad_settings_name_the_plugin_and_keyword(make, words):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize("make, words", [
    (lambda: LwFConfig(mode="kl"), ["LwFConfig.mode", "'kl'"]),
    (lambda: EWCConfig(decay_factor=-1.0), ["EWCConfig", "decay_factor"]),
    (lambda: DKPConfig(fusion_old_weight=1.0), ["DKPConfig.fusion_old_weight"]),
    (lambda: L2PConfig(trainable="none"), ["L2PConfig.trainable"]),
    (lambda: LSTKCConfig(af_weight=-1.0), ["LSTKCConfig", "af_weight"]),
    (lambda: ReplayConfig(memory_identities_per_batch=0), ["ReplayConfig.memory_identities_per_batch"]),
])
def test_bad_configs_name_the_config_and_field(make, words):
    with pytest.raises(ValueError) as info:
        make()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_plugins_never_import_strategies():
    """strategies/ builds on plugins/, so no plugin module may import from strategies/ (not even inside a function)."""
    offenders = []
    for path in sorted(PLUGINS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("ckda_avalanche.strategies")]
    assert offenders == []


def test_choice_errors_read_as_written():
    with pytest.raises(ValueError) as info:
        L2PPlugin(trainable="none")
    assert str(info.value) == "L2PPlugin.trainable: expected 'head', 'last_block' or 'all', got 'none'"
    with pytest.raises(ValueError) as info:
        LwFConfig(feature="g")
    assert str(info.value) == "LwFConfig.feature: expected 'feat' or 'bn_feat', got 'g'"
