"""``ckda show``: ranked-list pictures and feature maps of a run's models, session by session.

For one run folder (``OUT/<method>/seed<k>``) the model after session ``k`` is the kept one
(``--keep-session-checkpoints``, `session_models`), or, for the run's last session, the final model of
``checkpoint.pt``. Features come from the evaluation path of ``ckda eval`` (`reevaluate.saved_run_strategy` and
`reevaluate.saved_run_benchmark`: the run's model with its ablations, image size and data quirks; Avalanche's own
eval loop, collected by `evaluation.feature_pool.ReIDRetrieval` with its alignment checks) and are pooled and
normalised exactly as the protocol ranks them (`feature_pool.pool_features`). The pictures use the protocol's first
trial (paper or full protocol) and the dataset's own image files.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ckda_avalanche.runner.overrides import ConfigError
from ckda_avalanche.runner.reevaluate import SavedRun, load_saved_run, saved_run_benchmark, saved_run_strategy
from ckda_avalanche.runner.session_models import kept_sessions, load_model_weights, load_session_model

__all__ = ["SessionFeatures", "session_features", "show_ranked_lists", "show_feature_maps"]


@dataclass(frozen=True)
class SessionFeatures:
    """One dataset's test features after several sessions of one run, as the protocol ranks them."""

    saved: SavedRun
    """The run."""
    dataset: str
    """Dataset name."""
    pool: list[Any]
    """The (tracklet-grouped for HITSZ-VCM) test pool: `ReIDSample` per feature row."""
    protocol: Any
    """The `EvalProtocol` the pool was scored with."""
    features: dict[int, torch.Tensor]
    """Session -> L2-normalised features, row n = ``pool[n]``."""


def _session_state(saved: SavedRun, session: int) -> dict[str, torch.Tensor]:
    if session in kept_sessions(saved.run_dir):
        return load_session_model(saved.run_dir, session)
    checkpoint = saved.run_dir / "checkpoint.pt"
    if session == saved.sessions and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        return state["strategy"]["model"]
    raise ConfigError(f"{saved.run_dir}: no model for session {session} (kept: {kept_sessions(saved.run_dir)}, "
                      f"final: session {saved.sessions}); run with --keep-session-checkpoints to keep every session")


def session_features(run_dir: str | os.PathLike[str], *, dataset: str, sessions: Sequence[int], data_root: Path,
                     protocol: str = "paper", device: str = "auto") -> SessionFeatures:
    """Extract ``dataset``'s test features with the run's model after each of ``sessions`` (1-based)."""
    from avalanche.evaluation import PluginMetric
    from avalanche.training.plugins import EvaluationPlugin

    from ckda_avalanche.benchmarks.streams import DEFAULT_ORDER
    from ckda_avalanche.evaluation.feature_pool import ReIDRetrieval, pool_features

    saved = load_saved_run(run_dir)
    if dataset not in DEFAULT_ORDER:
        raise ConfigError(f"--dataset {dataset}: expected one of {list(DEFAULT_ORDER)}")
    bad = [s for s in sessions if not 1 <= int(s) <= saved.sessions]
    if bad or not sessions:
        raise ConfigError(f"--sessions {list(sessions)}: {saved.run_dir} finished sessions 1-{saved.sessions}")

    class _Collect(PluginMetric[Any]):  # hands the eval loop's features over, with ReIDRetrieval's checks
        def __init__(self) -> None:
            super().__init__()
            self.retrieval, self.features = ReIDRetrieval(), None

        def reset(self) -> None:
            self.retrieval.reset()

        def result(self) -> Any:
            return self.features

        def before_eval_exp(self, strategy: Any) -> None:
            self.retrieval.reset()

        def after_eval_iteration(self, strategy: Any) -> None:
            self.retrieval.update(strategy.mb_output, strategy.mbatch[1], strategy.mbatch[2])

        def after_eval_exp(self, strategy: Any) -> None:
            reid = strategy.experience.reid
            self.features = self.retrieval.features(reid.samples, dataset=reid.dataset)

    collect = _Collect()
    with warnings.catch_warnings():  # no logger on purpose: the features are all we want
        warnings.filterwarnings("ignore", message="No loggers specified")
        evaluator = EvaluationPlugin(collect, loggers=[])
    strategy = saved_run_strategy(saved, evaluator, device=device)
    experience = saved_run_benchmark(saved, data_root, datasets=[dataset], protocol=protocol).test_stream[0]
    reid = experience.reid
    features: dict[int, torch.Tensor] = {}
    pool: list[Any] = []
    for session in sessions:
        load_model_weights(strategy.model, _session_state(saved, int(session)))
        strategy.model.to(strategy.device)
        strategy.eval([experience])
        features[int(session)], pool = pool_features(collect.features, reid.samples, reid.protocol)
    return SessionFeatures(saved=saved, dataset=dataset, pool=pool, protocol=reid.protocol, features=features)


