"""The ``ckda`` command: run the VI-LReID leaderboard, write the leaderboard and plots, generate and check data.

    ckda run --methods ckda,finetune --seeds 0 1 --preset cpu --data synthetic --out results/RUN [--resume
             [--resume-override]]
    ckda leaderboard RUN_DIR... [--out DIR]
    ckda plot RUN_DIR... [--out DIR] [--formats png svg pdf]
    ckda data synth --out DIR [--seed N] [--scale S]
    ckda data check ROOT
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
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
    from ckda_avalanche.runner.validate import load_run_config

    config = load_run_config(args.preset, args.config or None)  # errors name the file and the dotted field
    if args.pretrained:
        config = dataclasses.replace(config, pretrained=str(args.pretrained))  # checked by validate_run
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
    """Validate the whole run first (one-line errors; nothing trained or written), lock OUT, then train and report."""
    from ckda_avalanche.runner.lock import RunLock
    from ckda_avalanche.runner.validate import validate_run

    validate_run(config=_resolve_config(args), methods=args.methods, seeds=args.seeds, out=args.out, data=args.data,
                 synthetic_dir=args.synthetic_dir, resume=args.resume, override=args.resume_override,
                 config_file=args.config or None, pretrained_flag=args.pretrained, device=args.device,
                 formats=args.formats)
    with RunLock(Path(args.out)):
        return _train_and_report(args)


def _train_and_report(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
    from ckda_avalanche.models import get_model_config
    from ckda_avalanche.reporting.leaderboard import write_leaderboard
    from ckda_avalanche.reporting.plots import plot_runs
    from ckda_avalanche.runner.session_runner import RunSpec, method_config, run_single, stream_overrides
    from ckda_avalanche.strategies import STRATEGIES

    unknown = [m for m in args.methods if m not in STRATEGIES]
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; available: {sorted(STRATEGIES)}")
    config = _resolve_config(args)
    root = _data_root(args, config)
    out = Path(args.out)
    img_size = tuple(get_model_config(config.model).img_size)
    benchmarks: dict[str, object] = {}
    started = time.perf_counter()
    jobs = [(m, s) for m in args.methods for s in args.seeds]
    for method, seed in tqdm(jobs, desc="runs", disable=args.no_progress, dynamic_ncols=True):
        extra = stream_overrides(method_config(method, config))
        key = repr(sorted(extra.items()))
        if key not in benchmarks:
            benchmarks[key] = vi_lreid_benchmark(root, datasets=config.datasets, protocol=config.protocol,
                                                 img_size=img_size, **extra)
        spec = RunSpec(method=method, seed=seed, run_name=out.name, run_dir=out / method / f"seed{seed}",
                       config=config)
        run_single(spec, benchmarks[key], resume=args.resume, device=args.device, progress=not args.no_progress,
                   override=args.resume_override)
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
    run.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds, integers >= 0 (default: 0)")
    run.add_argument("--preset", default="cpu", help="run preset: cpu (default), paper or test")
    run.add_argument("--config", help="YAML/JSON file overriding RunConfig fields (nested: train, method_overrides)")
    run.add_argument("--data", default="synthetic",
                     help="'synthetic' (generated if missing) or a folder with RegDB/, SYSU-MM01/, LLCM/, HITSZ-VCM/")
    run.add_argument("--synthetic-dir", default=str(DEFAULT_SYNTHETIC_DIR),
                     help=f"where synthetic data lives (default: {DEFAULT_SYNTHETIC_DIR})")
    run.add_argument("--pretrained", help="local ImageNet ViT checkpoint (.pth, .safetensors or .npz)")
    run.add_argument("--out", required=True, help="run folder (OUT/<method>/seed<k>/ per run)")
    run.add_argument("--resume", action="store_true", help="continue runs in OUT from their last finished session")
    run.add_argument("--resume-override", action="store_true",
                     help="with --resume: continue even though the settings differ from a run's config.json (the "
                          "change is recorded there); without it such a resume is refused with the differences")
    run.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    run.add_argument("--formats", nargs="+", default=["png"], help="plot formats (png, svg, pdf)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
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


def _one_line_warnings(show):  # noqa: ANN001, ANN202 - warnings.showwarning's signature
    """A ``warnings.showwarning`` printing a left-out run as one ``ckda: warning:`` line; others as before."""
    from ckda_avalanche.reporting.run_checks import RunLeftOutWarning

    def showwarning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
        if issubclass(category, RunLeftOutWarning):
            print(f"ckda: warning: {message}", file=sys.stderr, flush=True)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(warnings.showwarning)
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted: finished sessions are saved; rerun with --resume to continue", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI reports known errors in one line
        from ckda_avalanche.benchmarks.errors import DatasetLayoutError
        from ckda_avalanche.benchmarks.synthetic import SyntheticParametersError
        from ckda_avalanche.reporting.run_checks import NoRunToReportError
        from ckda_avalanche.runner.lock import RunLockedError
        from ckda_avalanche.runner.overrides import ConfigError
        from ckda_avalanche.runner.run_state import RunStateError
        from ckda_avalanche.runner.session_runner import RunExistsError, RunFailedError

        if isinstance(exc, (DatasetLayoutError, SyntheticParametersError, ConfigError, RunExistsError, RunFailedError,
                            RunStateError, RunLockedError, NoRunToReportError)):
            print(f"ckda: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
