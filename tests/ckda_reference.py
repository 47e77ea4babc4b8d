"""Independent reference computations of CKDA's end-of-session and CKA maths, written from the method spec
(docs/method.md, sections 4.4, 5.1 and 5.2) for the tests; nothing here calls the package's loss,
plugin or prototype code. Models are only used for their pre-BN feature f (`forward_features`) and their weights.

Tests load this file with `load_reference()` (tests/ is not a package).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def eval_image(path: str, size: tuple[int, int]) -> torch.Tensor:
    """The test transform for a file already at ``size`` (height, width): RGB, [0, 1], ImageNet-normalised."""
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"))
    if array.shape[:2] != tuple(size):
        raise ValueError(f"{path}: reference expects a {size} image (no resize), got {array.shape[:2]}")
    return (torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


def bnneck_feature(model: torch.nn.Module, x: torch.Tensor, modality: torch.Tensor, *,
                   train_mode: bool = False) -> torch.Tensor:
    """L2norm(BN(f)) of ``model`` (a copy is used): eval mode and BN running statistics by default; ``train_mode``
    is the wrong variant (dropout on, BN with the batch's statistics)."""
    model = copy.deepcopy(model)
    model.train(train_mode)
    with torch.no_grad():
        feat, _ = model.forward_features(x, modality)
        bn = model.head.bnneck
        if train_mode:
            mean, var = feat.mean(0), feat.var(0, unbiased=False)
        else:
            mean, var = bn.running_mean, bn.running_var
        g = (feat - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
        return g / g.norm(dim=1, keepdim=True)


def prototypes(features: torch.Tensor, labels: Sequence[int], modality: Sequence[int]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(visible, visible_ids, infrared, infrared_ids): per identity (sorted) and modality, the mean feature."""
    labels = [int(v) for v in labels]
    modality = [int(v) for v in modality]
    out: list[torch.Tensor] = []
    for m in (0, 1):
        ids = sorted({k for k, mm in zip(labels, modality) if mm == m})
        rows = [torch.stack([features[i] for i in range(len(labels)) if labels[i] == k and modality[i] == m]).mean(0)
                for k in ids]
        out += [torch.stack(rows) if rows else features.new_zeros(0, features.shape[1]), torch.tensor(ids)]
    return tuple(out)  # type: ignore[return-value]


def merge(previous: Mapping[str, torch.Tensor], trained: Mapping[str, torch.Tensor], lam: float = 0.7
          ) -> dict[str, torch.Tensor]:
    """Spec §5.1: lam * previous + (1 - lam) * trained for every float entry of equal shape except the
    per-session classifier; everything else (integer buffers, the classifier) is the trained value."""
    merged: dict[str, torch.Tensor] = {}
    for name, value in trained.items():
        old = previous.get(name)
        if (old is not None and old.shape == value.shape and value.is_floating_point()
                and not name.startswith("head.classifier")):
            merged[name] = lam * old + (1.0 - lam) * value
        else:
            merged[name] = value.clone()
    return merged


def cka_terms(student: torch.Tensor, teacher: torch.Tensor, modality: torch.Tensor, visible: torch.Tensor,
              infrared: torch.Tensor, *, scale: float, tau: float = 0.1) -> tuple[float, float]:
    """(L_intra, L_inter) of docs/method.md §4.4 in float64.

    r(u, Q) = softmax_k(cos(u, q_k) / tau); per modality group, A_ab = softmax_b(scale * cos(r_a, r_b)) for the
    student and A~ for the teacher; KL(A~ || A) = (1/B) sum_ab A~_ab (log A~_ab - log A_ab). L_intra pairs each group
    with its own modality's prototypes, L_inter with the other's; each is the mean over the two groups.
    """
    def unit(v: torch.Tensor) -> torch.Tensor:
        v = v.double()
        return v / v.norm(dim=1, keepdim=True)

    def affinity(u: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        r = unit(torch.softmax(unit(u) @ unit(q).t() / tau, dim=1))
        return torch.softmax(scale * (r @ r.t()), dim=1)

    def kl(u_student: torch.Tensor, u_teacher: torch.Tensor, q: torch.Tensor) -> float:
        a, a_teacher = affinity(u_student, q), affinity(u_teacher, q)
        return float((a_teacher * (a_teacher.log() - a.log())).sum() / a.shape[0])

    intra, inter = [], []
    for m, own, other in ((0, visible, infrared), (1, infrared, visible)):
        group = modality == m
        intra.append(kl(student[group], teacher[group], own))
        inter.append(kl(student[group], teacher[group], other))
    return sum(intra) / 2, sum(inter) / 2
