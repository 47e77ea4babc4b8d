"""Shared test settings: small thread count so parallel CI stays predictable on 2 cores."""
import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# No on-disk decoded-image store (benchmarks/decoded_store.py) unless a test sets one: a store left by an earlier
# test or run would change how often images are decoded, which several tests count.
os.environ["CKDA_DECODED_CACHE"] = "off"


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): on the shared
    2-core machine, 2 threads under load ran the model tests ~7x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _load_benchmark_script(name: str):
    """``benchmarks/<name>.py`` imported as a module (the scripts are not part of the package)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def benchmark_script():
    """Loader of a script under ``benchmarks/``: ``benchmark_script("seed_spread")`` -> the module."""
    return _load_benchmark_script
