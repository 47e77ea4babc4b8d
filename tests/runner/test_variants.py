"""Method variants (``ckda[no_cka+no_merge]``): parsing, canonical names, validation errors, shorthands, `ckda ablate`
options and plot colours. No training here (see test_reevaluate.py for a variant run end to end)."""
from __future__ import annotations

import pytest

from ckda_avalanche.runner.overrides import ConfigError
from ckda_avalanche.runner.variants import (
    ABLATION_METHODS,
    QUIRK_METHODS,
    base_method,
    parse_method_list,
    resolve_method,
    resolve_methods,
    split_method,
)
from ckda_avalanche.strategies import (
    CKDAConfig, EWCConfig, FineTune, FineTuneConfig, JointConfig, LwFConfig,
)

# Spec section 8 (docs/method.md), written out by hand: each ablation and what it must change in CKDAConfig.
SPEC_ABLATIONS = {
    "no_msp": lambda c: c.model_overrides()["use_msp"] is False,
    "no_mcp": lambda c: c.model_overrides()["use_mcp"] is False,
    "no_mcp_instance_norm": lambda c: c.model_overrides()["mcp_instance_norm"] is False,
    "no_mcp_gates": lambda c: c.model_overrides()["mcp_gates"] is False,
    "no_modality_embedding": lambda c: c.model_overrides()["use_modality_embedding"] is False,
    "no_prompt_consistency": lambda c: c.effective_alpha == 0.0,  # alpha = 0
    "inter_only": lambda c: c.effective_intra_weight == 0.0 and c.effective_inter_weight == 0.5,
    "intra_only": lambda c: c.effective_inter_weight == 0.0 and c.effective_intra_weight == 0.5,
    "no_cka": lambda c: c.effective_intra_weight == 0.0 and c.effective_inter_weight == 0.0,  # beta = 0
    "no_merge": lambda c: c.effective_merge_lambda == 0.0,
    "no_centre": lambda c: c.loss_config().w_new == 0.0,  # w_new = 0
    "finetune": lambda c: (c.effective_alpha, c.effective_intra_weight, c.effective_inter_weight,
                           c.effective_merge_lambda) == (0.0, 0.0, 0.0, 0.0),
}


def test_split_and_base_method():
    assert split_method("ckda") == ("ckda", ())
    assert split_method(" ckda[no_cka + no_merge] ") == ("ckda", ("no_cka", "no_merge"))
    assert split_method("ewc[ewc_lambda=1e-3+mode=online]") == ("ewc", ("ewc_lambda=1e-3", "mode=online"))
    assert base_method("ckda[quirks]") == "ckda"


@pytest.mark.parametrize("name, expected", [
    ("ckda[no_merge+no_cka]", "ckda[no_cka+no_merge]"),  # items sorted
    ("ckda[no_msp=true]", "ckda[no_msp]"),  # flag=true is the bare flag
    ("ckda[no_msp=false+alpha=0.50]", "ckda[alpha=0.5+no_msp=false]"),
    ("ewc[ewc_lambda=100]", "ewc[ewc_lambda=100]"),  # float field, integral value: no trailing .0
    ("ewc[ewc_lambda=1e-3]", "ewc[ewc_lambda=0.001]"),
    ("lwf[mode=logits]", "lwf[mode=logits]"),
    ("ckda[quirks]", "ckda[quirks]"),
    ("finetune", "finetune"),
])
def test_canonical_names(name, expected):
    assert resolve_method(name).name == expected
    assert resolve_method(expected).name == expected  # canonical names are fixed points


