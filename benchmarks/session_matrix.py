"""Print a method's score after every session on every dataset, over seeds: mean, sample std and each seed's value.

The accuracy matrix of continual learning (row: the session just finished, column: the dataset tested), pooled over
the seeds found under the RUN_DIR folders. It shows where a seed spread starts (right after learning a dataset, or
while the later sessions erode it), which the leaderboard's final scores hide. Reads the tidy ``metrics.csv`` of
every finished run through the reporting package's own run matrices.

Example (fine-tuning of the committed default board, five seeds):

    .venv/bin/python benchmarks/session_matrix.py results/default results/default_seeds34 --method finetune
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ckda_avalanche.reporting.tidy_data import load_tidy, run_scores


def session_matrix(run_dirs: list[Path], *, method: str, protocol: str = "paper",
                   metric: str = "mAP") -> tuple[tuple[str, ...], dict[int, np.ndarray]]:
    """(datasets in stream order, seed -> matrix in points) with matrix[k - 1, d] the score on dataset d after
    session k; every seed's run must cover the same datasets."""
    try:
        frame = load_tidy(run_dirs)
    except (OSError, ValueError) as err:
        raise SystemExit(f"{' '.join(map(str, run_dirs))}: {err}; expected run folders holding "
                         "<method>/seed<k>/metrics.csv") from err
    frame = frame[(frame.protocol == protocol) & (frame.method == method)]
    if frame.empty:
        raise SystemExit(f"{' '.join(map(str, run_dirs))}: no finished run of method {method!r} with {protocol!r} "
                         "rows")
    datasets: tuple[str, ...] | None = None
    out: dict[int, np.ndarray] = {}
    for run in run_scores(frame):
        if datasets is not None and run.datasets != datasets:
            raise SystemExit(f"seed {run.seed} of {method!r} tests {list(run.datasets)}, another seed "
                             f"{list(datasets)}; pool runs of one stream only")
        if run.seed in out:
            raise SystemExit(f"seed {run.seed} of {method!r} appears in more than one run folder")
        datasets = run.datasets
        if metric not in run.matrices:
            raise SystemExit(f"seed {run.seed} of {method!r} has no {metric!r} rows; found {sorted(run.matrices)}")
        out[run.seed] = 100 * run.matrices[metric][1:]  # row 0 would be before the first session
    assert datasets is not None
    return datasets, dict(sorted(out.items()))


def format_matrix(datasets: tuple[str, ...], matrices: dict[int, np.ndarray]) -> str:
    """One line per (session, dataset): mean, sample std (n - 1; '-' for one seed) and the seeds' values."""
    stack = np.stack(list(matrices.values()))
    lines = [f"seeds {list(matrices)}; points"]
    for k in range(stack.shape[1]):
        for d, name in enumerate(datasets):
            values = stack[:, k, d]
            std = f"{values.std(ddof=1):5.2f}" if len(values) > 1 else "    -"
            lines.append(f"after session {k + 1}  {name:<10} mean {values.mean():5.1f}  std {std}  "
                         f"[{' '.join(f'{v:.1f}' for v in values)}]")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    parser.add_argument("--method", required=True, help="method or variant folder name, e.g. finetune")
    parser.add_argument("--protocol", default="paper")
    parser.add_argument("--metric", default="mAP", help="mAP, R1, mINP, ... as recorded in the tidy CSV")
    args = parser.parse_args()
    datasets, matrices = session_matrix(args.run_dirs, method=args.method, protocol=args.protocol,
                                       metric=args.metric)
    print(f"{args.method} in {' '.join(map(str, args.run_dirs))} ({args.protocol} protocol, {args.metric})")
    print(format_matrix(datasets, matrices))


if __name__ == "__main__":
    main()
