"""Figures from tidy CSVs only (matplotlib, Agg backend).

`plot_runs` draws, for every protocol present:

- ``seen_mAP``, ``seen_Rank1``: seen-average after each session, one line per method;
- ``per_dataset_mAP``: one panel per dataset, its mAP after each session, one line per method;
- ``modality_gap``: one panel per dataset, its modality-gap ratio (`evaluation.modality_gap`) after each session,
  one line per method (only when the CSVs hold ``modality_gap/ratio`` rows);
- ``matrix_<method>``: session x dataset heatmaps of mAP and of forgetting (`evaluation.forgetting`), with numbers;
- ``final_seen``: final seen-average mAP and Rank-1 per method (leaderboard order) with 95% intervals over seeds;
- ``ablation_<base>`` (only when method variants such as ``ckda[no_msp]`` are present; `ablation`): the paired
  difference of every variant to its full method, final seen-average mAP and Rank-1, bars with 95% intervals.

Several seeds: the line is the mean and the band the 95% Student-t confidence interval of the mean over seeds
(`stats`); heatmaps show the mean. Every method keeps the same colour in every figure (`method_color`). Values are
plotted in percent. Seeds of different precision are not pooled unless ``merge_precisions`` (`precision`).
"""
from __future__ import annotations

import os
import re
import warnings
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ckda_avalanche.evaluation.forgetting import forgetting_per_dataset, seen_average  # noqa: E402
from ckda_avalanche.evaluation.modality_gap import MODALITY_GAP_RATIO  # noqa: E402

from .ablation import FULL_VARIANT, build_ablation  # noqa: E402
from .leaderboard import build_leaderboard  # noqa: E402
from .precision import MixedPrecisionError  # noqa: E402
from .stats import CI_LEVEL, t_quantile  # noqa: E402
from .tidy_data import RunScores, Sources, load_tidy, run_scores  # noqa: E402

__all__ = ["KNOWN_METHOD_COLORS", "KNOWN_VARIANT_COLORS", "method_color", "plot_runs"]

KNOWN_METHOD_COLORS: dict[str, str] = {
    "naive": "#7f7f7f", "si": "#bcbd22", "lfl": "#17becf", "gdumb": "#8c564b", "agem": "#9467bd", "gem": "#e377c2",
    "cumulative": "#393b79", "pcl": "#843c39",
}
"""Fixed colours of Avalanche's own strategies, for runs logged from a plain Avalanche loop (lower-case names). The
package's methods, and methods installed through the ``ckda_avalanche.methods`` entry points, take the colour they
were registered with (`ckda_avalanche.strategies.registry`)."""

KNOWN_VARIANT_COLORS: dict[str, str] = {
    # `ckda ablate` (docs/method.md §8; runner.variants.ABLATION_METHODS): model ablations blue/purple, losses red/yellow
    "ckda[no_msp]": "#5254a3", "ckda[no_mcp]": "#6b6ecf", "ckda[no_mcp_instance_norm]": "#9c9ede",
    "ckda[no_mcp_gates]": "#7b4173", "ckda[no_modality_embedding]": "#a55194",
    "ckda[no_prompt_consistency]": "#ce6dbd", "ckda[inter_only]": "#d6616b", "ckda[intra_only]": "#e7969c",
    "ckda[no_cka]": "#ad494a", "ckda[no_merge]": "#bd9e39", "ckda[no_centre]": "#e7ba52", "ckda[finetune]": "#8ca252",
    # the quirks of docs/method.md §7 (runner.variants.QUIRK_METHODS)
    "ckda[quirk_a]": "#b5cf6b", "ckda[quirk_b]": "#cedb9c", "ckda[quirk_c]": "#e7cb94", "ckda[quirks]": "#de9ed6",
}
"""Fixed, mutually distinct colours of the shipped CKDA variants (ablations and quirks); any other name (e.g.
``ewc[ewc_lambda=100]``) gets a stable hash colour."""