def test_variant_configs_are_the_fields_asked_for():
    assert resolve_method("ckda[no_cka+no_merge]").config == CKDAConfig(no_cka=True, no_merge=True)
    assert resolve_method("ewc[ewc_lambda=100+mode=online]").config == EWCConfig(ewc_lambda=100.0, mode="online")
    assert resolve_method("lwf[alpha=2+mode=logits]").config == LwFConfig(alpha=2.0, mode="logits")
    quirks = resolve_method("ckda[quirks]").config
    assert quirks == CKDAConfig(quirk_regdb_thermal_from_visible=True, quirk_llcm_flip_test_modality=True,
                                quirk_llcm_max_train_label_500=True)
    assert quirks.stream_overrides() == {"llcm_flip_test_modality": True,
                                         "reader_options": {"llcm": {"max_train_label": 500}}}
    assert resolve_method("ckda[quirk_b]").config == CKDAConfig(quirk_llcm_flip_test_modality=True)
    assert resolve_method("finetune").config == FineTuneConfig()
    assert resolve_method("finetune[pixel_prompts]").config == FineTuneConfig(pixel_prompts=True)
    assert resolve_method("joint[pixel_prompts=true]").name == "joint[pixel_prompts]"
    assert resolve_method("joint[reinitialise]").config == JointConfig(reinitialise=True)
    # --config method_overrides of the base apply first, the variant on top
    method = resolve_method("ckda[no_merge+beta=0.5]", {"beta": 2.0, "alpha": 0.25})
    assert method.config == CKDAConfig(alpha=0.25, beta=0.5, no_merge=True)
    assert method.overrides == {"no_merge": True, "beta": 0.5}


def test_every_spec_ablation_is_one_variant_of_the_ablate_set():
    assert ABLATION_METHODS[0] == "ckda"
    assert sorted(ABLATION_METHODS[1:]) == sorted(f"ckda[{flag}]" for flag in SPEC_ABLATIONS)
    paper = CKDAConfig()
    for flag, holds in SPEC_ABLATIONS.items():
        config = resolve_method(f"ckda[{flag}]").config
        assert holds(config) and not holds(paper), flag
    assert QUIRK_METHODS == ("ckda", "ckda[quirk_a]", "ckda[quirk_b]", "ckda[quirk_c]", "ckda[quirks]")


@pytest.mark.parametrize("name, words", [
    ("ckda[no_mspp]", ["ckda[no_mspp]", "no_mspp", "CKDAConfig", "no_msp"]),
    ("ewc[lambda=100]", ["ewc[lambda=100]", "EWCConfig", "'lambda'", "ewc_lambda"]),
    ("ckda[alpha]", ["ckda[alpha]", "CKDAConfig.alpha", "not a boolean flag"]),
    ("ckda[alpha=x]", ["ckda[alpha=x]", "CKDAConfig.alpha", "expected a number"]),
    ("ckda[no_msp=1]", ["CKDAConfig.no_msp", "true/false"]),
    ("lwf[mode=foo]", ["lwf[mode=foo]", "LwFConfig.mode", "affinity"]),
    ("ckda[mu=2]", ["ckda[mu=2]", "mu"]),  # the dataclass's own range check
    ("ckda[inter_only+intra_only]", ["ckda[inter_only+intra_only]", "exclude"]),
    ("ckda[quirks+quirk_a]", ["CKDAConfig.quirk_regdb_thermal_from_visible", "twice"]),
    ("ckda[no_msp+no_msp]", ["CKDAConfig.no_msp", "twice"]),
    ("ewc[exclude=head]", ["EWCConfig.exclude", "--config"]),
    ("finetune[lr=1]", ["finetune[lr=1]", "FineTuneConfig has no field 'lr'", "pixel_prompts"]),
    ("nope[x]", ["unknown method 'nope'"]),
    ("ckda[no_cka,no_merge]", ["'+'"]),
    ("ckda[]", ["empty item"]),
    ("ckda[no_cka+]", ["empty item"]),
    ("ckda[x=1e+3]", ["1e3"]),
    ("ckda[no_msp", ["NAME[ITEM+ITEM...]"]),
    ("CKDA", ["NAME[ITEM+ITEM...]"]),
    ("ckda[a=b/c]", ["'a=b/c'"]),
])
def test_bad_variants_name_the_method_and_field(name, words):
    with pytest.raises(ConfigError) as info:
        resolve_method(name)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_a_registered_method_without_config_has_no_variants(monkeypatch):
    from ckda_avalanche.strategies import registry

    # a user's strategy registered without a config
    monkeypatch.setitem(registry._REGISTRY, "plainloop", registry.MethodSpec("plainloop", FineTune, None))
    assert resolve_method("plainloop").config is None
    with pytest.raises(ConfigError, match=r"'plainloop' has no config dataclass, so it has no variants"):
        resolve_method("plainloop[pixel_prompts]")