def _loader(tile: tuple[int, int]) -> Any:
    from PIL import Image

    cache: dict[str, np.ndarray] = {}

    def load(path: str) -> np.ndarray:
        if path not in cache:
            with Image.open(path) as img:
                cache[path] = np.asarray(img.convert("RGB").resize((tile[1], tile[0]), Image.BILINEAR))
        return cache[path]

    return load


def _learned(saved: SavedRun, session: int) -> str:
    datasets = list(saved.run_config.datasets)
    return f" (+{datasets[session - 1]})" if session - 1 < len(datasets) else ""


def show_ranked_lists(found: SessionFeatures, out: Path, *, queries: int = 8, top_k: int = 10, pick: str = "random",
                      seed: int = 0, tile: tuple[int, int] = (64, 32), trial: str | None = None) -> Path:
    """Write the ranked-list grid of ``found`` into ``out`` for the protocol's trial named ``trial`` (default: its
    first trial); returns the PNG."""
    from ckda_avalanche.benchmarks.sample import INFRARED
    from ckda_avalanche.evaluation.distance import cosine_distance
    from ckda_avalanche.reporting.ranked_lists import choose_queries, draw_ranked_grid, ranked_rows

    pool = found.pool
    trials = found.protocol.trials(pool)
    names = [t.name for t in trials]
    if trial is not None and trial not in names:
        raise ConfigError(f"--trial {trial}: {found.dataset}'s {found.protocol.name} protocol has trials {names}")
    trial = trials[0 if trial is None else names.index(trial)]
    pids = np.array([s.pid for s in pool])
    cams = np.array([s.camid for s in pool])
    sessions = sorted(found.features)
    per_session = []
    for s in sessions:
        feats = found.features[s]
        dist = cosine_distance(feats[torch.as_tensor(trial.query)], feats[torch.as_tensor(trial.gallery)]).numpy()
        per_session.append(ranked_rows(dist, pids[trial.query], pids[trial.gallery], cams[trial.query],
                                       cams[trial.gallery], rule=trial.rule, top_k=top_k))
    chosen = choose_queries(per_session, count=queries, pick=pick, seed=seed)
    rows = [[session_rows[q] for q in chosen] for session_rows in per_session]
    load = _loader(tile)

    def image(kind: str, index: int) -> np.ndarray:
        return load(pool[int((trial.query if kind == "query" else trial.gallery)[index])].path)

    def modality(q: int) -> str:
        return "IR" if pool[int(trial.query[q])].modality == INFRARED else "VIS"

    saved = found.saved
    name = (f"ranked_{found.dataset}_{_safe(trial.name)}_{_safe(saved.method)}_seed{saved.seed}_"
            f"s{'-'.join(map(str, sessions))}.png")
    return draw_ranked_grid(
        out / name, rows=rows, session_labels=[f"after session {s}{_learned(saved, s)}" for s in sessions],
        query_labels=[f"{modality(q)} query" for q in chosen],
        row_labels=[f"id {pids[trial.query[q]]}, {modality(q)} query" for q in chosen],
        image=image, tile=tile,
        title=f"{saved.method} (seed {saved.seed}) on {found.dataset}, {found.protocol.name} protocol, trial "
              f"{trial.name} ({trial.rule} rule): {len(chosen)} queries ({pick}), top {top_k}; green frame: same "
              "identity, red: another; number: cosine distance")


def show_feature_maps(found: SessionFeatures, out: Path, *, method: str = "pca", identities: int = 12,
                      seed: int = 0) -> Path:
    """Write the 2-D feature map of ``found`` (one panel per session) into ``out``; returns the PNG."""
    from ckda_avalanche.reporting.feature_map import draw_feature_maps

    saved = found.saved
    sessions = sorted(found.features)
    name = f"features_{found.dataset}_{_safe(saved.method)}_seed{saved.seed}_{method}.png"
    return draw_feature_maps(
        out / name, features=[found.features[s] for s in sessions],
        panel_labels=[f"after session {s}{_learned(saved, s)}" for s in sessions],
        pids=np.array([s.pid for s in found.pool]), modalities=np.array([s.modality for s in found.pool]),
        method=method, identities=identities, seed=seed,
        title=f"{saved.method} (seed {saved.seed}): {found.dataset} test features")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in name)
