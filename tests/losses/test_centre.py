"""Cross-modal centre terms on a hand-checked 1-D batch.

Visible: id0 at 0 and 2 (centre 1), id1 at 3 (centre 3). Infrared: id0 at 4 (centre 4), id1 at 5 and 7 (centre 6).
L_cent v->i: c_v0=1: d_ap=3, d_an=5 -> 0; c_v1=3: d_ap=3, d_an=1 -> 2.1; mean 1.05. i->v symmetric: 1.05.
L_cross vis samples vs ir centres: 0 -> 0; 2 -> 0; 3: d_ap=3, d_an=1 -> 2.1; mean 0.7.
        vis centres vs ir samples: c_v0=1: d_ap=3, d_an=4 -> 0; c_v1=3: d_ap=4, d_an=1 -> 3.1; mean 1.55.
L_cross = 1.125. Term (w_new=1, c=0.5) = 0.5*1.05 + 0.5*1.125 = 1.0875.
"""
import pytest
import torch

from ckda_avalanche.losses import centre_term, cross_modal_centre_terms, modality_centres

FEATS = torch.tensor([[0.0], [2.0], [3.0], [4.0], [5.0], [7.0]])
LABELS = torch.tensor([0, 0, 1, 0, 1, 1])
MODALITY = torch.tensor([0, 0, 0, 1, 1, 1])


def test_modality_centres():
    centres, ids = modality_centres(FEATS[:3], LABELS[:3])
    assert ids.tolist() == [0, 1]
    assert centres.squeeze(1).tolist() == [1.0, 3.0]


def test_centre_terms_hand_values():
    terms = cross_modal_centre_terms(FEATS, LABELS, MODALITY, margin=0.1)
    assert terms.cent.item() == pytest.approx(1.05, abs=1e-5)
    assert terms.cross.item() == pytest.approx(1.125, abs=1e-5)
    assert centre_term(terms, w_new=1.0, c=0.5).item() == pytest.approx(1.0875, abs=1e-5)
    assert centre_term(terms, w_new=2.0, c=0.0).item() == pytest.approx(2.1, abs=1e-5)
    assert centre_term(terms, w_new=0.0, c=0.5).item() == 0.0


def test_single_modality_batch_gives_zero():
    terms = cross_modal_centre_terms(FEATS[:3].requires_grad_(), LABELS[:3], MODALITY[:3])
    assert terms.cent.item() == 0.0 and terms.cross.item() == 0.0
    assert terms.cent.requires_grad
