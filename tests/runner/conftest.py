"""Shared fixtures for the runner and CLI tests: one tiny synthetic root and a two-session config file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckda_avalanche.benchmarks.synthetic import generate_synthetic

TINY_SCALE = 0.15


@pytest.fixture(scope="session")
def tiny_synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic(root, seed=0, scale=TINY_SCALE)
    return root


@pytest.fixture()
def two_session_config(tmp_path: Path) -> Path:
    path = tmp_path / "two_sessions.json"
    path.write_text(json.dumps({"datasets": ["regdb", "sysu"], "synthetic_scale": TINY_SCALE}))
    return path
