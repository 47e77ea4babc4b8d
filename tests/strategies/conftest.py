"""Fixtures shared by the strategy tests."""
import pytest

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic

TWO_SESSION_SIZE = (32, 16)
"""Image size of `two_session_stream`."""


@pytest.fixture(scope="session")
def two_session_stream(tmp_path_factory):
    """RegDB -> SYSU-MM01 on tiny synthetic data (seed 0, scale 0.05, 32x16), generated once per test session."""
    root = tmp_path_factory.mktemp("synthetic_two_sessions")
    generate_synthetic(root, seed=0, scale=0.05, img_size=TWO_SESSION_SIZE)
    return vi_lreid_benchmark(root, datasets=("regdb", "sysu"), img_size=TWO_SESSION_SIZE)
