"""Feature maps: a 2-D embedding of a dataset's test features, coloured by identity and marked by modality.

`embed_2d` projects features to two dimensions: ``"pca"`` (default; the two leading principal components from
numpy's SVD of the centred features, each axis' sign fixed so its largest loading is positive, hence
deterministic) or ``"tsne"`` (scikit-learn's ``TSNE``, seeded, PCA initialisation; slower and only for looking).
`draw_feature_maps` writes one PNG with a panel per session: the embedding is fitted on the whole test pool of that
session, and the items of a seeded choice of identities present in both modalities are drawn (a colour per
identity, ``o`` visible, ``^`` infrared), with the modality-gap ratio of the whole pool (`evaluation.modality_gap`)
in each panel's title.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ckda_avalanche.benchmarks.sample import INFRARED, VISIBLE  # noqa: E402
from ckda_avalanche.evaluation.modality_gap import MODALITY_GAP_RATIO, modality_gap  # noqa: E402

__all__ = ["EMBEDDINGS", "draw_feature_maps", "embed_2d"]

EMBEDDINGS: tuple[str, ...] = ("pca", "tsne")
"""The 2-D embeddings `embed_2d` offers."""


def embed_2d(features: np.ndarray | torch.Tensor, *, method: str = "pca", seed: int = 0) -> np.ndarray:
    """``(N, 2)`` coordinates of ``features (N, D)`` (float64)."""
    x = np.asarray(torch.as_tensor(features).detach().cpu().double())
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f"feature map: expected at least 3 features of shape (N, D), got {x.shape}")
    if method == "pca":
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:2]
        axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
        coords = centred @ axes.T
        return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    raise ValueError(f"feature map: method must be one of {EMBEDDINGS}, got {method!r}")


def draw_feature_maps(path: str | Path, *, features: Sequence[torch.Tensor | np.ndarray], panel_labels: Sequence[str],
                      pids: np.ndarray, modalities: np.ndarray, method: str = "pca", identities: int = 12,
                      seed: int = 0, title: str = "") -> Path:
    """Write one panel per entry of ``features`` (rows = ``pids`` / ``modalities``); returns the PNG."""
    if len(features) != len(panel_labels) or not len(features):
        raise ValueError("feature map: one panel label per feature set, at least one")
    pids, modalities = np.asarray(pids), np.asarray(modalities)
    both = np.intersect1d(pids[modalities == VISIBLE], pids[modalities == INFRARED])
    if not len(both):
        raise ValueError("feature map: no identity has both visible and infrared items")
    rng = np.random.default_rng(seed)
    shown = np.sort(rng.choice(both, size=min(identities, len(both)), replace=False))
    colours = plt.get_cmap("tab20").colors
    fig, axes = plt.subplots(1, len(features), figsize=(4.2 * len(features), 4.4), squeeze=False)
    for ax, feats, label in zip(axes[0], features, panel_labels):
        if method == "tsne":  # t-SNE of the shown identities only (cost grows with N^2)
            keep = np.isin(pids, shown)
            coords = np.full((len(pids), 2), np.nan)
            coords[keep] = embed_2d(np.asarray(feats)[keep], method=method, seed=seed)
        else:
            coords = embed_2d(feats, method=method, seed=seed)
        for i, pid in enumerate(shown):
            for mod, marker in ((VISIBLE, "o"), (INFRARED, "^")):
                at = (pids == pid) & (modalities == mod)
                ax.scatter(coords[at, 0], coords[at, 1], s=22, marker=marker, color=colours[i % len(colours)],
                           edgecolors="black" if mod == INFRARED else "none", linewidths=0.4, alpha=0.85)
        gap = modality_gap(torch.as_tensor(np.asarray(feats)), pids, modalities)[MODALITY_GAP_RATIO]
        ax.set_title(f"{label}\nmodality-gap ratio {gap:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [plt.Line2D([], [], marker="o", linestyle="", color="grey", label="visible"),
               plt.Line2D([], [], marker="^", linestyle="", color="grey", markeredgecolor="black", label="infrared")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8)
    fig.suptitle(f"{title} ({method.upper()}; {len(shown)} identities, one colour each)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
