"""Time ``ckda show``: a grid of 8 queries x 10 results for four sessions of one run (goal: under 30 s on 2 cores).

    python benchmarks/bench_show.py RUN_DIR [--dataset regdb] [--data synthetic] [--synthetic-dir DIR]

``RUN_DIR`` is one run folder (``OUT/<method>/seed<k>``) made with ``--keep-session-checkpoints`` (four sessions
for the default board). Prints the wall time of the feature extraction (stream, four kept models, Avalanche's eval
loop), of the grid (ranking, images, PNG) and of the whole ``ckda show`` command as a user runs it (a fresh
process: imports included), with the CPU time of each (all threads; on a shared machine the wall time also counts
the waits for a core), and the torch threads used.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--dataset", default="regdb")
    parser.add_argument("--synthetic-dir", help="the run's synthetic data (default: its draw folder under "
                                                "data/synthetic, as ckda run makes it)")
    args = parser.parse_args()

    from ckda_avalanche.runner.reevaluate import load_saved_run
    from ckda_avalanche.runner.show import session_features, show_ranked_lists

    saved = load_saved_run(args.run_dir)
    if args.synthetic_dir is None:
        from ckda_avalanche.benchmarks.synthetic import synthetic_folder

        args.synthetic_dir = str(synthetic_folder(Path("data") / "synthetic", seed=saved.run_config.synthetic_seed,
                                                  scale=saved.run_config.synthetic_scale))
    sessions = list(range(1, saved.sessions + 1))
    with tempfile.TemporaryDirectory(prefix="bench-show-") as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        found = session_features(args.run_dir, dataset=args.dataset, sessions=sessions,
                                 data_root=Path(args.synthetic_dir))
        extracted = time.perf_counter()
        path = show_ranked_lists(found, Path(tmp), queries=8, top_k=10)
        drawn, cpu = time.perf_counter(), time.process_time() - cpu
        size = path.stat().st_size
        command = [sys.executable, "-m", "ckda_avalanche.cli", "show", args.run_dir, "--dataset", args.dataset,
                   "--synthetic-dir", args.synthetic_dir, "--out", tmp]
        whole, children = time.perf_counter(), os.times()
        subprocess.run(command, check=True, capture_output=True)
        whole, after = time.perf_counter() - whole, os.times()
        whole_cpu = after.children_user + after.children_system - children.children_user - children.children_system
    print(f"{saved.method} seed {saved.seed}, {args.dataset}, sessions {sessions}, {len(found.pool)} test items, "
          f"torch threads {torch.get_num_threads()}")
    print(f"features: {extracted - start:.1f} s; grid (8 queries x 10 results x {len(sessions)} sessions): "
          f"{drawn - extracted:.1f} s; PNG {size / 1024:.0f} KiB; CPU time of both {cpu:.1f} s (all threads)")
    print(f"`ckda show` end to end (fresh process, imports included): {whole:.1f} s wall, {whole_cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