def _registered_colour(method: str) -> str | None:
    """The colour ``method`` was registered with, if it is a registered method's plain name."""
    from ckda_avalanche.strategies.registry import MethodRegistryError, get_method

    try:
        return get_method(method).colour
    except MethodRegistryError:
        return None


_FALLBACK = plt.get_cmap("tab20b").colors


def method_color(method: str) -> str:
    """Colour of ``method`` in every figure: its registered colour, a fixed colour for the shipped variants and
    Avalanche's strategies, else a stable hash into tab20b."""
    key = method.lower()
    known = KNOWN_VARIANT_COLORS.get(key) or KNOWN_METHOD_COLORS.get(key) or _registered_colour(key)
    if known is not None:
        return known
    r, g, b = _FALLBACK[zlib.crc32(method.encode("utf-8")) % len(_FALLBACK)][:3]
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _aligned(runs: list[RunScores], metric: str, datasets: list[str]) -> np.ndarray:
    """Stack runs' matrices of ``metric`` as ``(runs, sessions + 1, datasets)``, NaN-padded to common shape."""
    rows = max(r.final_train_exp for r in runs) + 1
    out = np.full((len(runs), rows, len(datasets)), np.nan)
    for i, run in enumerate(runs):
        matrix = run.matrices.get(metric)
        if matrix is None:
            continue
        for d, name in enumerate(run.datasets):
            out[i, : matrix.shape[0], datasets.index(name)] = matrix[:, d]
    return out


def _learned_at(run: RunScores, datasets: list[str]) -> list[int]:
    # Dataset d of a run is learned in session d + 1 (stream order); datasets the run lacks are never learned.
    return [run.datasets.index(d) + 1 if d in run.datasets else len(datasets) + 10**6 for d in datasets]


def _nan_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = (~np.isnan(values)).sum(axis=0)
    total = np.where(counts > 0, np.nansum(values, axis=0), np.nan)
    mean = total / np.maximum(counts, 1)
    sq = np.nansum((values - mean) ** 2, axis=0)
    std = np.where(counts > 1, np.sqrt(sq / np.maximum(counts - 1, 1)), np.nan)
    return mean, std


def _ci_half_width(values: np.ndarray) -> np.ndarray:
    """Half-width of the 95% Student-t interval of the mean along axis 0 (NaN where fewer than 2 values)."""
    _, std = _nan_stats(values)
    counts = (~np.isnan(values)).sum(axis=0)
    t = np.array([t_quantile(0.5 + CI_LEVEL / 2, int(c) - 1) if c > 1 else np.nan for c in np.ravel(counts)])
    return t.reshape(np.shape(counts)) * std / np.sqrt(np.maximum(counts, 1))


def _line(ax: plt.Axes, x: np.ndarray, per_seed: np.ndarray, method: str, *, scale: float = 100.0) -> None:
    mean, _ = _nan_stats(per_seed)
    keep = ~np.isnan(mean)
    if not keep.any():
        return
    colour = method_color(method)
    label = method if per_seed.shape[0] == 1 else f"{method} (mean, 95% CI, n={per_seed.shape[0]})"
    ax.plot(x[keep], scale * mean[keep], marker="o", color=colour, label=label, linewidth=2)
    half = _ci_half_width(per_seed)
    band = keep & ~np.isnan(half)
    if band.any():
        ax.fill_between(x[band], scale * (mean - half)[band], scale * (mean + half)[band], color=colour, alpha=0.2)


def _session_axis(ax: plt.Axes, sessions: int, datasets: list[str]) -> None:
    ticks = np.arange(1, sessions + 1)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{s}\n+{datasets[s - 1]}" if s - 1 < len(datasets) else str(s) for s in ticks])
    ax.set_xlabel("training session (dataset learned)")
    ax.grid(True, alpha=0.3)


