"""ReIDBatchPlugin hands mbatch[3] to the model around every forward and clears it afterwards."""
from types import SimpleNamespace

import pytest
import torch

from ckda_avalanche.plugins import ReIDBatchPlugin


def test_sets_and_clears_modality_for_train_and_eval():
    model = SimpleNamespace(batch_modality=None)
    modality = torch.tensor([0, 1, 1])
    strategy = SimpleNamespace(model=model, mbatch=[torch.zeros(3, 3, 8, 8), torch.arange(3), torch.zeros(3),
                                                    modality, torch.zeros(3)])
    plugin = ReIDBatchPlugin()
    plugin.before_forward(strategy)
    assert model.batch_modality is modality
    plugin.after_forward(strategy)
    assert model.batch_modality is None
    plugin.before_eval_forward(strategy)
    assert model.batch_modality is modality
    plugin.after_eval_forward(strategy)
    assert model.batch_modality is None


def test_short_minibatch_is_rejected():
    strategy = SimpleNamespace(model=SimpleNamespace(batch_modality=None), mbatch=[torch.zeros(1), torch.zeros(1)])
    with pytest.raises(ValueError, match="modality"):
        ReIDBatchPlugin().before_forward(strategy)
