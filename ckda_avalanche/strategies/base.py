"""`ReIDTemplate`: the Avalanche strategy template every ReID method of this package builds on.

It adapts Avalanche's `SupervisedTemplate` to lifelong VI-ReID as CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv
2511.15016) trains it (docs/method.md §2 and §6):

- training batches come from the identity-balanced cross-modality sampler (P ids x K visible + same ids x K IR);
- each session gets a new classifier over its own identities (`experience.reid.num_identities`; never on eval
  experiences), a new AdamW (ViT blocks + patch embedding at `backbone_lr_mult` x lr) and a new per-iteration
  warm-up + cosine schedule (`strategies/optim.py`);
- labels are made session-local (minus `experience.reid.label_offset`) before the criterion;
- the forward passes each sample's modality (`mbatch[3]`);
- mixed precision per `TrainConfig.amp` (`strategies/precision.py` says where it is used);
- the loss is checked to be finite every step (error names session, epoch and iteration);
- `state_dict()` / `load_state_dict()` cover the model, every plugin with state, the Avalanche clock and the
  evaluator's metric state (`strategies/state.py`), so a restored strategy continues exactly; `memory_report()`
  sums the model and plugin memory;
- the plugin list is checked at construction (`plugins/checks.py`: CKDA plugin order, Avalanche plugins that cannot
  drive a ReID model).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import nn
from torch.optim import Optimizer

from ckda_avalanche.benchmarks.batch_loader import make_reid_loader
from ckda_avalanche.benchmarks.sample import VISIBLE
from ckda_avalanche.benchmarks.sampler import batches_per_epoch_for, make_identity_batch_loader
from ckda_avalanche.losses.reid_criterion import ReIDCriterion
from ckda_avalanche.plugins.checks import check_plugin_list
from ckda_avalanche.strategies.config import TrainConfig
from ckda_avalanche.strategies.optim import build_optimizer, make_scheduler, rebuild_optimizer
from ckda_avalanche.strategies.precision import autocast_context, resolve_amp_dtype
from ckda_avalanche.strategies.state import (
    clock_state,
    evaluator_state,
    keyed_by_class,
    load_clock_state,
    load_evaluator_state,
)

__all__ = ["ReIDTemplate", "enable_tf32", "resolve_device", "silent_evaluator", "tensor_bytes"]


def enable_tf32() -> None:
    """TF32 tensor cores for float32 matmuls and convolutions on CUDA (autocast regions are unaffected; on the CPU
    nothing changes)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def resolve_device(device: str | torch.device) -> torch.device:
    """"auto" -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def silent_evaluator() -> EvaluationPlugin:
    """An evaluator with no metric and no logger (Avalanche's default accuracy metric cannot read ReID outputs)."""
    return EvaluationPlugin(loggers=[])


def tensor_bytes(tensors: Any) -> int:
    """Total bytes of the tensors in a (nested) dict / list / tuple / tensor / module."""
    if isinstance(tensors, torch.Tensor):
        return tensors.numel() * tensors.element_size()
    if isinstance(tensors, nn.Module):
        return tensor_bytes(list(tensors.state_dict(keep_vars=True).values()))
    if isinstance(tensors, dict):
        return sum(tensor_bytes(v) for v in tensors.values())
    if isinstance(tensors, (list, tuple)):
        return sum(tensor_bytes(v) for v in tensors)
    return 0


class ReIDTemplate(SupervisedTemplate):
    """Supervised template for lifelong VI-ReID streams (minibatch ``(image, pid, camid, modality, task)``)."""

    sizes_classifier_per_session: ClassVar[bool] = True
    """It creates a classifier over each session's identities itself (`plugins.checks.check_identity_head`)."""
    FINITE_CHECK_EVERY: int = 50
    """On CUDA, iterations between two reads of the device-side finite-loss test (each read synchronises)."""

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: Optimizer | None = None,
        criterion: Callable[..., torch.Tensor] | None = None,
        config: TrainConfig = TrainConfig(),
        train_epochs: int | None = None,
        eval_mb_size: int = 64,
        device: str | torch.device = "auto",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] | None = silent_evaluator,
        eval_every: int = -1,
    ) -> None:
        """``optimizer=None`` builds AdamW from ``config``; a given optimiser is re-created each session with its
        class and defaults. ``criterion=None`` is `ReIDCriterion` with default weights. ``train_epochs=None`` uses
        ``config.epochs``. The training batch size is ``config.train_mb_size`` (2 P K)."""
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
        epochs = config.epochs if train_epochs is None else train_epochs
        if epochs < 1:
            raise ValueError(f"train_epochs: expected >= 1, got {epochs}")
        check_plugin_list(list(plugins or []))
        self._user_optimizer = optimizer is not None
        resolved = resolve_device(device)
        self.amp_dtype: torch.dtype | None = resolve_amp_dtype(config.amp, resolved)
        """Autocast dtype in use (None: float32)."""
        super().__init__(
            model=model,
            optimizer=optimizer if optimizer is not None else build_optimizer(model, config),
            criterion=criterion if criterion is not None else ReIDCriterion(),
            train_mb_size=config.train_mb_size,
            train_epochs=epochs,
            eval_mb_size=eval_mb_size,
            device=resolved,
            plugins=plugins,
            evaluator=evaluator,
            eval_every=eval_every,
        )
        self.config = config
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        """Per-iteration warm-up + cosine schedule of the current session."""
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.label_offset: int = 0
        """Label offset of the current training session (subtracted from pids before the criterion)."""
        self.sessions_trained: int = 0
        """Number of training sessions completed (saved in `state_dict`)."""
        self.train_steps: int = 0
        """Optimiser steps of the current (or last) training session (the runner logs it as ``train_steps``)."""
        self._nonfinite: torch.Tensor | None = None  # CUDA: device-side "a loss was not finite" since the last check
        self._nonfinite_since: tuple[int, int] = (0, 0)
        self._compiled: Callable[..., Any] | None = None
        if self.device.type == "cuda":
            enable_tf32()

    def compile_model(self, **options: Any) -> None:
        """Train through ``torch.compile(self.model, **options)`` (the model object, its ``state_dict`` and every
        copy of it a plugin makes stay the plain module; evaluation runs uncompiled)."""
        self._compiled = torch.compile(self.model, **options)

    # ------------------------------------------------------------------ session setup
    def session_info(self, experience: Any = None) -> Any:
        """``experience.reid`` (ReIDExperienceInfo) of ``experience`` or the current one, with a clear error."""
        experience = self.experience if experience is None else experience
        info = getattr(experience, "reid", None)
        if info is None:
            raise AttributeError(
                "ReIDTemplate: the experience has no `reid` attribute (ReIDExperienceInfo); build the stream with "
                "ckda_avalanche.benchmarks.streams.vi_lreid_benchmark"
            )
        return info

    @property
    def session_index(self) -> int:
        """Index of the current experience in its stream."""
        return int(getattr(self.experience, "current_experience", self.sessions_trained))

    upper_bound: bool = False
    """True for a reference point that is not held to the shared budget (Joint): the leaderboard labels it."""

    def epoch_over_whole_training_set(self) -> bool:
        """Whether `epoch_batches` counts the method's whole training set: not with `TrainConfig.equal_iterations`
        (the default: every method the same steps), unless the method overrides this (Joint, the upper bound)."""
        return not self.config.equal_iterations

    def epoch_batches(self) -> int:
        """Batches per epoch of this session under `TrainConfig.epoch_length`, counted on the session's own
        training set with `TrainConfig.equal_iterations` (the same for every method), else on the method's whole
        training set (Joint's union, Replay's exemplars included): `epoch_over_whole_training_set`."""
        if not self.epoch_over_whole_training_set():
            samples = self.session_info().samples
            pids = [s.pid for s in samples]
            modalities = [s.modality for s in samples]
        else:
            pids, modalities = list(self.adapted_dataset.targets), list(self.adapted_dataset.modality)
        visible = sum(1 for m in modalities if int(m) == VISIBLE)
        return batches_per_epoch_for(
            self.config.epoch_length, num_identities=len(set(int(p) for p in pids)), num_visible=visible,
            num_infrared=len(modalities) - visible, identities_per_batch=self.config.num_identities,
            instances_per_identity=self.config.num_instances)

    def make_train_dataloader(self, **kwargs: Any) -> None:
        """Identity-balanced cross-modality batches (P ids x K visible + the same ids x K infrared), `epoch_batches`
        per epoch, augmented per batch on the strategy's device; workers (`TrainConfig.num_workers`) persist across
        the session's epochs."""
        info = getattr(self.experience, "reid", None)
        if info is not None and info.samples and not self.config.allow_unpaired_identities:
            from ckda_avalanche.benchmarks.datasets.problems import DatasetProblemsError, one_modality_identities

            problems = one_modality_identities(info.dataset, info.samples)  # the dataset's own labels and files
            if problems:
                raise DatasetProblemsError(problems)
        self.dataloader = make_identity_batch_loader(
            self.adapted_dataset,
            num_identities=self.config.num_identities,
            num_instances=self.config.num_instances,
            batches_per_epoch=self.epoch_batches(),
            seed=self.config.seed * 1000 + self.session_index,
            allow_unpaired=self.config.allow_unpaired_identities,
            num_workers=self.config.num_workers,
            persistent_workers=True,
            device=self.device,
        )

    def make_eval_dataloader(self, num_workers: int | str | None = None, shuffle: bool = False,
                             pin_memory: bool | None = None, persistent_workers: bool = False, **kwargs: Any) -> None:
        """Evaluation batches of ``eval_mb_size`` in dataset order (the n-th feature is ``samples[n]``), transformed
        per batch on the strategy's device; ``num_workers`` defaults to `TrainConfig.num_workers`."""
        if shuffle:
            raise ValueError("ReIDTemplate evaluates in dataset order: shuffle=True is not supported")
        self.dataloader = make_reid_loader(
            self.adapted_dataset, batch_size=self.eval_mb_size,
            num_workers=self.config.num_workers if num_workers is None else num_workers, device=self.device,
            pin_memory=pin_memory, persistent_workers=persistent_workers)

    def check_model_and_optimizer(self, **kwargs: Any) -> None:
        """Every session: adapt the model (new classifier), then a new optimiser and schedule."""
        self.model = self.model_adaptation()
        self.make_optimizer()

    def classifier_labels(self) -> tuple[int, int]:
        """(label offset, number of classes) of this training session's classifier: the session's own identities.

        Methods whose classifier spans more identities (Joint, Replay) override this rather than resetting the
        classifier a second time: every reset draws new random weights, which would shift the random stream and
        break the session-1 parity of methods that train alike in their first session."""
        info = self.session_info()
        return int(info.label_offset), int(info.num_identities)

    def model_adaptation(self, model: nn.Module | None = None) -> nn.Module:
        """Avalanche's dynamic-module adaptation; in training also one new classifier (`classifier_labels`)."""
        model = super().model_adaptation(model)
        if self.is_training:
            self.label_offset, count = self.classifier_labels()
            model.reset_classifier(count)
            model.to(self.device)
        return model

    def make_optimizer(self, **kwargs: Any) -> None:
        """A new optimiser over the current parameters and a new per-iteration schedule for this session."""
        if self._user_optimizer:
            self.optimizer = rebuild_optimizer(self.optimizer, self.model, self.config)
        else:
            self.optimizer = build_optimizer(self.model, self.config)
        iterations = len(self.dataloader) if hasattr(self.dataloader, "__len__") else 1
        self.scheduler = make_scheduler(self.optimizer, self.config, iterations_per_epoch=max(1, iterations),
                                        epochs=self.train_epochs)

    # ------------------------------------------------------------------ one step
    @property
    def mb_modality(self) -> torch.Tensor:
        """Modality of each sample of the current minibatch (``mbatch[3]``)."""
        return self.mbatch[3]

    @property
    def mb_local_y(self) -> torch.Tensor:
        """Session-local labels of the current training minibatch (pid - label_offset)."""
        return self.mb_y - self.label_offset

    def autocast(self):
        """The mixed-precision context of this strategy (null context when ``amp_dtype`` is None)."""
        return autocast_context(self.device, self.amp_dtype)

    def forward(self) -> Any:
        """``model(x, modality)``; in eval the feature is returned as float32."""
        model = self._compiled if self._compiled is not None and self.is_training else self.model
        with self.autocast():
            output = model(self.mb_x, self.mb_modality)
        if not self.is_training and isinstance(output, torch.Tensor):
            output = output.float()
        return output

    def criterion(self) -> torch.Tensor:
        """The criterion on session-local labels in training; on the raw pids (and a zero loss) in eval."""
        if self.is_training:
            return self._criterion(self.mb_output, self.mb_local_y)
        return self._criterion(self.mb_output, self.mb_y)

    def training_epoch(self, **kwargs: Any) -> None:
        """Avalanche's SGD update loop with autocast around forward + criterion + plugin loss terms, a finite-loss
        check, optional gradient scaling/clipping and a per-iteration schedule step."""
        for self.mbatch in self.dataloader:
            if self._stop_training:
                break
            self._unpack_minibatch()
            self._before_training_iteration(**kwargs)
            self.optimizer.zero_grad(set_to_none=True)
            self.loss = self._make_empty_loss()
            with self.autocast():
                self._before_forward(**kwargs)
                self.mb_output = self.forward()
                self._after_forward(**kwargs)
                self.loss += self.criterion()
                self._before_backward(**kwargs)
            self._check_finite_loss()
            self.backward()
            self._after_backward(**kwargs)
            self._before_update(**kwargs)
            self.optimizer_step()
            self._after_update(**kwargs)
            self._after_training_iteration(**kwargs)
        self._flush_finite_check()

    def _check_finite_loss(self) -> None:
        """Stop on a non-finite loss. On the CPU every step; on CUDA the test stays on the device and is read every
        `FINITE_CHECK_EVERY` steps and at the end of each epoch (reading it forces a host synchronisation)."""
        if self.device.type == "cuda":
            bad = ~torch.isfinite(self.loss.detach()).all()
            if self._nonfinite is None:
                self._nonfinite = bad
                self._nonfinite_since = (int(self.clock.train_exp_epochs), int(self.clock.train_epoch_iterations))
            else:
                self._nonfinite |= bad
            if int(self.clock.train_epoch_iterations) - self._nonfinite_since[1] + 1 >= self.FINITE_CHECK_EVERY:
                self._flush_finite_check()
            return
        if not bool(torch.isfinite(self.loss).all()):
            name = getattr(self.session_info(), "dataset", "?")
            raise FloatingPointError(
                # 1-based like the CSV's train_exp (session 1 = the first dataset), the progress bar's epochs and
                # the fault-injection instants
                f"non-finite training loss ({float(self.loss.detach().float())}) in session {self.session_index + 1} "
                f"({name}), epoch {self.clock.train_exp_epochs + 1}/{self.train_epochs}, iteration "
                f"{self.clock.train_epoch_iterations + 1}"
            )

    def _flush_finite_check(self) -> None:
        if self._nonfinite is None:
            return
        bad, (epoch, first) = bool(self._nonfinite), self._nonfinite_since
        self._nonfinite = None
        if bad:
            name = getattr(self.session_info(), "dataset", "?")
            raise FloatingPointError(
                f"non-finite training loss in session {self.session_index + 1} ({name}), epoch {epoch + 1}/"
                f"{self.train_epochs}, iterations {first + 1}-{int(self.clock.train_epoch_iterations) + 1} (on CUDA "
                f"the check is read every {self.FINITE_CHECK_EVERY} iterations)"
            )

    def backward(self) -> None:
        if self.scaler is not None:
            self.scaler.scale(self.loss).backward(retain_graph=self.retain_graph)
        else:
            self.loss.backward(retain_graph=self.retain_graph)

    def optimizer_step(self) -> None:
        self.train_steps += 1
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.config.grad_clip_norm > 0:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()

    def _before_training_exp(self, **kwargs: Any) -> None:
        self.train_steps = 0
        super()._before_training_exp(**kwargs)

    def _after_training_exp(self, **kwargs: Any) -> None:
        super()._after_training_exp(**kwargs)
        self.sessions_trained += 1

    # ------------------------------------------------------------------ state
    def stateful_plugins(self) -> dict[str, Any]:
        """Plugins that keep state between sessions (have ``state_dict``), keyed by class name (``#n`` if repeated)."""
        return keyed_by_class(
            plugin for plugin in self.plugins
            if callable(getattr(plugin, "state_dict", None)) and callable(getattr(plugin, "load_state_dict", None)))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue after a session: model weights, sessions trained, plugin states, the
        Avalanche clock (``train_exp`` of later results) and the evaluator's state (metric history, values returned
        by ``eval()`` and ``get_all_metrics()``; `strategies.state`)."""
        return {
            "model": self.model.state_dict(),
            "sessions_trained": self.sessions_trained,
            "plugins": {key: plugin.state_dict() for key, plugin in self.stateful_plugins().items()},
            "clock": clock_state(self.clock),
            "evaluator": evaluator_state(self.evaluator),
        }

    def load_state_dict(self, state: dict[str, Any], *, strict_metrics: bool = True) -> None:
        """Inverse of `state_dict`; the classifier is resized to the saved one before loading.

        The evaluator's stateful metrics must match the saved ones unless ``strict_metrics`` is False (then the
        common ones are loaded and a warning names the others, e.g. to evaluate a checkpoint without metrics).
        States saved before the clock and evaluator entries existed: `strategies.state.upgrade_legacy_state`.
        """
        for key in ("model", "sessions_trained", "plugins"):
            if key not in state:
                raise KeyError(f"ReIDTemplate.load_state_dict: missing entry {key!r}")
        for key in ("clock", "evaluator"):
            if key not in state:
                raise KeyError(f"ReIDTemplate.load_state_dict: missing entry {key!r} (a state saved by an older "
                               "ckda-avalanche; convert it with ckda_avalanche.strategies.state.upgrade_legacy_state)")
        model_state = state["model"]
        classifier = [k for k in model_state if k.endswith("classifier.weight")]
        if hasattr(self.model, "reset_classifier"):
            self.model.reset_classifier(int(model_state[classifier[0]].shape[0]) if classifier else 0)
        self.model.load_state_dict(model_state)
        self.model.to(self.device)
        self.sessions_trained = int(state["sessions_trained"])
        plugins = self.stateful_plugins()
        unknown = sorted(set(state["plugins"]) - set(plugins))
        missing = sorted(set(plugins) - set(state["plugins"]))
        if unknown or missing:
            raise KeyError(f"ReIDTemplate.load_state_dict: plugin states do not match the strategy's plugins "
                           f"(saved but absent: {unknown}; present but not saved: {missing})")
        for key, plugin in plugins.items():
            if callable(getattr(plugin, "bind_template", None)):
                plugin.bind_template(self.model)
            plugin.load_state_dict(state["plugins"][key])
        load_clock_state(self.clock, state["clock"])
        load_evaluator_state(self.evaluator, state["evaluator"], strict=strict_metrics)

    def memory_report(self) -> dict[str, int]:
        """Bytes kept between sessions, by kind: the model, plus each plugin's ``memory_report()``."""
        report = {"strategy/model": tensor_bytes(self.model)}
        for key, plugin in self.stateful_plugins().items():
            if callable(getattr(plugin, "memory_report", None)):
                for kind, value in plugin.memory_report().items():
                    report[f"{key}/{kind}"] = int(value)
        return report