def _save(fig: plt.Figure, out: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    paths = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _seen_curve(by_method: dict[str, list[RunScores]], metric: str, datasets: list[str], protocol: str,
                out: Path, formats: tuple[str, ...]) -> list[Path]:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sessions = max(r.final_train_exp for runs in by_method.values() for r in runs)
    x = np.arange(1, sessions + 1)
    for method, runs in by_method.items():
        per_seed = np.full((len(runs), sessions), np.nan)
        for i, run in enumerate(runs):
            matrix = run.matrices.get(metric)
            if matrix is None:
                continue
            for s in range(1, matrix.shape[0]):
                per_seed[i, s - 1] = seen_average(matrix, after=s, strict=False)
        _line(ax, x, per_seed, method)
    label = "Rank-1" if metric == "Rank1" else metric
    ax.set_ylabel(f"seen-average {label} (%)")
    ax.set_title(f"Seen-average {label} after each session ({protocol} protocol)")
    _session_axis(ax, sessions, datasets)
    ax.legend(loc="best", fontsize=9)
    return _save(fig, out, f"seen_{metric}_{_safe(protocol)}", formats)


def _per_dataset_panels(by_method: dict[str, list[RunScores]], datasets: list[str], out: Path,
                        formats: tuple[str, ...], *, metric: str, scale: float, panel: str, ylabel: str,
                        suptitle: str, stem: str, suptitle_size: float | None = None) -> list[Path]:
    """One panel per dataset: ``metric`` of that dataset after each session, one line per method (mean and spread
    over seeds); a dotted line marks the session in which the dataset is learned."""
    cols = min(4, len(datasets))
    nrows = int(np.ceil(len(datasets) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 3.2 * nrows), squeeze=False, sharey=True)
    sessions = max(r.final_train_exp for runs in by_method.values() for r in runs)
    x = np.arange(1, sessions + 1)
    for d, dataset in enumerate(datasets):
        ax = axes[d // cols][d % cols]
        for method, runs in by_method.items():
            stacked = _aligned(runs, metric, datasets)
            per_seed = np.full((len(runs), sessions), np.nan)
            per_seed[:, : stacked.shape[1] - 1] = stacked[:, 1:, d]
            _line(ax, x, per_seed, method, scale=scale)
        ax.axvline(d + 1, color="#999999", linestyle=":", linewidth=1)
        ax.set_title(f"{dataset} {panel}")
        ax.set_xticks(x)
        ax.set_xlabel("session")
        ax.grid(True, alpha=0.3)
        if d % cols == 0:
            ax.set_ylabel(ylabel)
    for k in range(len(datasets), nrows * cols):
        axes[k // cols][k % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, max(1, len(labels))),
               bbox_to_anchor=(0.5, -0.02 - 0.04 * (len(labels) > 6)))
    fig.suptitle(suptitle, **({} if suptitle_size is None else {"fontsize": suptitle_size}))
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return _save(fig, out, stem, formats)


def _per_dataset(by_method: dict[str, list[RunScores]], datasets: list[str], protocol: str, out: Path,
                 formats: tuple[str, ...]) -> list[Path]:
    """Per-dataset mAP after each session."""
    return _per_dataset_panels(
        by_method, datasets, out, formats, metric="mAP", scale=100.0, panel="mAP", ylabel="mAP (%)",
        suptitle=f"Per-dataset mAP after each session ({protocol} protocol; dotted: session it is learned)",
        stem=f"per_dataset_mAP_{_safe(protocol)}")


def _modality_gap(by_method: dict[str, list[RunScores]], datasets: list[str], protocol: str, out: Path,
                  formats: tuple[str, ...]) -> list[Path]:
    """One panel per dataset: its modality-gap ratio (`evaluation.modality_gap`) after each session, per method."""
    return _per_dataset_panels(
        by_method, datasets, out, formats, metric=MODALITY_GAP_RATIO, scale=1.0, panel="modality gap",
        ylabel="same-id / other-id IR-VIS distance",
        suptitle=f"Modality-gap ratio after each session ({protocol} protocol; lower: a person's infrared and visible "
                 "features closer; 1: no identity information across modalities)",
        stem=f"modality_gap_{_safe(protocol)}", suptitle_size=10)


def _heatmap(ax: plt.Axes, values: np.ndarray, datasets: list[str], title: str, cmap: str, *,
             vmin: float, vmax: float) -> None:
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if not np.isnan(v):
            r, g, b, _ = image.cmap(image.norm(v))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # white text on dark cells
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=10, color="white" if dark else "black")
    ax.set_xticks(range(len(datasets)))
    ax.set_xticklabels(datasets)
    ax.set_yticks(range(values.shape[0]))
    ax.set_yticklabels([f"after {s + 1}" for s in range(values.shape[0])])
    ax.set_xlabel("evaluated dataset")
    ax.set_title(title)


def _matrix(method: str, runs: list[RunScores], datasets: list[str], protocol: str, out: Path,
            formats: tuple[str, ...]) -> list[Path]:
    stacked = _aligned(runs, "mAP", datasets)
    sessions = stacked.shape[1] - 1
    forgetting = np.full_like(stacked, np.nan)
    for i, run in enumerate(runs):
        for s in range(1, sessions + 1):
            if not np.isnan(stacked[i, s]).all():
                forgetting[i, s] = forgetting_per_dataset(stacked[i], after=s, learned_at=_learned_at(run, datasets))
    mean_map, _ = _nan_stats(100 * stacked[:, 1:])
    mean_forget, _ = _nan_stats(100 * forgetting[:, 1:])
    fig, axes = plt.subplots(1, 2, figsize=(1.5 * len(datasets) * 2 + 3, 0.8 * sessions + 2.2))
    _heatmap(axes[0], mean_map, datasets, "mAP (%)", "viridis", vmin=0.0, vmax=100.0)
    top = max(1.0, float(np.nanmax(np.abs(mean_forget))) if not np.isnan(mean_forget).all() else 1.0)
    # Diverging map centred on 0: red = forgotten, blue = improved since its best earlier score.
    _heatmap(axes[1], mean_forget, datasets, "forgetting (mAP points)", "RdBu_r", vmin=-top, vmax=top)
    seeds = f"mean of {len(runs)} seeds" if len(runs) > 1 else f"seed {runs[0].seed}"
    fig.suptitle(f"{method}: session x dataset ({protocol} protocol, {seeds})", color=method_color(method))
    fig.tight_layout()
    return _save(fig, out, f"matrix_{_safe(method)}_{_safe(protocol)}", formats)


def _final_scores(board: pd.DataFrame, protocol: str, out: Path, formats: tuple[str, ...]) -> list[Path]:
    rows = board[board["protocol"] == protocol]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(rows) + 1.8), sharey=True)
    y = np.arange(len(rows))[::-1]
    for ax, metric, label in ((axes[0], "seen_mAP", "mAP"), (axes[1], "seen_Rank1", "Rank-1")):
        for yi, (_, r) in zip(y, rows.iterrows()):
            half = r[f"{metric}_ci95"]
            ax.errorbar(100 * r[f"{metric}_mean"], yi, xerr=None if np.isnan(half) else 100 * half, fmt="o",
                        color=method_color(str(r["method"])), capsize=4, markersize=7, linewidth=2)
        ax.set_xlabel(f"final seen-average {label} (%)")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([f"{r['rank']}. {r['method']} (n={r['seeds']}, {r['precision']})"
                             for _, r in rows.iterrows()])
    fig.suptitle(f"Final seen-average scores ({protocol} protocol; mean and 95% CI over seeds)")
    fig.tight_layout()
    return _save(fig, out, f"final_seen_{_safe(protocol)}", formats)


