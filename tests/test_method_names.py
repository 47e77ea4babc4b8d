"""The method-name grammar shared by the runner and the reports: parse, canonical spelling, round trip, errors."""
from __future__ import annotations

import pytest

from ckda_avalanche.method_names import (
    MethodName,
    MethodNameError,
    format_method_name,
    is_base_name,
    parse_method_name,
)
from ckda_avalanche.reporting.ablation import split_variant
from ckda_avalanche.reporting.claims import variant_name
from ckda_avalanche.runner.overrides import ConfigError
from ckda_avalanche.runner.variants import split_method


@pytest.mark.parametrize("name, base, items", [
    ("ckda", "ckda", ()),
    ("ckda[no_msp]", "ckda", ("no_msp",)),
    ("ckda[no_merge+no_cka]", "ckda", ("no_merge", "no_cka")),  # the order written is kept
    ("  ckda[ no_cka +  no_merge ]  ", "ckda", ("no_cka", "no_merge")),  # spaces around name and items
    ("ckda[affinity_scale=100]", "ckda", ("affinity_scale=100",)),
    ("ewc[ewc_lambda=1e-3+mode=online]", "ewc", ("ewc_lambda=1e-3", "mode=online")),
    ("lwf2[_x=-0.5]", "lwf2", ("_x=-0.5",)),
])
def test_parse(name, base, items):
    assert parse_method_name(name) == MethodName(base, items)


@pytest.mark.parametrize("base, items, expected", [
    ("ckda", (), "ckda"),
    ("ckda", ("sharp_affinity", "no_msp"), "ckda[no_msp+sharp_affinity]"),
    ("ckda", ["no_merge", "no_cka"], "ckda[no_cka+no_merge]"),
    ("ckda", (" affinity_scale=100 ",), "ckda[affinity_scale=100]"),
])
def test_format_is_canonical(base, items, expected):
    assert format_method_name(base, items) == expected


@pytest.mark.parametrize("name, canonical", [
    ("ckda", "ckda"),
    ("ckda[no_msp+sharp_affinity]", "ckda[no_msp+sharp_affinity]"),
    ("ckda[sharp_affinity+no_msp]", "ckda[no_msp+sharp_affinity]"),
    (" ckda[ normalized_student + sharp_affinity ] ", "ckda[normalized_student+sharp_affinity]"),
    ("ewc[ewc_lambda=100]", "ewc[ewc_lambda=100]"),
])
def test_round_trip(name, canonical):
    assert str(parse_method_name(name)) == canonical
    assert str(parse_method_name(canonical)) == canonical  # canonical names are fixed points
    parsed = parse_method_name(canonical)
    assert format_method_name(parsed.base, parsed.items) == canonical


@pytest.mark.parametrize("name, words", [
    ("CKDA", ["'CKDA'", "NAME or NAME[ITEM+ITEM...]"]),
    ("ckda[no_msp", ["NAME or NAME[ITEM+ITEM...]"]),
    ("ckda]", ["NAME or NAME[ITEM+ITEM...]"]),
    ("[no_msp]", ["NAME or NAME[ITEM+ITEM...]"]),
    ("ckda[a[b]]", ["NAME or NAME[ITEM+ITEM...]"]),
    ("ckda[a]b", ["NAME or NAME[ITEM+ITEM...]"]),
    ("ckda[]", ["'ckda[]'", "empty item"]),
    ("ckda[no_cka+]", ["empty item"]),
    ("ckda[no_cka,no_merge]", ["'+'", "not ','"]),
    ("ckda[x=1e+3]", ["item '3'", "1e3"]),  # '+' splits items, so the exponent's '+' breaks the item
    ("ckda[a=b/c]", ["'a=b/c'", "FLAG or FIELD=VALUE"]),
    ("ckda[1x]", ["'1x'", "FLAG or FIELD=VALUE"]),
])
def test_bad_syntax_names_the_name_and_what_was_expected(name, words):
    with pytest.raises(MethodNameError) as info:
        parse_method_name(name)
    assert isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_format_refuses_what_parse_refuses():
    with pytest.raises(MethodNameError, match="base name 'CKDA'"):
        format_method_name("CKDA", ())
    with pytest.raises(MethodNameError, match="item 'a b'"):
        format_method_name("ckda", ("a b",))
    with pytest.raises(MethodNameError, match="empty item"):
        format_method_name("ckda", ("",))


def test_base_names():
    assert is_base_name("ckda") and is_base_name("my_method2")
    assert not any(is_base_name(n) for n in ("Ckda", "2ckda", "ckda[no_msp]", "ck-da", "", None))


def test_runner_and_reports_read_names_alike():
    """One grammar: the runner's split, the ablation table's split and the claims' names agree."""
    name = " ckda[ no_msp + sharp_affinity ] "
    assert split_method(name) == ("ckda", ("no_msp", "sharp_affinity"))
    assert split_variant(name) == ("ckda", "no_msp+sharp_affinity")
    assert variant_name("ckda", ("sharp_affinity", "no_msp")) == "ckda[no_msp+sharp_affinity]"
    for bad in ("ckda[no_cka,no_merge]", "ckda[]", "ckda[a=b/c]"):
        with pytest.raises(ConfigError, match="ckda"):
            split_method(bad)
        with pytest.raises(MethodNameError, match="ckda"):
            split_variant(bad)
