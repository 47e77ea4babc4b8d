"""The ``ckda`` command: run the VI-LReID leaderboard, write the leaderboard and plots, generate and check data.

    ckda run --methods ckda,finetune --seeds 0 1 --preset cpu --data synthetic --out results/RUN [--resume [--resume-override]]
    ckda run --methods 'ckda,ckda[no_msp],ckda[no_cka+no_merge],ewc[ewc_lambda=100]' ... (variants: runner/variants.py)
    ckda ablate --seeds 0 1 2 --preset cpu --out results/ABL [--quirks]   (CKDA and every ablation of docs/method.md §8)
    ckda eval RUN_DIR... --protocol full [--datasets regdb,sysu]          (re-score kept per-session models)
    ckda leaderboard RUN_DIR... [--out DIR] [--merge-precisions] [--reference finetune]
    ckda claims RUN_DIR... [--out DIR]                                    (the paper's claims, with verdicts)
    ckda plot RUN_DIR... [--out DIR] [--formats png svg pdf] [--merge-precisions]
    ckda show RUN_DIR... --dataset regdb --sessions 1 4 [--pick random|rank-change|ap-change] [--embedding pca|tsne]
    ckda data synth --out DIR [--seed N] [--scale S]
    ckda data check ROOT [--deep [--workers N] [--no-progress]]
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from ckda_avalanche.runner.driver import DEFAULT_SYNTHETIC_DIR, data_root


def _methods(text: str) -> list[str]:
    from ckda_avalanche.runner.overrides import ConfigError
    from ckda_avalanche.runner.variants import parse_method_list

    try:
        return parse_method_list(text)  # names, variants (ckda[no_msp]) and shorthands (all, ablations, quirks)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_run(args: argparse.Namespace) -> int:
    """Validate, lock OUT, train every (method, seed), write the leaderboard and plots (`runner.driver`)."""
    from ckda_avalanche.runner.driver import run_command

    return run_command(args)


def cmd_ablate(args: argparse.Namespace) -> int:
    from ckda_avalanche.runner.variants import QUIRK_METHODS

    if args.quirks:
        args.methods = list(args.methods) + [m for m in QUIRK_METHODS if m not in args.methods]
    return cmd_run(args)


def cmd_eval(args: argparse.Namespace) -> int:
    from ckda_avalanche.runner.reevaluate import RescoreConflictError, reevaluate

    roots: dict[tuple[float, int], Path] = {}

    def root_of(config) -> Path:  # synthetic data is generated (or checked) once per (scale, seed)
        key = (config.synthetic_scale, config.synthetic_seed)
        if key not in roots:
            roots[key] = data_root(args, config)
        return roots[key]

    requested = None if args.datasets is None else args.datasets.split(",")
    started = time.perf_counter()
    try:
        done = reevaluate(args.runs, protocol=args.protocol, datasets=requested, data_root=root_of,
                          device=args.device, replace=args.replace, progress=args.verbose)
    except RescoreConflictError as exc:
        print(f"ckda: error: {exc}", file=sys.stderr)
        return 2
    print(f"re-scored {len(done)} run(s) in {time.perf_counter() - started:.0f} s; `ckda leaderboard "
          f"{' '.join(map(str, args.runs))}` ranks them per protocol", flush=True)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from ckda_avalanche.reporting.ablation import write_ablation
    from ckda_avalanche.reporting.leaderboard import write_leaderboard

    from ckda_avalanche.reporting.tidy_data import load_tidy

    out = Path(args.out) if args.out else Path(args.runs[0])
    sources = load_tidy([Path(r) for r in args.runs])  # read (and screened, with warnings) once for both tables
    csv_path, md_path = write_leaderboard(sources, out, merge_precisions=args.merge_precisions,
                                          reference=args.reference)
    ablation = write_ablation(sources, out, merge_precisions=args.merge_precisions)
    print(md_path.read_text(encoding="utf-8"))
    print(f"leaderboard: {md_path} and {csv_path}")
    if ablation is not None:
        print(ablation[1].read_text(encoding="utf-8"))
        print(f"ablation table: {ablation[1]} and {ablation[0]}")
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    from ckda_avalanche.reporting.claims import write_claims

    csv_path, md_path = write_claims([Path(r) for r in args.runs], Path(args.out) if args.out else Path(args.runs[0]))
    print(md_path.read_text(encoding="utf-8"))
    print(f"claims table: {md_path} and {csv_path}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ckda_avalanche.reporting.plots import plot_runs

    out = Path(args.out) if args.out else Path(args.runs[0]) / "plots"
    for path in plot_runs([Path(r) for r in args.runs], out, formats=tuple(args.formats),
                          merge_precisions=args.merge_precisions):
        print(path)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Ranked-list grid (and feature maps) of each run's models after the chosen sessions (runner/show.py)."""
    from ckda_avalanche.runner.overrides import ConfigError
    from ckda_avalanche.runner.reevaluate import find_run_dirs, load_saved_run
    from ckda_avalanche.runner.show import session_features, show_feature_maps, show_ranked_lists

    runs = [load_saved_run(r) for r in find_run_dirs(args.runs)]
    runs = [r for r in runs if (not args.methods or r.method in args.methods) and args.seed in (None, r.seed)]
    if not runs:
        raise ConfigError(f"{' '.join(args.runs)}: no run of method(s) {args.methods or 'any'} and seed "
                          f"{'any' if args.seed is None else args.seed}")
    out = Path(args.out) if args.out else Path(args.runs[0]) / "plots"
    roots: dict[tuple[float, int], Path] = {}
    for saved in runs:
        key = (saved.run_config.synthetic_scale, saved.run_config.synthetic_seed)
        if key not in roots:
            roots[key] = data_root(args, saved.run_config)
        started = time.perf_counter()
        sessions = args.sessions or list(range(1, saved.sessions + 1))
        found = session_features(saved.run_dir, dataset=args.dataset, sessions=sessions,
                                 data_root=roots[key], protocol=args.protocol, device=args.device)
        paths = [show_ranked_lists(found, out, queries=args.queries, top_k=args.top_k, pick=args.pick,
                                   seed=args.pick_seed, trial=args.trial)]
        if args.embedding:
            paths.append(show_feature_maps(found, out, method=args.embedding, identities=args.identities,
                                           seed=args.pick_seed))
        for path in paths:
            print(path)
        print(f"{saved.method} seed {saved.seed}: {time.perf_counter() - started:.1f} s", flush=True)
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    import math

    from ckda_avalanche.benchmarks.synthetic import generate_synthetic, synthetic_folder
    from ckda_avalanche.runner.overrides import ConfigError

    if not (math.isfinite(args.scale) and args.scale > 0):
        raise ConfigError(f"--scale: expected a finite number > 0, got {args.scale}")
    if args.seed < 0:
        raise ConfigError(f"--seed: expected an integer >= 0, got {args.seed}")
    if not args.out:
        args.out = str(synthetic_folder(DEFAULT_SYNTHETIC_DIR, seed=args.seed, scale=args.scale))
    start = time.perf_counter()
    if getattr(args, "real_sizes", None):
        from ckda_avalanche.benchmarks.synthetic.real_size import write_real_size

        report = write_real_size(args.out, args.real_sizes, img_size=tuple(args.img_size or (256, 128)),
                                 seed=args.seed)
        for name, row in report.items():
            print(f"{name}: {row['images']} images at the paths of {args.real_sizes} ({row['bytes'] / 2**20:.0f} MiB, "
                  f"{row['seconds']:.0f} s)")
        return cmd_data_check(argparse.Namespace(root=args.out))
    sizes = {} if not getattr(args, "img_size", None) else {"img_size": tuple(args.img_size)}
    summary = generate_synthetic(args.out, seed=args.seed, scale=args.scale, overwrite=args.overwrite, **sizes)
    print(f"synthetic VI-ReID datasets under {args.out} (seed {summary.seed}, scale {summary.scale}) in "
          f"{time.perf_counter() - start:.1f} s")
    return cmd_data_check(argparse.Namespace(root=args.out))


