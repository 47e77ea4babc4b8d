"""Side-by-side speed of `ckda_avalanche.evaluation.evaluate_rank` and fast-reid's Cython ranker.

Usage:  .venv/bin/python benchmarks/bench_ranking.py [--queries 3368 --gallery 15913 --repeats 5 --threads 1 2]

fast-reid (PyPI name ``fastreid``, version 1.4.0) is downloaded with ``pip download --no-deps`` into a temporary
folder outside the repository at run time, its ``fastreid/evaluation/rank_cylib`` extension is compiled there with
Cython (installed into the current environment with pip when missing), and the folder is deleted at the end;
nothing of fast-reid is kept or committed. Both rankers get the same Market-sized random matrix (each row a random
permutation of distinct values, so the order is unambiguous and both must agree), timings are the median of
``--repeats`` runs interleaved in one process, and the script checks that mAP and CMC agree.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from ckda_avalanche.evaluation.ranking import evaluate_rank

FASTREID_SPEC = "fastreid==1.4.0"


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-2000:]}")


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():  # rank.py warns that its relative Cython import is unavailable
        warnings.simplefilter("ignore")
        spec.loader.exec_module(module)
    return module


def prepare_fastreid(workdir: Path) -> tuple[ModuleType, ModuleType]:
    """Download fast-reid into `workdir`, compile its Cython ranker there; return (rank_cy, rank.py) modules."""
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", FASTREID_SPEC, "-d", str(workdir)])
    wheels = sorted(workdir.glob("fastreid-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download {FASTREID_SPEC} produced no wheel in {workdir}")
    with zipfile.ZipFile(wheels[0]) as zf:
        members = [n for n in zf.namelist() if n.startswith("fastreid/evaluation/")]
        zf.extractall(workdir, members=members)
    if importlib.util.find_spec("Cython") is None:
        _run([sys.executable, "-m", "pip", "install", "--quiet", "cython"])
    cylib = workdir / "fastreid" / "evaluation" / "rank_cylib"
    _run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=cylib)
    built = sorted(cylib.glob("rank_cy*.so"))
    if not built:
        raise RuntimeError(f"Cython build left no rank_cy*.so in {cylib}")
    rank_cy = _load_module("rank_cy", built[0])
    rank_py = _load_module("fastreid_rank_py", workdir / "fastreid" / "evaluation" / "rank.py")
    return rank_cy, rank_py


def make_input(num_q: int, num_g: int, num_ids: int, num_cams: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    ranks = rng.permuted(np.tile(np.arange(num_g, dtype=np.float32), (num_q, 1)), axis=1)
    distmat = ranks / np.float32(num_g)  # distinct values per row, exactly representable order
    q_pids, g_pids = rng.integers(0, num_ids, num_q), rng.integers(0, num_ids, num_g)
    q_cams, g_cams = rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)
    return distmat, q_pids, g_pids, q_cams, g_cams


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=3368)
    parser.add_argument("--gallery", type=int, default=15913)
    parser.add_argument("--ids", type=int, default=751)
    parser.add_argument("--cams", type=int, default=6)
    parser.add_argument("--max-rank", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch/ranker thread counts to time")
    parser.add_argument("--skip-python", action="store_true", help="skip fast-reid's slow pure-numpy ranker")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    distmat, q_pids, g_pids, q_cams, g_cams = make_input(args.queries, args.gallery, args.ids, args.cams, args.seed)
    print(f"input: {args.queries} x {args.gallery} float32, {args.ids} ids, {args.cams} cameras, "
          f"max_rank={args.max_rank}, repeats={args.repeats}, cpus={os.cpu_count()}, "
          f"loadavg before={os.getloadavg()[0]:.2f}")
    workdir = Path(tempfile.mkdtemp(prefix="fastreid_bench_"))
    times: dict[str, list[float]] = {}
    try:
        try:
            rank_cy, rank_py = prepare_fastreid(workdir)
        except Exception as exc:  # report why, still time ours
            print(f"fast-reid unavailable: {exc}")
            rank_cy = rank_py = None
        ours: dict[int, object] = {}
        cy_out = None
        for _ in range(args.repeats):
            if rank_cy is not None:
                t, cy_out = _timed(lambda: rank_cy.evaluate_cy(distmat, q_pids, g_pids, q_cams, g_cams,
                                                                args.max_rank, False))
                times.setdefault("fast-reid evaluate_cy (Cython, 1 thread)", []).append(t)
            for n in args.threads:
                torch.set_num_threads(n)
                t, ours[n] = _timed(lambda: evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams,
                                                          max_rank=args.max_rank, rule="market", num_threads=n))
                times.setdefault(f"ours evaluate_rank ({n} thread{'s' if n > 1 else ''})", []).append(t)
        if rank_py is not None and not args.skip_python:
            t, _ = _timed(lambda: rank_py.eval_market1501(distmat, q_pids, g_pids, q_cams, g_cams, args.max_rank))
            times["fast-reid eval_market1501 (pure numpy, 1 run)"] = [t]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for name, med in medians.items():
        print(f"{name:48s} median {med:7.3f} s   runs {', '.join(f'{t:.3f}' for t in times[name])}")
    cy_name = "fast-reid evaluate_cy (Cython, 1 thread)"
    for n in args.threads:
        name = f"ours evaluate_rank ({n} thread{'s' if n > 1 else ''})"
        if cy_name in medians:
            print(f"speed-up vs Cython, {n} thread(s): {medians[cy_name] / medians[name]:.2f}x")
    print(f"loadavg after={os.getloadavg()[0]:.2f}")
    first = next(iter(ours.values()))
    if cy_out is not None:
        cy_cmc, cy_ap, _cy_inp = cy_out
        cy_map = float(np.mean(cy_ap))
        d_map = abs(first.mAP - cy_map)
        d_cmc = float(np.max(np.abs(first.cmc - np.asarray(cy_cmc, dtype=np.float64))))
        print(f"agreement with Cython: mAP ours {first.mAP:.8f} vs {cy_map:.8f} (|diff| {d_map:.2e}), "
              f"max |CMC diff| {d_cmc:.2e} (Cython accumulates in float32)")
        if d_map > 1e-5 or d_cmc > 1e-5:
            raise SystemExit("FAIL: fast-reid and ours disagree")
    for n, res in ours.items():
        if not (np.array_equal(res.cmc, first.cmc) and res.mAP == first.mAP and res.mINP == first.mINP):
            raise SystemExit(f"FAIL: results with {n} threads differ from {next(iter(ours))} thread(s)")


if __name__ == "__main__":
    main()
