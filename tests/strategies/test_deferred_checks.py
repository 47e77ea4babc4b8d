"""On CUDA the finite-loss test stays on the device and is read every FINITE_CHECK_EVERY iterations and at the end of
each epoch (no host synchronisation per step); on the CPU every step is checked as before. The CUDA path is run
here with CPU tensors and a device that says "cuda" (the logic does not depend on where the tensors live)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ckda_avalanche.strategies.base import ReIDTemplate


def _stub(device: str, every: int = 4) -> SimpleNamespace:
    stub = SimpleNamespace(device=torch.device(device), loss=None, _nonfinite=None, _nonfinite_since=(0, 0),
                           FINITE_CHECK_EVERY=every, session_index=1, train_epochs=3,
                           clock=SimpleNamespace(train_exp_epochs=0, train_epoch_iterations=0))
    stub.session_info = lambda: SimpleNamespace(dataset="sysu")
    stub._flush_finite_check = lambda: ReIDTemplate._flush_finite_check(stub)
    return stub


def _step(stub: SimpleNamespace, value: float) -> None:
    stub.loss = torch.tensor(value)
    ReIDTemplate._check_finite_loss(stub)
    stub.clock.train_epoch_iterations += 1


def test_cuda_path_reads_the_flag_every_n_iterations():
    stub = _stub("cuda", every=4)
    _step(stub, 1.0)
    _step(stub, float("nan"))  # iteration 2: not read yet
    _step(stub, 1.0)
    with pytest.raises(FloatingPointError, match=r"session 2 \(sysu\), epoch 1/3, iterations 1-4"):
        _step(stub, 1.0)  # the 4th iteration reads it


def test_cuda_path_reads_the_flag_at_the_end_of_the_epoch():
    stub = _stub("cuda", every=50)
    for value in (1.0, 2.0, float("inf")):
        _step(stub, value)
    with pytest.raises(FloatingPointError, match="non-finite training loss in session 2"):
        ReIDTemplate._flush_finite_check(stub)
    stub = _stub("cuda", every=50)
    for value in (1.0, 2.0):
        _step(stub, value)
    ReIDTemplate._flush_finite_check(stub)  # finite: nothing raised, flag cleared
    assert stub._nonfinite is None


def test_cpu_path_checks_every_step():
    stub = _stub("cpu", every=50)
    _step(stub, 1.0)
    with pytest.raises(FloatingPointError, match=r"non-finite training loss \(nan\) in session 2 \(sysu\), epoch "
                                                 r"1/3, iteration 2"):
        _step(stub, float("nan"))
