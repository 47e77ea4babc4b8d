"""Contract (issue "Correct numerics"): every public loss returns, inside a bf16 autocast region, the float32 result.

`.float()` on the inputs is not enough: autocast still runs ``@`` in bf16. The inputs here make every hinge active and
every KL non-zero, so a bf16 matmul anywhere in a loss moves its value by far more than the 1e-5 tolerance.
"""
from __future__ import annotations

import inspect

import pytest
import torch

import ckda_avalanche.losses as L
from ckda_avalanche.losses import dkp, ewc, l2p, lstkc, lwf
from ckda_avalanche.models.output import ReIDOutput

B, D, K = 16, 768, 12
REL = 1e-5


def layernorm_features(seed: int, n: int = B) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.layer_norm(torch.randn(n, D, generator=g), (D,))


LABELS = torch.arange(B) // 4          # 4 identities x 4 samples
MODALITY = torch.arange(B) % 2         # both modalities per identity


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == torch.float32, a.dtype
    assert b.dtype == torch.float32
    scale = b.abs().max().clamp_min(1e-30)
    assert float((a - b).abs().max() / scale) <= REL, (a, b)


def under_bf16(fn, *args, **kwargs):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return fn(*args, **kwargs)


def check(fn, *args, **kwargs):
    reference = fn(*args, **kwargs)
    got = under_bf16(fn, *args, **kwargs)
    ref_t = reference if isinstance(reference, torch.Tensor) else torch.stack(list(reference))
    got_t = got if isinstance(got, torch.Tensor) else torch.stack(list(got))
    assert float(ref_t.abs().min()) > 0, "test inputs must make every term non-zero"
    close(got_t, ref_t)
    return reference


def test_autocast_really_changes_a_plain_matmul():
    a, b = layernorm_features(0), layernorm_features(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        prod = a.float() @ b.float().t()
    assert prod.dtype == torch.bfloat16  # the trap the contract guards against


def test_triplets_with_every_hinge_active():
    f = layernorm_features(2)
    margin = 60.0  # above every distance gap (distances of LayerNorm-scale 768-d vectors are ~39)
    dist = torch.cdist(f.double(), f.double())
    same = LABELS[:, None] == LABELS[None, :]
    eye = torch.eye(B, dtype=torch.bool)
    hp = dist.masked_fill(~same | eye, -1).max(1).values
    hn = dist.masked_fill(same, 1e9).min(1).values
    assert bool((hp - hn + margin > 0).all())
    check(L.euclidean_distances, f, layernorm_features(3))
    check(L.batch_hard_triplet, f, LABELS, margin=margin)
    check(L.cross_batch_hard_triplet, f, LABELS, layernorm_features(4), LABELS, margin=margin)
    check(L.cross_modal_centre_terms, f, LABELS, MODALITY, margin=margin)


def test_cka_terms_at_the_published_scale():
    student, teacher = layernorm_features(5), layernorm_features(6)
    pv, pi = layernorm_features(7, K), layernorm_features(8, K)
    check(L.prototype_distribution, student, pv)
    terms = check(L.cka_terms, student, teacher, MODALITY, pv, pi, scale=0.1, tau=0.1)
    assert 0 < float(terms.intra) < 1e-4  # the published s = 0.1 makes CKA's KL tiny (see README)
    check(L.affinity_kl, student, teacher, pv, scale=10.0)


def test_bf16_inputs_are_promoted_before_the_maths():
    f = layernorm_features(9).bfloat16()
    reference = L.batch_hard_triplet(f.float(), LABELS, margin=60.0)
    got = under_bf16(L.batch_hard_triplet, f, LABELS, margin=60.0)
    close(got, reference)


def test_prompt_terms():
    g = torch.Generator().manual_seed(10)
    p, q = torch.randn(4, 3, 32, 16, generator=g), torch.randn(4, 3, 32, 16, generator=g)
    check(L.prompt_consistency, p, q)
    check(L.prompt_orthogonality, p, q)


def test_baseline_losses():
    s, t = layernorm_features(11), layernorm_features(12)
    check(lwf.batch_affinity, s, temperature=0.1)
    check(lwf.affinity_distillation_loss, s, t, temperature=0.1)
    logits_s, logits_t = s[:, :20], t[:, :20]
    check(lwf.logit_distillation_loss, logits_s, logits_t, temperature=2.0)
    check(lstkc.rectified_affinity_distillation_loss, s, t, LABELS, temperature=0.1)
    check(dkp.prototype_affinity_distillation_loss, s, layernorm_features(13, K))
    keys = layernorm_features(14, 10)
    check(l2p.key_pull_loss, s, keys, torch.arange(B * 3).view(B, 3) % 10)


def test_reid_criterion():
    g = torch.Generator().manual_seed(15)
    feat = layernorm_features(16)
    logits = torch.randn(B, 4, generator=g) * 5
    output = ReIDOutput(logits=logits, feat=feat, bn_feat=feat, prompt=None, modality=MODALITY)
    crit = L.ReIDCriterion(config=L.ReIDLossConfig(margin=60.0))
    reference = crit(output, LABELS)
    terms_ref = crit.last_terms
    got = under_bf16(crit, output, LABELS)
    close(got, reference)
    for name in ("identity", "triplet", "cent", "cross"):
        close(getattr(crit.last_terms, name), getattr(terms_ref, name))


LOSS_MODULES = [m for m in (L.affinity, L.centre, L.prompt, L.triplet, lwf, lstkc, dkp, ewc, l2p)]


@pytest.mark.parametrize("module", LOSS_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_public_loss_function_is_float32(module):
    """Structural half of the contract: no public function of a loss module escapes the float32 wrapper."""
    for name, obj in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != module.__name__:
            continue
        assert getattr(obj, "float32_loss", False), f"{module.__name__}.{name} is not @float32_loss"