def _ablation(table: pd.DataFrame, protocol: str, base: str, out: Path, formats: tuple[str, ...]) -> list[Path]:
    rows = table[(table["protocol"] == protocol) & (table["base"] == base) & (table["variant"] != FULL_VARIANT)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * len(rows) + 1.9), sharey=True)
    y = np.arange(len(rows))[::-1]
    for ax, metric, label in ((axes[0], "seen_mAP", "mAP"), (axes[1], "seen_Rank1", "Rank-1")):
        diff = 100 * rows[f"diff_{metric}"].to_numpy(dtype=float)
        err = np.vstack([diff - 100 * rows[f"diff_{metric}_low"].to_numpy(dtype=float),
                         100 * rows[f"diff_{metric}_high"].to_numpy(dtype=float) - diff])
        ax.barh(y, np.nan_to_num(diff), xerr=np.where(np.isnan(err), 0.0, err), capsize=4, alpha=0.85,
                color=[method_color(str(m)) for m in rows["method"]], error_kw={"linewidth": 1.5})
        ax.axvline(0.0, color="black", linewidth=1)
        ax.set_xlabel(f"Δ final seen-average {label} vs {base} (points)")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([f"{m} (n={'–' if np.isnan(p) else int(p)})"
                             for m, p in zip(rows["method"], rows["diff_pairs"])])
    fig.suptitle(f"{base} ablations: variant minus full method, paired by seed ({protocol} protocol; 95% CI)")
    fig.tight_layout()
    return _save(fig, out, f"ablation_{_safe(base)}_{_safe(protocol)}", formats)


