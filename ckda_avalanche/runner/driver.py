"""The run driver behind ``ckda run`` / ``ckda ablate``: settings, validation, tasks, executor, leaderboard.

`run_command` reads the settings once (`resolve_config`), validates the whole run and resolves every method once
(`validate.validate_run`), locks ``OUT`` (`lock.RunLock`), prepares the data (`data_root`), builds one
`task.RunTask` per (method, seed) carrying its resolved method, hands the tasks to the executor
(`executors.run_grid`) and writes the leaderboard, the ablation table and the plots from the tidy CSVs. The
command line itself (`ckda_avalanche.cli`) only parses the arguments.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_SYNTHETIC_DIR", "READER_FLAGS", "data_root", "executor_options", "resolve_config", "run_command"]

DEFAULT_SYNTHETIC_DIR = Path("data") / "synthetic"
"""Where synthetic data lives unless ``--synthetic-dir`` says otherwise (one folder per draw below it)."""

READER_FLAGS: dict[str, tuple[str, str]] = {
    "regdb_trial": ("regdb", "trial"), "llcm_max_train_label": ("llcm", "max_train_label"),
    "vcm_tracklet_feature": ("vcm", "tracklet_feature"), "vcm_frames_per_tracklet": ("vcm", "frames_per_tracklet"),
    "vcm_camera_filter": ("vcm", "camera_filter"),
}
"""``ckda run`` flags setting reader options (``readers.<dataset>.<field>`` of the config file, which they override)."""


def resolve_config(args: argparse.Namespace) -> Any:
    """The run's `RunConfig`: the preset, ``--config``, ``--synthetic-seed``, ``--pretrained`` and the reader flags."""
    from ckda_avalanche.runner.validate import load_run_config

    config = load_run_config(args.preset, args.config or None)  # errors name the file and the dotted field
    if getattr(args, "synthetic_seed", None) is not None:  # --synthetic-seed N: the generator draw N
        config = dataclasses.replace(config, synthetic_seed=int(args.synthetic_seed))
    if args.pretrained:
        # "none" turns the preset's pretrained start off; anything else is a built-in name or a file (validate_run)
        value = None if str(args.pretrained).lower() == "none" else str(args.pretrained)
        config = dataclasses.replace(config, pretrained=value)
    return _reader_flags(args, config)


def _reader_flags(args: argparse.Namespace, config: Any) -> Any:
    from ckda_avalanche.runner.overrides import apply_overrides

    readers: dict[str, dict[str, object]] = {}
    for flag, (dataset, field) in READER_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            readers.setdefault(dataset, {})[field] = value
    return apply_overrides(config, {"readers": readers}, where="") if readers else config


def data_root(args: argparse.Namespace, config: Any) -> Path:
    """The datasets' folder: ``--data``, or the synthetic draw of ``config`` (generated when missing)."""
    if args.data != "synthetic":
        root = Path(args.data)
        if not root.is_dir():
            raise SystemExit(f"--data {root}: not a folder (expected 'synthetic' or a folder holding the datasets)")
        return root
    from ckda_avalanche.benchmarks.synthetic import generate_synthetic, synthetic_folder

    root = Path(args.synthetic_dir) if args.synthetic_dir else synthetic_folder(
        DEFAULT_SYNTHETIC_DIR, seed=config.synthetic_seed, scale=config.synthetic_scale)
    start = time.perf_counter()
    summary = generate_synthetic(root, seed=config.synthetic_seed, scale=config.synthetic_scale)
    print(f"synthetic data: {root} (seed {summary.seed}, scale {summary.scale}; ready in "
          f"{time.perf_counter() - start:.1f} s)", flush=True)
    return root