def test_method_lists_shorthands_and_duplicates():
    assert parse_method_list("ckda, ckda[no_cka+no_merge],ewc[ewc_lambda=100]") == [
        "ckda", "ckda[no_cka+no_merge]", "ewc[ewc_lambda=100]"]
    assert parse_method_list("ablations") == list(ABLATION_METHODS)
    both = parse_method_list("ablations,quirks")  # ckda is in both shorthands: it runs once
    assert both == list(ABLATION_METHODS) + list(QUIRK_METHODS[1:])
    assert parse_method_list("all")[:2] == ["ckda", "finetune"]
    with pytest.raises(ConfigError, match="twice"):
        parse_method_list("ckda,lwf,ckda")
    with pytest.raises(ConfigError, match="'\\+'"):
        parse_method_list("ckda[no_cka,no_merge]")
    with pytest.raises(ConfigError, match="same configuration"):
        resolve_methods(["ckda[no_merge+no_cka]", "ckda[no_cka+no_merge]"])
    with pytest.raises(ConfigError, match="same configuration"):
        resolve_methods(["ckda", "ckda[alpha=1]"])  # alpha=1 is the default
    names = [m.name for m in resolve_methods(["ckda", "ckda[no_merge+no_cka]"], {"ckda": {"beta": 0.5}})]
    assert names == ["ckda", "ckda[no_cka+no_merge]"]


def test_run_and_ablate_options(monkeypatch, capsys):
    from ckda_avalanche import cli

    parser = cli.build_parser()
    ablate = parser.parse_args(["ablate", "--out", "x", "--seeds", "0", "1", "--preset", "test",
                                "--keep-session-checkpoints"])
    assert ablate.methods == list(ABLATION_METHODS) and ablate.seeds == [0, 1] and ablate.keep_session_checkpoints
    run = parser.parse_args(["run", "--out", "x"])  # ablate's own --methods default did not leak into run
    assert run.methods[:2] == ["ckda", "finetune"] and len(run.methods) == 9 and not run.keep_session_checkpoints
    seen = {}
    monkeypatch.setattr(cli, "cmd_run", lambda args: seen.setdefault("methods", list(args.methods)) and 0)
    cli.cmd_ablate(parser.parse_args(["ablate", "--out", "x", "--quirks"]))
    assert seen["methods"] == list(ABLATION_METHODS) + list(QUIRK_METHODS[1:])
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--out", "x", "--methods", "ckda[no_cka,no_merge]"])
    assert "'+'" in capsys.readouterr().err


def test_bad_variant_is_a_one_line_cli_error_before_any_work(tmp_path, capsys):
    from ckda_avalanche.cli import main

    code = main(["run", "--preset", "test", "--methods", "ckda,ckda[no_mspp]", "--data", str(tmp_path),
                 "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "ckda[no_mspp]" in err and "no_mspp" in err
    assert not (tmp_path / "out").exists()


def test_shipped_variant_colours_are_distinct():
    from ckda_avalanche.reporting.plots import method_color
    from ckda_avalanche.strategies import registered_methods

    shipped = list(dict.fromkeys([*registered_methods(), *ABLATION_METHODS, *QUIRK_METHODS]))
    assert len({method_color(m) for m in shipped}) == len(shipped)
    other = "ewc[ewc_lambda=100]"  # not shipped: a stable hash colour (zlib.crc32, not Python's salted hash)
    assert method_color(other) == method_color(other) != method_color("ewc")