def plot_runs(sources: Sources, out_dir: str | os.PathLike[str], *,
              formats: tuple[str, ...] = ("png",), merge_precisions: bool = False) -> list[Path]:
    """Draw every figure for every protocol in ``sources`` into ``out_dir``; returns the written files. Seeds of
    different precision in one method raise `precision.MixedPrecisionError` unless ``merge_precisions``."""
    if not formats:
        raise ValueError("formats must name at least one file format, e.g. ('png',)")
    frame = load_tidy(sources, complete_only=False)  # curves of unfinished runs are drawn too
    out = Path(out_dir)  # made only once there is something to draw (a missing run folder stays missing)
    out.mkdir(parents=True, exist_ok=True)
    try:
        board = build_leaderboard(frame, merge_precisions=merge_precisions)
        ablation = build_ablation(frame, merge_precisions=merge_precisions)
    except MixedPrecisionError:
        raise
    except ValueError as exc:  # e.g. seeds still at different sessions: the curves can still be drawn
        warnings.warn(f"final-score and ablation figures skipped: {exc}", stacklevel=2)
        board, ablation = None, pd.DataFrame()
    runs = run_scores(frame)
    written: list[Path] = []
    for protocol in sorted({r.protocol for r in runs}):
        chosen = [r for r in runs if r.protocol == protocol]
        datasets: list[str] = []
        for run in chosen:
            datasets += [d for d in run.datasets if d not in datasets]
        by_method: dict[str, list[RunScores]] = {}
        for run in chosen:
            by_method.setdefault(run.method, []).append(run)
        for metric in ("mAP", "Rank1"):
            written += _seen_curve(by_method, metric, datasets, protocol, out, formats)
        written += _per_dataset(by_method, datasets, protocol, out, formats)
        if any(MODALITY_GAP_RATIO in r.matrices for r in chosen):  # boards made before the gap was logged lack it
            written += _modality_gap(by_method, datasets, protocol, out, formats)
        for method, method_runs in by_method.items():
            written += _matrix(method, method_runs, datasets, protocol, out, formats)
        if board is not None:
            written += _final_scores(board, protocol, out, formats)
        if not ablation.empty:
            chosen_table = ablation[ablation["protocol"] == protocol]
            for base in pd.unique(chosen_table["base"]):
                variants = set(chosen_table[chosen_table["base"] == base]["variant"])
                if FULL_VARIANT in variants and len(variants) > 1:  # differences exist only next to the full run
                    written += _ablation(ablation, protocol, str(base), out, formats)
    return written
