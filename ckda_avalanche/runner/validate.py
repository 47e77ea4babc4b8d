"""Validate a whole ``ckda run`` before any training starts: every bad input is one `ConfigError` line.

`validate_run` is also where the run's methods are resolved, once: it returns the `variants.ResolvedMethod` of
every ``--methods`` name, which the driver puts into the run's tasks (`task.RunTask`).

Messages read ``<file or dotted field or --option>: <what was expected>``; the CLI prints them as
``ckda: error: ...`` and exits with status 2. Checked here (a test per case in ``tests/runner/test_validate.py``):

- the config file: read strictly (duplicated keys refused, ``1e-3`` is a number: `overrides.load_config_file`),
  unknown fields and wrong types (`overrides.apply_overrides`), and every value range: ``train.lr`` finite and
  > 0, ``train.epochs`` / ``train.num_identities`` / ``eval_mb_size`` >= 1, ``model`` registered, ``protocol``
  ``paper`` or ``full``, ``datasets`` known and distinct, ``synthetic_scale`` > 0;
- ``--methods``: every name a registered method (`variants.check_known_method`, the one check of a method name)
  and every variant's items fields of its config (`variants.resolve_methods`);
- ``method_overrides``: a mapping per method, for a known method that has a config and is being run, with values
  its config dataclass accepts;
- ``--seeds`` (integers in [0, 2**32), no repeats), ``--out`` (a folder or a new path, not a file), ``--data``
  (every dataset of the stream has its folder under ROOT), ``--pretrained`` / ``pretrained`` (a readable
  checkpoint that fits the model), ``--device`` (parseable, and present), ``--formats`` (known to matplotlib);
- every ``OUT/<method>/seed<k>/``: refused when it already holds results without ``--resume``
  (`run_folder.refuse_existing`, the one such check); with ``--resume``,
  its ``config.json`` must match the settings (`run_state`) unless ``--resume-override``, and a missing
  ``metrics.csv`` must be rebuildable from the checkpoint.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ckda_avalanche.runner.config import RunConfig, get_preset
from ckda_avalanche.runner.overrides import ConfigError, apply_overrides, load_config_file
from ckda_avalanche.runner.variants import ResolvedMethod, base_method, check_known_method, resolve_methods

__all__ = ["MAX_SEED", "PROTOCOLS", "load_run_config", "validate_run", "validate_run_config"]

MAX_SEED = 2**32 - 1
"""Largest accepted seed (NumPy's legacy seeding takes 32-bit seeds)."""
PROTOCOLS: tuple[str, ...] = ("paper", "full")
"""Evaluation protocols a run may use."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _prefixed(where: str | None, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}" if where else message)


def validate_run_config(config: RunConfig, *, where: str | None = None) -> None:
    """Value ranges of `RunConfig` fields not checked by their types (``where``: the config file, if any)."""
    from ckda_avalanche.benchmarks.streams import DEFAULT_ORDER
    from ckda_avalanche.models.registry import list_models, resolve_name

    try:
        resolve_name(config.model)
    except ValueError:
        raise _prefixed(where, f"model: unknown model {config.model!r}; expected one of "
                               f"{list_models(include_aliases=True)}") from None
    if config.protocol not in PROTOCOLS:
        raise _prefixed(where, f"protocol: expected one of {list(PROTOCOLS)}, got {config.protocol!r}")
    names = list(config.datasets)
    if not names:
        raise _prefixed(where, f"datasets: expected at least one of {list(DEFAULT_ORDER)}")
    unknown = [d for d in names if d not in DEFAULT_ORDER]
    if unknown:
        raise _prefixed(where, f"datasets: unknown dataset {unknown[0]!r}; expected names from "
                               f"{list(DEFAULT_ORDER)}")
    repeated = sorted({d for d in names if names.count(d) > 1})
    if repeated:
        raise _prefixed(where, f"datasets: {repeated[0]!r} listed twice; each dataset is one session")
    if config.eval_mb_size < 1:
        raise _prefixed(where, f"eval_mb_size: expected an integer >= 1, got {config.eval_mb_size}")
    if not (math.isfinite(config.synthetic_scale) and config.synthetic_scale > 0):
        raise _prefixed(where, f"synthetic_scale: expected a finite number > 0, got {config.synthetic_scale}")
    if config.synthetic_seed < 0:
        raise _prefixed(where, f"synthetic_seed: expected an integer >= 0, got {config.synthetic_seed}")
    if not isinstance(config.method_overrides, Mapping):
        raise _prefixed(where, f"method_overrides: expected a mapping of method name to settings, got "
                               f"{config.method_overrides!r}")
    for method, overrides in config.method_overrides.items():
        if not isinstance(overrides, Mapping):
            raise _prefixed(where, f"method_overrides.{method}: expected a mapping of settings, got {overrides!r}")


def load_run_config(preset: str, config_file: str | os.PathLike[str] | None) -> RunConfig:
    """The preset with the config file applied and value ranges checked; errors name the file and dotted field."""
    config = get_preset(preset)
    if config_file is None:
        return config
    where = str(config_file)
    overrides = load_config_file(config_file)  # its errors name the file already
    try:
        config = apply_overrides(config, overrides, where="")
    except ConfigError as exc:
        raise _prefixed(where, str(exc)) from None
    validate_run_config(config, where=where)
    return config


def _check_method_overrides(config: RunConfig, methods: Sequence[str], where: str | None) -> None:
    """The entries of ``method_overrides`` name methods that are run and have settings (the values of those that
    are run were applied, and so checked, when the methods were resolved)."""
    from ckda_avalanche.strategies import METHOD_CONFIGS

    running = sorted({base_method(m) for m in methods})
    for method in config.method_overrides:
        field = f"method_overrides.{method}"
        check_known_method(method, f"{where}: {field}" if where else field)
        if method not in METHOD_CONFIGS:
            raise _prefixed(where, f"{field}: method {method!r} has no settings to override (methods with "
                                   f"settings: {sorted(METHOD_CONFIGS)})")
        if method not in running:
            raise _prefixed(where, f"{field}: {method!r} is not among the methods being run {running}; remove the "
                                   f"entry or add the method to --methods")


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; expected a folder (existing or new) for the run")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"--out {out}: {parent} is a file; expected a folder path")


def _check_data(data: str, synthetic_dir: str | os.PathLike[str] | None, datasets: Sequence[str]) -> None:
    from ckda_avalanche.benchmarks.datasets.check import DATASET_FOLDERS

    if data == "synthetic":
        if synthetic_dir is not None and Path(synthetic_dir).exists() and not Path(synthetic_dir).is_dir():
            raise ConfigError(f"--synthetic-dir {synthetic_dir}: is a file; expected a folder")
        return
    root = Path(data).expanduser()
    if not root.is_dir():
        raise ConfigError(f"--data {data}: not a folder; expected 'synthetic' or a folder holding the datasets")
    folders = {name: names for name, names, _ in DATASET_FOLDERS}
    for name in datasets:
        if not any((root / folder).is_dir() for folder in folders[name]):
            raise ConfigError(f"--data {data}: no {' or '.join(f'{f}/' for f in folders[name])} folder for dataset "
                              f"{name!r}; expected it under {root} (or drop {name!r} from datasets)")


def _check_pretrained(config: RunConfig, where: str) -> None:
    from ckda_avalanche.models import create_model
    from ckda_avalanche.models.weights_file import BUILTIN_WEIGHTS, resolve_weights

    path = resolve_weights(str(config.pretrained))
    if not path.is_file():
        builtin = f" (built-in {config.pretrained!r} is missing from the installation)" if str(
            config.pretrained) in BUILTIN_WEIGHTS else ""
        raise ConfigError(f"{where}: no such file{builtin}; expected a local ViT checkpoint (.pth, .safetensors or "
                          f".npz), one of {sorted(BUILTIN_WEIGHTS)}, or 'none'")
    try:
        create_model(config.model, str(path))
    except Exception as exc:  # noqa: BLE001 - torch / numpy / safetensors each raise their own types
        text = _one_line(exc)
        if "pretrained checkpoint" in text:
            raise ConfigError(f"{where}: {text}") from None
        raise ConfigError(f"{where}: cannot read it as a {path.suffix or 'checkpoint'} file of ViT weights "
                          f"({type(exc).__name__}: {text})") from None


def _check_run_dirs(config: RunConfig, methods: Sequence[ResolvedMethod], seeds: Sequence[int], out: Path, *,
                    resume: bool, override: bool) -> None:
    from ckda_avalanche.runner.run_folder import holds_run, refuse_existing
    from ckda_avalanche.runner.run_state import CHECKPOINT, METRICS, config_record, resume_config_problem

    for method in methods:
        for seed in seeds:
            run_dir = out / method.name / f"seed{seed}"
            if run_dir.exists() and not run_dir.is_dir():
                raise ConfigError(f"{run_dir}: is a file; expected the run folder of {method.name} seed {seed}")
            if not holds_run(run_dir):
                continue
            refuse_existing(run_dir, resume=resume)
            ckpt, csv_path = run_dir / CHECKPOINT, run_dir / METRICS
            if not ckpt.exists():
                continue  # the first session never finished: it starts over
            if not override:
                record = config_record(method, seed=seed, run_name=out.name, config=config)
                problem = resume_config_problem(run_dir, record)
                if problem:
                    raise ConfigError(problem)
            if not csv_path.exists():
                state = _read_json(run_dir / "state.json")
                if state is not None and int(state.get("sessions_done", 0)) > 0 and not state.get(
                        "csv_in_checkpoint"):
                    raise ConfigError(f"{csv_path}: missing, and {ckpt} (written by an older version) holds no copy "
                                      f"of its rows; restore metrics.csv from a backup, or delete {run_dir} to "
                                      f"rerun")


def _check_device(device: str) -> None:
    import torch

    if device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {device}: expected auto, cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available here; use cpu or auto")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: expected an index below {torch.cuda.device_count()} (the CUDA "
                              f"devices here)")
    elif parsed.type not in ("cpu", "mps"):
        raise ConfigError(f"--device {device}: expected auto, cpu, cuda or cuda:N")


def _check_formats(formats: Sequence[str]) -> None:
    from matplotlib.backend_bases import FigureCanvasBase

    supported = FigureCanvasBase.get_supported_filetypes()
    unknown = [f for f in formats if f not in supported]
    if unknown:
        raise ConfigError(f"--formats: unknown plot format {unknown[0]!r}; expected some of {sorted(supported)}")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def validate_run(
    *, config: RunConfig, methods: Sequence[str], seeds: Sequence[int], out: str | os.PathLike[str], data: str,
    synthetic_dir: str | os.PathLike[str] | None = None, resume: bool = False, override: bool = False,
    config_file: str | os.PathLike[str] | None = None, pretrained_flag: str | None = None, device: str = "auto",
    formats: Sequence[str] = ("png",),
) -> list[ResolvedMethod]:
    """Check everything a ``ckda run`` needs before it trains (see the module docstring); raise `ConfigError`.

    Returns the resolved methods, in the order of ``methods`` (canonical names: ``ckda[no_merge+no_cka]`` comes back
    as ``ckda[no_cka+no_merge]``)."""
    where = None if config_file is None else str(config_file)
    validate_run_config(config, where=where)
    if override and not resume:
        raise ConfigError("--resume-override: only meaningful with --resume")
    bad = [s for s in seeds if not 0 <= int(s) <= MAX_SEED]
    if bad:
        raise ConfigError(f"--seeds: expected integers in [0, {MAX_SEED}], got {bad[0]}")
    repeated = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if repeated:
        raise ConfigError(f"--seeds: seed {repeated[0]} given twice")
    resolved = resolve_methods(methods, config.method_overrides, where="--methods", source=where)
    _check_method_overrides(config, methods, where)
    out_path = Path(out)
    _check_out(out_path)
    _check_device(device)
    _check_formats(formats)
    _check_data(data, synthetic_dir, config.datasets)
    if config.pretrained:
        source = (f"--pretrained {pretrained_flag}" if pretrained_flag
                  else f"{where}: pretrained" if where else f"pretrained {config.pretrained}")
        _check_pretrained(config, source)
    _check_run_dirs(config, resolved, [int(s) for s in seeds], out_path, resume=resume, override=override)
    return resolved
