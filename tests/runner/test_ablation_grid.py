"""The committed ablation grid (benchmarks/ablation_grid.txt) is a valid ``--methods`` list of distinct CKDA
variants covering every ablation of docs/method.md §8 and the alternative readings of CKA."""
from __future__ import annotations

from pathlib import Path

from ckda_avalanche.runner.variants import (
    ABLATION_METHODS,
    READING_METHODS,
    parse_method_list,
    resolve_methods,
)

GRID = Path(__file__).resolve().parents[2] / "benchmarks" / "ablation_grid.txt"


def _names() -> list[str]:
    lines = [line.strip() for line in GRID.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_grid_resolves_and_covers_the_spec():
    names = parse_method_list(",".join(_names()))
    resolved = resolve_methods(names)  # distinct configurations, every field valid
    assert len(resolved) == len(names) >= 16  # ckda + at least 15 variants
    assert all(name.startswith("ckda") for name in names)
    assert set(ABLATION_METHODS) <= set(names)
    assert set(READING_METHODS) <= set(names)
    assert {"ckda[quirk_a]", "ckda[quirk_b]", "ckda[legacy_init]"} <= set(names)


def test_readings_shorthand_names_the_alternative_readings():
    configs = {r.name: r.config for r in resolve_methods(parse_method_list("readings"))}
    assert configs["ckda"].effective_affinity_scale == 0.1 and not configs["ckda"].normalized_student
    assert configs["ckda[sharp_affinity]"].effective_affinity_scale == 10.0
    assert configs["ckda[affinity_scale=100]"].effective_affinity_scale == 100.0
    assert configs["ckda[normalized_student]"].normalized_student
