"""DKP mechanisms: distribution prototypes, sampling, prototype-affinity distillation (losses/dkp.py)."""
import torch
import torch.nn.functional as F

from ckda_avalanche.losses.dkp import (DistributionPrototypes, identity_distributions,
                                       prototype_affinity_distillation_loss, sample_prototype_features)


def test_identity_distributions_mean_and_std_per_identity_and_modality():
    torch.manual_seed(0)
    feats = torch.randn(12, 4)
    labels = torch.tensor([3, 3, 3, 5, 5, 5, 3, 3, 3, 5, 5, 5])
    mods = torch.tensor([0] * 6 + [1] * 6)
    pooled = identity_distributions(feats, labels)
    assert pooled.labels.tolist() == [3, 5] and pooled.modality.tolist() == [-1, -1]
    normed = F.normalize(feats, dim=1)
    sel = labels == 3
    assert torch.allclose(pooled.mean[0], normed[sel].mean(0), atol=1e-6)
    assert torch.allclose(pooled.std[0], normed[sel].std(0, unbiased=False), atol=1e-5)
    split = identity_distributions(feats, labels, mods)
    assert split.labels.tolist() == [3, 3, 5, 5] and split.modality.tolist() == [0, 1, 0, 1]
    assert torch.allclose(split.mean[1], normed[6:9].mean(0), atol=1e-6)
    assert split.num_bytes() == 4 * 8 + 4 * 8 + 2 * 4 * 4 * 4


def test_sampling_is_normalised_and_degenerates_to_the_mean():
    protos = DistributionPrototypes(labels=torch.arange(3), modality=torch.full((3,), -1),
                                    mean=torch.randn(3, 5), std=torch.zeros(3, 5))
    s = sample_prototype_features(protos)
    assert torch.allclose(s, F.normalize(protos.mean, dim=1))
    noisy = DistributionPrototypes(labels=protos.labels, modality=protos.modality, mean=protos.mean,
                                   std=torch.ones(3, 5))
    g = torch.Generator().manual_seed(1)
    a = sample_prototype_features(noisy, generator=g)
    assert torch.allclose(a.norm(dim=1), torch.ones(3)) and not torch.allclose(a, s)


def test_prototype_affinity_loss_matches_definition_and_has_gradient():
    torch.manual_seed(0)
    f = torch.randn(6, 8, requires_grad=True)
    protos = torch.randn(4, 8)
    loss = prototype_affinity_distillation_loss(f, protos, lambda_1=0.1, lambda_2=0.1)
    fn = F.normalize(f, dim=1)
    r = torch.softmax(fn @ F.normalize(protos, dim=1).t() / 0.1, 1)
    rn = F.normalize(r, dim=1)
    a_p = torch.softmax(rn @ rn.t() / 0.1, 1)
    a_n = torch.softmax(fn @ fn.t() / 0.1, 1)
    manual = (a_p * (a_p.log() - a_n.log())).sum() / 6
    assert torch.allclose(loss, manual, atol=1e-5)
    loss.backward()
    assert f.grad.abs().sum() > 0
