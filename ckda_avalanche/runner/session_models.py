"""The per-session models kept by ``ckda run --keep-session-checkpoints``, re-scored by ``ckda eval`` without training.

``RUN_DIR/sessions/session<k>.pt`` (k = 1..S) holds ``{"model": state_dict, "sessions_done": k}``: the weights of
the model exactly as it was evaluated after session k (after CKDA's end-of-session merge, with that session's
classifier), on the CPU. That is all evaluation needs: no plugin acts during evaluation, and the run's
``config.json`` rebuilds the strategy, the stream (with the method's data quirks) and the model (with its
ablations). Each file is written atomically before the session's checkpoint, so a run killed in between redoes the
session on resume and rewrites the file.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ckda_avalanche.benchmarks.file_integrity import load_checked_torch_file
from ckda_avalanche.runner.atomic import atomic_torch_save

__all__ = ["SESSIONS_DIR", "kept_sessions", "load_session_model", "load_model_weights", "save_session_model",
           "session_model_path", "session_models_bytes"]

SESSIONS_DIR = "sessions"
"""Folder of the kept per-session models inside a run folder."""

_FILE = re.compile(r"^session(\d+)\.pt$")


def session_model_path(run_dir: str | Path, session: int) -> Path:
    """``RUN_DIR/sessions/session<k>.pt``."""
    return Path(run_dir) / SESSIONS_DIR / f"session{int(session)}.pt"


def save_session_model(run_dir: str | Path, session: int, model: nn.Module) -> Path:
    """Keep the weights of ``model`` (as evaluated after ``session`` sessions); returns the file written."""
    path = session_model_path(run_dir, session)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to("cpu") for key, value in model.state_dict().items()}
    atomic_torch_save(path, {"model": state, "sessions_done": int(session)})
    return path


def kept_sessions(run_dir: str | Path) -> list[int]:
    """Sessions whose model is kept in ``run_dir`` (sorted)."""
    folder = Path(run_dir) / SESSIONS_DIR
    if not folder.is_dir():
        return []
    found = (_FILE.match(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m is not None)


def session_models_bytes(run_dir: str | Path) -> int:
    """Bytes on disk of the kept per-session models of ``run_dir``."""
    return sum(session_model_path(run_dir, s).stat().st_size for s in kept_sessions(run_dir))


def load_session_model(run_dir: str | Path, session: int) -> dict[str, torch.Tensor]:
    """The kept model state of ``session``; a clear error when the file is missing or not one of ours."""
    path = session_model_path(run_dir, session)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no kept model for session {session}; run with --keep-session-checkpoints")
    saved = load_checked_torch_file(
        path, what="kept session model", error=ValueError, weights_only=True,
        damaged_hint="it cannot be re-scored (train the run again with --keep-session-checkpoints to recreate it)")
    if not isinstance(saved, dict) or saved.get("sessions_done") != session or "model" not in saved:
        raise ValueError(f"{path}: not a kept model of session {session} (expected keys model, sessions_done)")
    return saved["model"]


def load_model_weights(model: nn.Module, state: dict[str, Any]) -> None:
    """Load a kept state into ``model``, first resizing its classifier to the saved one (as `ReIDTemplate` does)."""
    classifier = [k for k in state if k.endswith("classifier.weight")]
    if hasattr(model, "reset_classifier"):
        model.reset_classifier(int(state[classifier[0]].shape[0]) if classifier else 0)
    model.load_state_dict(state)