def cmd_data_check(args: argparse.Namespace) -> int:
    from ckda_avalanche.benchmarks.datasets import check_root, deep_check, format_check_report, format_deep_report

    if getattr(args, "deep", False):
        if args.workers is not None and args.workers < 1:
            raise SystemExit(f"--workers: expected >= 1, got {args.workers}")
        report = deep_check(args.root, workers=args.workers, progress=not args.no_progress)
        print(format_deep_report(report))
        return 0 if report.ok else 1
    reports = check_root(args.root)
    print(format_check_report(reports))
    return 1 if any(r.error for r in reports) or not reports else 0


def build_parser() -> argparse.ArgumentParser:
    from ckda_avalanche.strategies.registry import registered_methods

    parser = argparse.ArgumentParser(prog="ckda", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and evaluate methods over the VI-LReID stream, then rank and plot them")
    run.add_argument("--methods", type=_methods, default=_methods("all"),
                     help="comma-separated methods, variants such as 'ckda[no_cka+no_merge]' (quote: [ ] are glob "
                          "characters), or the shorthands all (default), ablations, quirks; methods: "
                          + ", ".join(registered_methods()))
    run.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds, integers >= 0 (default: 0)")
    run.add_argument("--preset", default="cpu", help="run preset: cpu (default), paper or test")
    run.add_argument("--config", help="YAML/JSON file overriding RunConfig fields (nested: train, method_overrides)")
    run.add_argument("--data", default="synthetic",
                     help="'synthetic' (generated if missing) or a folder with RegDB/, SYSU-MM01/, LLCM/, HITSZ-VCM/")
    run.add_argument("--synthetic-dir",
                     help=f"where synthetic data lives (default: {DEFAULT_SYNTHETIC_DIR}/v<generator version>-"
                          "seed<N>-scale<S>, one folder per draw)")
    run.add_argument("--synthetic-seed", type=int,
                     help="generator draw N (sets RunConfig.synthetic_seed; default: the preset's or --config's)")
    run.add_argument("--pretrained", help="backbone weights: a local ViT checkpoint (.pth, .safetensors or .npz), "
                     "'synthetic-cpu-faithful' (the built-in synthetic pretraining, the cpu preset's default) or 'none' "
                     "(random initialisation)")
    run.add_argument("--out", required=True, help="run folder (OUT/<method>/seed<k>/ per run)")
    run.add_argument("--regdb-trial", type=int, help="RegDB index trial 1..10 (readers.regdb.trial; default 1)")
    run.add_argument("--llcm-max-train-label", type=int,
                     help="LLCM: keep training labels below this (published code: 500; default: all)")
    run.add_argument("--vcm-tracklet-feature", choices=["frame", "mean"],
                     help="HITSZ-VCM test tracklet: its middle frame (default, published) or the mean feature")
    run.add_argument("--vcm-frames-per-tracklet", type=int, help="HITSZ-VCM training frames per tracklet (default 3)")
    run.add_argument("--vcm-camera-filter", action="store_const", const=True,
                     help="HITSZ-VCM: Market-style same-camera removal (default: none, as published)")
    run.add_argument("--resume", action="store_true", help="continue runs in OUT from their last finished session")
    run.add_argument("--resume-override", action="store_true",
                     help="with --resume: continue even though the settings differ from a run's config.json (the "
                          "change is recorded there); without it such a resume is refused with the differences")
    run.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...; a "
                     "paper-sized model that would land on the CPU needs an explicit cpu")
    run.add_argument("--formats", nargs="+", default=["png"], help="plot formats (png, svg, pdf)")
    run.add_argument("--compile", action="store_true",
                     help="train through torch.compile (speed only; pays off on a GPU for long runs)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--keep-session-checkpoints", action="store_true",
                     help="also keep the model of every session (OUT/<method>/seed<k>/sessions/) for `ckda eval`")
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

    ablate = sub.add_parser("ablate", help="`ckda run` over CKDA and every ablation of docs/method.md §8 (variants)")
    for action in run._actions:  # every option of `run` (copies: argparse actions must not be shared)
        if action.dest not in ("help", "methods"):
            ablate._add_action(copy.copy(action))
    ablate.add_argument("--methods", type=_methods, default=_methods("ablations"),
                        help="default 'ablations': ckda and ckda[<flag>] for each ablation flag of CKDAConfig")
    ablate.add_argument("--quirks", action="store_true",
                        help="also run the quirks of docs/method.md §7: ckda[quirk_a], [quirk_b], [quirk_c], [quirks]")
    ablate.set_defaults(func=cmd_ablate)

    evaluate = sub.add_parser("eval", help="re-score the kept per-session models of runs, without training")
    evaluate.add_argument("runs", nargs="+", help="run folders (OUT or OUT/<method>/seed<k>) made with "
                                                  "--keep-session-checkpoints")
    evaluate.add_argument("--protocol", default="full", choices=("paper", "full"),
                          help="full (default: 10 trials, both directions, SYSU indoor and multi-shot) or paper")
    evaluate.add_argument("--datasets", help="comma-separated test datasets (default: the run's own); a prefix of "
                                             "the run's order, then datasets it never trained on")
    evaluate.add_argument("--data", default="synthetic", help="'synthetic' or the datasets' folder (as for run)")
    evaluate.add_argument("--synthetic-dir",
                          help="where synthetic data lives (default: the run's draw folder, as for run)")
    evaluate.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    evaluate.add_argument("--replace", action="store_true",
                          help="overwrite CSV rows whose re-scored value differs (default: refuse)")
    evaluate.add_argument("--verbose", action="store_true", help="print every dataset's trial scores")
    evaluate.set_defaults(func=cmd_eval)

    board = sub.add_parser("leaderboard", help="write leaderboard.csv/.md (and ablation.csv/.md when method "
                                               "variants are present) from run folders")
    board.add_argument("runs", nargs="+", help="run folders or tidy CSV files")
    board.add_argument("--out", help="output folder (default: the first run folder)")
    board.add_argument("--merge-precisions", action="store_true",
                       help="pool seeds trained in different precisions (bf16/fp32) into one row (refused by default)")
    board.add_argument("--reference", default="finetune",
                       help="method every row is compared with by paired difference (default: finetune)")
    board.set_defaults(func=cmd_leaderboard)

    claims = sub.add_parser("claims", help="write claims.csv/.md: every claim of the CKDA paper as a paired "
                                           "difference with its 95%% interval and a verdict (docs/reporting.md)")
    claims.add_argument("runs", nargs="+", help="run folders or tidy CSV files (CKDA, its variants, the baselines)")
    claims.add_argument("--out", help="output folder (default: the first run folder)")
    claims.set_defaults(func=cmd_claims)

    plot = sub.add_parser("plot", help="draw per-session mAP/Rank-1 curves and forgetting matrices")
    plot.add_argument("runs", nargs="+", help="run folders or tidy CSV files")
    plot.add_argument("--out", help="output folder (default: RUN_DIR/plots)")
    plot.add_argument("--formats", nargs="+", default=["png"], help="png, svg, pdf")
    plot.add_argument("--merge-precisions", action="store_true",
                      help="pool seeds trained in different precisions (bf16/fp32) into one curve")
    plot.set_defaults(func=cmd_plot)

    show = sub.add_parser("show", help="ranked-list pictures (and feature maps) of a run's kept models after chosen "
                                       "sessions")
    show.add_argument("runs", nargs="+", help="run folders (OUT or OUT/<method>/seed<k>)")
    show.add_argument("--dataset", default="regdb", help="test dataset (default regdb)")
    show.add_argument("--sessions", type=int, nargs="+", help="sessions, side by side (default: every session)")
    show.add_argument("--methods", type=lambda t: [m for m in t.split(",") if m], help="only these methods")
    show.add_argument("--seed", type=int, help="only this seed")
    show.add_argument("--queries", type=int, default=8, help="queries shown (default 8)")
    show.add_argument("--top-k", type=int, default=10, help="gallery items per query (default 10)")
    show.add_argument("--pick", default="random", choices=("random", "rank-change", "ap-change"),
                      help="random (seeded, default), or the largest change of first-match rank / AP between the "
                           "first and last session shown")
    show.add_argument("--pick-seed", type=int, default=0, help="seed of the random query and identity choice")
    show.add_argument("--embedding", choices=("pca", "tsne"), help="also draw the feature map (PCA or t-SNE)")
    show.add_argument("--identities", type=int, default=12, help="identities in the feature map (default 12)")
    show.add_argument("--protocol", default="paper", choices=("paper", "full"), help="protocol (default paper)")
    show.add_argument("--trial", help="the protocol's trial shown, e.g. ir2vis/trial0 (default: its first)")
    show.add_argument("--data", default="synthetic", help="'synthetic' or the datasets' folder (as for run)")
    show.add_argument("--synthetic-dir",
                      help="where synthetic data lives (default: the run's draw folder, as for run)")
    show.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    show.add_argument("--out", help="output folder (default: RUN_DIR/plots)")
    show.set_defaults(func=cmd_show)

    pre = sub.add_parser("pretrain", help="pretrain a backbone on the synthetic pretraining pool (an ImageNet "
                         "stand-in sharing nothing with the benchmark) and save it as .safetensors")
    pre.add_argument("--out", required=True, help="output .safetensors file (+ .sha256 and .json next to it)")
    pre.add_argument("--config", help="YAML/JSON file overriding PretrainConfig fields")
    pre.add_argument("--threads", type=int, help="torch threads (default: the usable CPUs)")
    for field, kind in (("model", str), ("num_ids", int), ("steps", int), ("modalities", str), ("objective", str),
                        ("lr", float), ("grayscale_p", float), ("seed", int), ("amp", str)):
        pre.add_argument(f"--{field.replace('_', '-')}", dest=f"pre_{field}", type=kind, help=f"PretrainConfig.{field}")
    pre.set_defaults(func=cmd_pretrain)

    data = sub.add_parser("data", help="synthetic data generation and dataset checks")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    synth = data_sub.add_parser("synth", help="write the four synthetic VI-ReID datasets in official layouts")
    synth.add_argument("--out", help=f"output folder (default: {DEFAULT_SYNTHETIC_DIR}/v<generator version>-"
                                     "seed<N>-scale<S>, where `ckda run --synthetic-seed N` looks)")
    synth.add_argument("--seed", "--synthetic-seed", dest="seed", type=int, default=0, help="generator draw")
    synth.add_argument("--scale", type=float, default=1.0, help="identity-count multiplier (default 1.0)")
    synth.add_argument("--overwrite", action="store_true", help="replace existing synthetic data in OUT")
    synth.add_argument("--img-size", type=int, nargs=2, metavar=("H", "W"),
                       help="stored image size (default: the generator's; with --real-sizes 256 128)")
    synth.add_argument("--real-sizes", metavar="INDEX",
                       help="instead: write RegDB and LLCM at exactly the paths of the real index files in INDEX "
                            "(RegDB/idx, LLCM/idx), with generated images (a real-scale rehearsal of the data path)")
    synth.set_defaults(func=cmd_data_synth)
    check = data_sub.add_parser("check", help="report ids/images/cameras per split, or the layout errors "
                                "(--deep: decode every image and list every problem)")
    check.add_argument("root")
    check.add_argument("--deep", action="store_true",
                       help="also decode every image (in parallel) and list every problem with its file: leaks, "
                            "duplicates, folder names, cameras, bit depth and modes")
    check.add_argument("--workers", type=int, help="decoding threads for --deep (default: the usable CPUs)")
    check.add_argument("--no-progress", action="store_true", help="no progress bar for --deep")
    check.set_defaults(func=cmd_data_check)
    return parser