def executor_options(args: argparse.Namespace) -> Any:
    """`ExecutorOptions` of the command line (a bad value fails here, before anything else)."""
    from ckda_avalanche.runner.executors import ExecutorOptions

    return ExecutorOptions(executor=args.executor, ray_address=args.ray_address, cpus_per_run=args.cpus_per_run,
                           gpus_per_run=args.gpus_per_run, max_retries=args.max_retries,
                           progress=not args.no_progress)


def run_command(args: argparse.Namespace) -> int:
    """Validate the whole run first (one-line errors; nothing trained or written), lock OUT, then train and report."""
    from ckda_avalanche.runner.lock import RunLock
    from ckda_avalanche.runner.scale_guard import check_paper_scale
    from ckda_avalanche.runner.validate import validate_run

    options = executor_options(args)  # bad --executor/--ray-address/--cpus-per-run/--gpus-per-run: fail first
    config = resolve_config(args)
    methods = validate_run(config=config, methods=args.methods, seeds=args.seeds, out=args.out, data=args.data,
                           synthetic_dir=args.synthetic_dir, resume=args.resume, override=args.resume_override,
                           config_file=args.config or None, pretrained_flag=args.pretrained, device=args.device,
                           formats=args.formats)
    check_paper_scale(config, preset=args.preset, config_file=args.config or None, pretrained_flag=args.pretrained,
                      device=args.device, executor=args.executor, gpus_per_run=args.gpus_per_run)
    with RunLock(Path(args.out)):
        return _train_and_report(args, config, methods, options)


def _train_and_report(args: argparse.Namespace, config: Any, methods: Sequence[Any], options: Any) -> int:
    from ckda_avalanche.reporting.ablation import write_ablation
    from ckda_avalanche.reporting.leaderboard import write_leaderboard
    from ckda_avalanche.reporting.plots import plot_runs
    from ckda_avalanche.reporting.tidy_data import load_tidy
    from ckda_avalanche.runner.executors import run_grid
    from ckda_avalanche.runner.fault_injection import FAULT_ENV
    from ckda_avalanche.runner.task import RunTask

    root = data_root(args, config)
    out = Path(args.out)
    started = time.perf_counter()
    tasks = [RunTask(method=method, seed=seed, run_dir=out / method.name / f"seed{seed}", config=config,
                     run_name=out.name, data_root=root, resume=args.resume, device=args.device,
                     threads=options.threads(), loggers=tuple(args.logger or ()), progress=not args.no_progress,
                     keep_sessions=args.keep_session_checkpoints, override=args.resume_override,
                     executor=args.executor, fault=os.environ.get(FAULT_ENV) or None,
                     compile_model=bool(getattr(args, "compile", False)))
             for method in methods for seed in args.seeds]
    run_grid(tasks, options)
    print(f"trained and evaluated {len(tasks)} run(s) in {time.perf_counter() - started:.0f} s", flush=True)
    if args.keep_session_checkpoints:
        _print_kept_size([task.run_dir for task in tasks], out)
    frame = load_tidy([out])  # read (and screened, with warnings) once for both tables
    csv_path, md_path = write_leaderboard(frame, out)
    ablation = write_ablation(frame, out)
    plots = plot_runs([out], out / "plots", formats=tuple(args.formats))
    print(md_path.read_text(encoding="utf-8"))
    print(f"leaderboard: {md_path} and {csv_path}")
    if ablation is not None:
        print(f"ablation table: {ablation[1]} and {ablation[0]}")
    print("plots:\n" + "\n".join(f"  {p}" for p in plots))
    return 0


def _print_kept_size(run_dirs: Sequence[Path], out: Path) -> None:
    from ckda_avalanche.runner.session_models import kept_sessions, session_models_bytes

    total = sum(session_models_bytes(d) for d in run_dirs)
    files = sum(len(kept_sessions(d)) for d in run_dirs)
    print(f"kept per-session models: {files} file(s), {total / 2**20:.1f} MiB in {out}/<method>/seed<k>/sessions/ "
          f"({total / max(files, 1) / 2**20:.2f} MiB per session)", flush=True)
