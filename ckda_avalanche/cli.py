"""The ``ckda`` command: run the VI-LReID leaderboard, write the leaderboard and plots, generate and check data.

    ckda run --methods ckda,finetune --seeds 0 1 --preset cpu --data synthetic --out results/RUN [--resume]
    ckda leaderboard RUN_DIR... [--out DIR]
    ckda plot RUN_DIR... [--out DIR] [--formats png svg pdf]
    ckda data synth --out DIR [--seed N] [--scale S]
    ckda data check ROOT
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

DEFAULT_SYNTHETIC_DIR = Path("data") / "synthetic"


def _methods(text: str) -> list[str]:
    from ckda_avalanche.runner.config import ALL_METHODS

    if text == "all":
        return list(ALL_METHODS)
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of methods, or 'all'")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"method listed twice in {text!r}")
    return names


def _resolve_config(args: argparse.Namespace):
    from ckda_avalanche.runner.config import get_preset
    from ckda_avalanche.runner.overrides import apply_overrides, load_config_file

    config = get_preset(args.preset)
    if args.config:
        config = apply_overrides(config, load_config_file(args.config), where=str(args.config))
    if args.pretrained:
        if not Path(args.pretrained).is_file():
            raise SystemExit(f"--pretrained {args.pretrained}: no such file")
        config = dataclasses.replace(config, pretrained=str(args.pretrained))
    return config


def _data_root(args: argparse.Namespace, config) -> Path:
    if args.data != "synthetic":
        root = Path(args.data)
        if not root.is_dir():
            raise SystemExit(f"--data {root}: not a folder (expected 'synthetic' or a folder holding the datasets)")
        return root
    from ckda_avalanche.benchmarks.synthetic import generate_synthetic

    root = Path(args.synthetic_dir)
    start = time.perf_counter()
    summary = generate_synthetic(root, seed=config.synthetic_seed, scale=config.synthetic_scale)
    print(f"synthetic data: {root} (seed {summary.seed}, scale {summary.scale}; ready in "
          f"{time.perf_counter() - start:.1f} s)", flush=True)
    return root


def cmd_run(args: argparse.Namespace) -> int:
    from ckda_avalanche.reporting.leaderboard import write_leaderboard
    from ckda_avalanche.reporting.plots import plot_runs
    from ckda_avalanche.runner.executors import ExecutorOptions, run_grid
    from ckda_avalanche.runner.worker_fault import FAULT_ENV
    from ckda_avalanche.runner.run_task import RunTask
    from ckda_avalanche.strategies import STRATEGIES

    unknown = [m for m in args.methods if m not in STRATEGIES]
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; available: {sorted(STRATEGIES)}")
    options = ExecutorOptions(executor=args.executor, ray_address=args.ray_address, cpus_per_run=args.cpus_per_run,
                              gpus_per_run=args.gpus_per_run, max_retries=args.max_retries,
                              progress=not args.no_progress)
    config = _resolve_config(args)
    root = _data_root(args, config)
    out = Path(args.out)
    started = time.perf_counter()
    jobs = [(m, s) for m in args.methods for s in args.seeds]
    tasks = [RunTask(method=method, seed=seed, run_name=out.name, run_dir=out / method / f"seed{seed}",
                     config=config, data_root=root, resume=args.resume, device=args.device,
                     threads=options.threads(), loggers=tuple(args.logger or ()), progress=not args.no_progress,
                     executor=args.executor, fault=os.environ.get(FAULT_ENV) or None)
             for method, seed in jobs]
    run_grid(tasks, options)
    print(f"trained and evaluated {len(jobs)} run(s) in {time.perf_counter() - started:.0f} s", flush=True)
    csv_path, md_path = write_leaderboard([out], out)
    plots = plot_runs([out], out / "plots", formats=tuple(args.formats))
    print(md_path.read_text(encoding="utf-8"))
    print(f"leaderboard: {md_path} and {csv_path}")
    print("plots:\n" + "\n".join(f"  {p}" for p in plots))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from ckda_avalanche.reporting.leaderboard import write_leaderboard

    out = Path(args.out) if args.out else Path(args.runs[0])
    csv_path, md_path = write_leaderboard([Path(r) for r in args.runs], out)
    print(md_path.read_text(encoding="utf-8"))
    print(f"leaderboard: {md_path} and {csv_path}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ckda_avalanche.reporting.plots import plot_runs

    out = Path(args.out) if args.out else Path(args.runs[0]) / "plots"
    for path in plot_runs([Path(r) for r in args.runs], out, formats=tuple(args.formats)):
        print(path)
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from ckda_avalanche.benchmarks.synthetic import generate_synthetic

    start = time.perf_counter()
    summary = generate_synthetic(args.out, seed=args.seed, scale=args.scale, overwrite=args.overwrite)
    print(f"synthetic VI-ReID datasets under {args.out} (seed {summary.seed}, scale {summary.scale}) in "
          f"{time.perf_counter() - start:.1f} s")
    return cmd_data_check(argparse.Namespace(root=args.out))


def cmd_data_check(args: argparse.Namespace) -> int:
    from ckda_avalanche.benchmarks.datasets import check_root, format_check_report

    reports = check_root(args.root)
    print(format_check_report(reports))
    return 1 if any(r.error for r in reports) or not reports else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ckda", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and evaluate methods over the VI-LReID stream, then rank and plot them")
    run.add_argument("--methods", type=_methods, default=_methods("all"),
                     help="comma-separated methods, or 'all' (default)")
    run.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default: 0)")
    run.add_argument("--preset", default="cpu", help="run preset: cpu (default), paper or test")
    run.add_argument("--config", help="YAML/JSON file overriding RunConfig fields (nested: train, method_overrides)")
    run.add_argument("--data", default="synthetic",
                     help="'synthetic' (generated if missing) or a folder with RegDB/, SYSU-MM01/, LLCM/, HITSZ-VCM/")
    run.add_argument("--synthetic-dir", default=str(DEFAULT_SYNTHETIC_DIR),
                     help=f"where synthetic data lives (default: {DEFAULT_SYNTHETIC_DIR})")
    run.add_argument("--pretrained", help="local ImageNet ViT checkpoint (.pth, .safetensors or .npz)")
    run.add_argument("--out", required=True, help="run folder (OUT/<method>/seed<k>/ per run)")
    run.add_argument("--resume", action="store_true", help="continue runs in OUT from their last finished session")
    run.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    run.add_argument("--formats", nargs="+", default=["png"], help="plot formats (png, svg, pdf)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local: one run after the other in this process (default); ray: every (method, seed) "
                          "a Ray task, on an embedded local Ray instance or the cluster of --ray-address")
    run.add_argument("--ray-address", help="join this Ray cluster ('auto' or HOST:PORT) instead of starting one")
    run.add_argument("--cpus-per-run", type=float,
                     help="CPUs per run (torch threads follow it); default: 1 with ray, torch's default locally")
    run.add_argument("--gpus-per-run", type=float, default=0.0,
                     help="GPUs per Ray run; a fraction (e.g. 0.25) packs several runs on one GPU (default 0)")
    run.add_argument("--max-retries", type=int, default=3,
                     help="Ray retries of a run whose worker died; it resumes from its last session (default 3)")
    run.add_argument("--logger", action="append", choices=["tensorboard", "wandb"],
                     help="also log scores to TensorBoard (RUN/tensorboard) or W&B (offline, RUN/wandb); "
                          "repeat for both; the tidy CSV stays the source of truth")
    run.set_defaults(func=cmd_run)

    board = sub.add_parser("leaderboard", help="write leaderboard.csv/.md from run folders")
    board.add_argument("runs", nargs="+", help="run folders or tidy CSV files")
    board.add_argument("--out", help="output folder (default: the first run folder)")
    board.set_defaults(func=cmd_leaderboard)

    plot = sub.add_parser("plot", help="draw per-session mAP/Rank-1 curves and forgetting matrices")
    plot.add_argument("runs", nargs="+", help="run folders or tidy CSV files")
    plot.add_argument("--out", help="output folder (default: RUN_DIR/plots)")
    plot.add_argument("--formats", nargs="+", default=["png"], help="png, svg, pdf")
    plot.set_defaults(func=cmd_plot)

    data = sub.add_parser("data", help="synthetic data generation and dataset checks")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    synth = data_sub.add_parser("synth", help="write the four synthetic VI-ReID datasets in official layouts")
    synth.add_argument("--out", required=True)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--scale", type=float, default=1.0, help="identity-count multiplier (default 1.0)")
    synth.add_argument("--overwrite", action="store_true", help="replace existing synthetic data in OUT")
    synth.set_defaults(func=cmd_data_synth)
    check = data_sub.add_parser("check", help="report ids/images/cameras per split, or the layout errors")
    check.add_argument("root")
    check.set_defaults(func=cmd_data_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted: finished sessions are saved; rerun with --resume to continue", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI reports known errors in one line
        from ckda_avalanche.benchmarks.errors import DatasetLayoutError
        from ckda_avalanche.benchmarks.synthetic import SyntheticParametersError
        from ckda_avalanche.runner.executors import ExecutorError
        from ckda_avalanche.runner.overrides import ConfigError
        from ckda_avalanche.runner.session_runner import RunExistsError, RunFailedError

        if isinstance(exc, (DatasetLayoutError, SyntheticParametersError, ConfigError, RunExistsError, RunFailedError,
                            ExecutorError)):
            print(f"ckda: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
