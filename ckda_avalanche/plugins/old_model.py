"""What the baseline plugins keep of the previous session's model, and the passes they run with it.

* `OldModelKeeper`: a frozen, eval-mode copy of the model (the LwF / LSTKC teacher, the "old" end of a weight
  fusion), with `state_dict` / `load_state_dict` for the runner's per-session checkpoints (the copy is rebuilt lazily
  from the live model's architecture, so loading needs no model) and its size in bytes for `memory_report`. Right
  after a session, when checkpoints are written, the copy equals the model (bound with `bind_template`): the state
  then says ``same_as_model`` instead of holding the same weights twice, and loading rebuilds the copy from the
  restored model.
* `extract_features`: one no-grad pass of a model in eval mode over a dataset (test transforms, no shuffling);
  `loader_workers`: the DataLoader workers such a pass uses (the strategy's setting).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from ckda_avalanche.benchmarks.batch_loader import make_reid_loader
from ckda_avalanche.plugins.same_weights import same_weights


def frozen_copy(model: nn.Module) -> nn.Module:
    """Deep copy of ``model`` in eval mode with every parameter frozen."""
    clone = copy.deepcopy(model)
    clone.eval()
    clone.requires_grad_(False)
    return clone


def _cuda_devices(model: nn.Module) -> list[int]:
    """CUDA device indices holding ``model``'s parameters (for `torch.random.fork_rng`)."""
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


def module_bytes(module: nn.Module) -> int:
    """Bytes held by a module's parameters and buffers."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def _classifier_size(state: Mapping[str, torch.Tensor]) -> int:
    weight = state.get("head.classifier.weight")
    if weight is None:
        weight = state.get("base.head.classifier.weight")
    return 0 if weight is None else int(weight.shape[0])


class OldModelKeeper:
    """Holds a frozen copy of a model between sessions (None before the first snapshot)."""

    def __init__(self) -> None:
        self.model: nn.Module | None = None
        self._pending: dict[str, torch.Tensor] | None = None
        self._template: nn.Module | None = None

    def bind_template(self, model: nn.Module) -> None:
        """The live model: a kept copy equal to it is saved as ``same_as_model`` and restored from it."""
        self._template = model

    def snapshot(self, model: nn.Module) -> nn.Module:
        """Replace the kept copy by a frozen copy of ``model``; returns it."""
        self.model = frozen_copy(model)
        self._pending = None
        return self.model

    def ensure(self, template: nn.Module) -> nn.Module | None:
        """The kept copy, first rebuilding it from a loaded state dict (architecture taken from ``template``)."""
        if self._pending is not None:
            clone = copy.deepcopy(template)
            # A new classifier draws its initial weights from the global RNG, which the session was just seeded
            # with; they are overwritten by the loaded state at once, so draw them from a forked RNG: a resumed
            # run must consume the same random numbers as an uninterrupted one.
            with torch.random.fork_rng(devices=_cuda_devices(template)):
                if hasattr(clone, "reset_classifier"):
                    clone.reset_classifier(_classifier_size(self._pending))
            clone.load_state_dict(self._pending)
            self.model = frozen_copy(clone)
            self._pending = None
        if self.model is not None:
            device = next(template.parameters()).device
            self.model.to(device)
        return self.model

    @property
    def present(self) -> bool:
        """Whether a copy is kept (or waiting to be rebuilt from a loaded state)."""
        return self.model is not None or self._pending is not None

    def state_dict(self) -> dict[str, Any]:
        """``{"model": state dict or None}`` (tensors on CPU); ``{"model": None, "same_as_model": True}`` when the
        kept copy equals the bound model (every name, shape, dtype and value)."""
        if self._pending is None and self.model is None:
            return {"model": None}
        kept = dict(self._pending) if self._pending is not None else self.model.state_dict()
        if self._template is not None and same_weights(kept, self._template, all_names=True):
            return {"model": None, "same_as_model": True}
        return {"model": {k: v.detach().cpu().clone() for k, v in kept.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from `state_dict`; the copy is rebuilt at the next `ensure`, except a ``same_as_model`` copy,
        taken at once from the bound model (restored before the plugins, still as it was when the state was saved)."""
        if "model" not in state:
            raise KeyError("OldModelKeeper.load_state_dict: missing key 'model'")
        self.model = None
        self._pending = None
        if state.get("same_as_model"):
            if self._template is None:
                raise RuntimeError("OldModelKeeper.load_state_dict: the state says 'same_as_model' but no model is "
                                   "bound; call bind_template(model) after restoring the model")
            self.model = frozen_copy(self._template)
        elif state["model"] is not None:
            self._pending = dict(state["model"])

    def num_bytes(self) -> int:
        """Bytes of the kept copy (parameters and buffers), 0 when none."""
        if self.model is not None:
            return module_bytes(self.model)
        if self._pending is not None:
            return sum(t.numel() * t.element_size() for t in self._pending.values())
        return 0


def loader_workers(strategy: Any) -> int | str:
    """The DataLoader workers a plugin's own data pass should use: the strategy's `TrainConfig.num_workers`
    ("auto" for strategies without one, e.g. a plain Avalanche ``Naive``)."""
    return getattr(getattr(strategy, "config", None), "num_workers", "auto")


@torch.no_grad()
def extract_features(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int,
    device: torch.device | str,
    kind: Literal["retrieval", "feat"] = "retrieval",
    max_images: int = 0,
    seed: int = 0,
    num_workers: int | str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features (N, D), labels (N,), modality (N,)) of ``dataset`` with ``model`` in eval mode.

    ``dataset`` is an Avalanche ReID dataset (items ``(image, pid, camid, modality, task)``); its eval transform
    group is used. ``kind="retrieval"`` is the eval-mode output (L2-normalised BNNeck feature), ``"feat"`` the
    pre-BN feature f. ``max_images > 0`` uses a seeded random subset of that size. The model's train/eval mode is
    restored afterwards. Images are read through `batch_loader.make_reid_loader` (``num_workers``: a number or
    "auto").
    """
    if kind not in ("retrieval", "feat"):
        raise ValueError(f"extract_features: kind must be 'retrieval' or 'feat', got {kind!r}")
    if hasattr(dataset, "eval"):
        dataset = dataset.eval()
    if 0 < max_images < len(dataset):
        gen = torch.Generator().manual_seed(seed)
        indices = torch.randperm(len(dataset), generator=gen)[:max_images].sort().values.tolist()
        dataset = dataset.subset(indices)
    loader = make_reid_loader(dataset, batch_size=batch_size, num_workers=num_workers, device=device)
    was_training = model.training
    model.eval()
    feats, labels, mods = [], [], []
    try:
        for batch in loader:
            x, pid, modality = batch[0].to(device), batch[1], batch[3].to(device)
            if kind == "retrieval":
                out = model(x, modality)
            else:
                out = model.forward_features(x, modality)[0]
            feats.append(out.float().cpu())
            labels.append(torch.as_tensor(pid).long())
            mods.append(modality.long().cpu())
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("extract_features: the dataset is empty")
    return torch.cat(feats), torch.cat(labels), torch.cat(mods)