def cmd_pretrain(args: argparse.Namespace) -> int:
    from ckda_avalanche.runner.pretrain import run_pretrain_command

    run_pretrain_command(out=args.out, config_file=args.config, threads=args.threads,
                         flags={k[4:]: v for k, v in vars(args).items() if k.startswith("pre_") and v is not None},
                         command=" ".join(["ckda", *sys.argv[1:]]))
    return 0


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
    from ckda_avalanche.runner.faults import SigtermInterrupt, check_environment, sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():  # SIGTERM takes Ctrl-C's path: sessions in progress abandoned, one line
            check_environment()  # a malformed CKDA_* variable: one line naming it, before anything starts
            return int(args.func(args))
    except KeyboardInterrupt as exc:
        what = "terminated (SIGTERM)" if isinstance(exc, SigtermInterrupt) else "interrupted"
        print(f"{what}: finished sessions are saved; rerun with --resume to continue", file=sys.stderr)
        return 143 if isinstance(exc, SigtermInterrupt) else 130
    except Exception as exc:  # noqa: BLE001 - the CLI reports known errors in one line
        from ckda_avalanche.benchmarks.errors import DatasetLayoutError
        from ckda_avalanche.benchmarks.synthetic import SyntheticParametersError
        from ckda_avalanche.reporting.precision import MixedPrecisionError
        from ckda_avalanche.reporting.run_checks import NoRunToReportError
        from ckda_avalanche.runner.executors import ExecutorError
        from ckda_avalanche.runner.lock import RunLockedError
        from ckda_avalanche.runner.overrides import ConfigError
        from ckda_avalanche.runner.run_folder import RunExistsError
        from ckda_avalanche.runner.run_state import RunStateError
        from ckda_avalanche.runner.training import RunFailedError

        if isinstance(exc, (DatasetLayoutError, SyntheticParametersError, ConfigError, RunExistsError, RunFailedError,
                            MixedPrecisionError, RunStateError, RunLockedError, NoRunToReportError,
                            ExecutorError)):
            print(f"ckda: error: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, OSError):  # a full disk, a read-only --out, ...
            from ckda_avalanche.runner.faults import describe_os_error

            resumable = args.command in ("run", "ablate")
            print(f"ckda: error: {describe_os_error(exc, resumable=resumable)}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
