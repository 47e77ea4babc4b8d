"""ReIDCriterion on the hand-checked batch of test_centre.py plus all-zero logits over two classes."""
import math

import pytest
import torch

from ckda_avalanche.losses import ReIDCriterion, ReIDLossConfig
from ckda_avalanche.models.output import ReIDOutput

FEATS = torch.tensor([[0.0], [2.0], [3.0], [4.0], [5.0], [7.0]])
LABELS = torch.tensor([0, 0, 1, 0, 1, 1])
MODALITY = torch.tensor([0, 0, 0, 1, 1, 1])
# Batch-hard triplet over all six (margin 0.1): anchors 0,2,5,7 -> 1.1 each; anchors 3,4 -> 3.1 each; mean 10.6/6.
TRIPLET = 10.6 / 6
CENTRE = 1.0875  # see tests/losses/test_centre.py
IDENTITY = 2 * math.log(2)  # zero logits over 2 classes: CE = log 2, once per modality


def _output(logits=None):
    logits = torch.zeros(6, 2, requires_grad=True) if logits is None else logits
    return ReIDOutput(logits=logits, feat=FEATS.clone().requires_grad_(), bn_feat=FEATS, prompt=None, modality=MODALITY)


def test_total_is_identity_plus_triplet_plus_centre():
    crit = ReIDCriterion()
    loss = crit(_output(), LABELS)
    assert loss.item() == pytest.approx(IDENTITY + TRIPLET + CENTRE, abs=1e-4)
    assert crit.last_terms.identity.item() == pytest.approx(IDENTITY, abs=1e-5)
    assert crit.last_terms.triplet.item() == pytest.approx(TRIPLET, abs=1e-5)


def test_identity_loss_is_per_modality_sum_not_mean():
    # visible samples confidently right, infrared confidently wrong: CE_v ~ 0, CE_i ~ 20
    logits = torch.tensor([[10.0, -10.0], [10.0, -10.0], [-10.0, 10.0], [-10.0, 10.0], [10.0, -10.0], [10.0, -10.0]])
    crit = ReIDCriterion(config=ReIDLossConfig(triplet_weight=0.0, w_new=0.0))
    # infrared samples 3, 4, 5 (labels 0, 1, 1) are all wrong by a logit gap of 20: CE_i = 20 + log(1 + e^-20);
    # a mean over all six samples would give 10 instead.
    ce_v = math.log1p(math.exp(-20))
    ce_i = 20 + math.log1p(math.exp(-20))
    assert crit(_output(logits), LABELS).item() == pytest.approx(ce_v + ce_i, rel=1e-5)


def test_w_new_zero_removes_exactly_the_centre_term():
    full = ReIDCriterion()(_output(), LABELS).item()
    no_centre = ReIDCriterion(config=ReIDLossConfig(w_new=0.0))(_output(), LABELS).item()
    assert full - no_centre == pytest.approx(CENTRE, abs=1e-4)


def test_eval_output_gives_grad_free_zero():
    loss = ReIDCriterion()(torch.randn(4, 8), torch.tensor([100, 200, 300, 400]))
    assert loss.item() == 0.0 and not loss.requires_grad


def test_bad_targets_and_config_are_reported():
    with pytest.raises(ValueError, match="label_offset"):
        ReIDCriterion()(_output(), LABELS + 5)
    with pytest.raises(ValueError, match="ReIDLossConfig.c"):
        ReIDLossConfig(c=1.5)
    with pytest.raises(TypeError, match="ReIDOutput"):
        ReIDCriterion()((FEATS, FEATS), LABELS)
