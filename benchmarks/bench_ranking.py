"""Side-by-side speed of `ckda_avalanche.evaluation.evaluate_rank` and fast-reid's Cython ranker, with and without ties.

Usage:  .venv/bin/python benchmarks/bench_ranking.py [--queries 3368 --gallery 15913 --repeats 5 --threads 1 2
                                                      --tie-step 0.05 --counts auto numpy radix grouped
                                                      --json OUT.json]

``--counts`` times ours with each way of counting a row's values below the match distances
(`evaluation/_row_counts.py`): ``auto`` (what the one-time probe chooses on this machine), ``numpy`` (numpy's SIMD
sort), ``radix`` (a 2 x 16-bit radix order) and ``grouped`` (one 16-bit radix pass, then comparisons inside the
matched group); every variant's results are the same. ``--json`` also writes the machine, the probe's choice, every
timing and the 1-thread speed-ups in CPU seconds (`results/ranking/bench_ranking.json`).

fast-reid (PyPI name ``fastreid``, version 1.4.0) is downloaded with ``pip download --no-deps`` into a temporary
folder outside the repository at run time, its ``fastreid/evaluation/rank_cylib`` extension is compiled there with
Cython (installed into the current environment with pip when missing), and the folder is deleted at the end;
nothing of fast-reid is kept or committed; without network it is reported unavailable and only ours is timed.

Two Market-sized float32 cases get the same ids and cameras:

* tie-free: each row a random permutation of distinct values, so the order is unambiguous and both rankers must
  agree (mAP and CMC are checked);
* tie-heavy: the same matrix rounded to multiples of ``--tie-step`` (0.05: 21 distinct values, as quantised or
  half-precision features produce). Ours keeps gallery order among equal distances (the order of a float64
  ``np.argsort(kind="stable")``); fast-reid's ranker uses an unstable argsort there, so its mAP is only reported,
  not required to agree.

Both cases are also checked exactly against that reference on their first ``--check-queries`` queries.

Timings are interleaved in one process (every ranker and case once per repeat); the median and the minimum of
``--repeats`` runs are printed, with ours' tie-heavy / tie-free ratio, in wall seconds and (single-threaded runs) in
process CPU seconds. On a shared machine use the minimum, or the CPU seconds.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
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

from ckda_avalanche.evaluation._row_counts import BACKENDS, ENV_VAR, backend
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


def tie_heavy(distmat: np.ndarray, step: float) -> np.ndarray:
    """`distmat` rounded to multiples of `step` (float32 arithmetic, so the values are exact float32 ties)."""
    step32 = np.float32(step)
    return (np.round(distmat / step32) * step32).astype(np.float32)


def stable_reference(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_cams: np.ndarray,
                     g_cams: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Market-rule AP and first-match rank of the first `rows` queries, from float64 stable argsort order."""
    aps, firsts = [], []
    for i in range(min(rows, len(q_pids))):
        order = np.argsort(distmat[i].astype(np.float64), kind="stable")
        order = order[~((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i]))]
        hits = np.flatnonzero(g_pids[order] == q_pids[i]) + 1
        if len(hits):
            aps.append(float(np.mean(np.arange(1, len(hits) + 1) / hits)))
            firsts.append(int(hits[0]))
    return np.asarray(aps), np.asarray(firsts)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


CPU_TIMES: dict[str, list[float]] = {}
"""Process CPU seconds of each timed call, by the name its wall time is filed under (both single-threaded here)."""


def _timed(fn, name: str | None = None) -> tuple[float, object]:
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    if name is not None:
        CPU_TIMES.setdefault(name, []).append(time.process_time() - cpu)
    return time.perf_counter() - start, out


def _ours_name(case: str, n: int, counts: str = "auto") -> str:
    suffix = "" if counts == "auto" else f" [{counts}]"
    return f"ours evaluate_rank{suffix}, {case} ({n} thread{'s' if n > 1 else ''})"


def _write_json(args: argparse.Namespace, cases: dict[str, np.ndarray], chosen: dict[str, object],
                times: dict[str, list[float]]) -> None:
    """The run's machine, settings, probe choice, wall and CPU seconds, and the 1-thread speed-ups in CPU seconds."""
    speedups: dict[str, dict[str, float]] = {}
    for case in cases:
        cy_name = f"fast-reid evaluate_cy (Cython), {case} (1 thread)"
        for counts in args.counts:
            name = _ours_name(case, 1, counts)
            if cy_name in CPU_TIMES and name in CPU_TIMES:
                speedups[f"{case}, counts {counts}"] = {
                    "min": min(CPU_TIMES[cy_name]) / min(CPU_TIMES[name]),
                    "median": statistics.median(CPU_TIMES[cy_name]) / statistics.median(CPU_TIMES[name])}
    payload = {
        "cpu": cpu_model(), "cpus": os.cpu_count(), "numpy": np.__version__, "torch": torch.__version__,
        "precision": "float32 distances", "queries": args.queries, "gallery": args.gallery, "repeats": args.repeats,
        "row_counts_probe": chosen, "wall_s": times, "cpu_s": CPU_TIMES,
        "speedup_vs_fastreid_cpu_s_1_thread": speedups,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=3368)
    parser.add_argument("--gallery", type=int, default=15913)
    parser.add_argument("--ids", type=int, default=751)
    parser.add_argument("--cams", type=int, default=6)
    parser.add_argument("--max-rank", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch/ranker thread counts to time")
    parser.add_argument("--tie-step", type=float, default=0.05,
                        help="rounding step of the tie-heavy case (0: time the tie-free case only)")
    parser.add_argument("--check-queries", type=int, default=300,
                        help="queries of each case checked against a float64 stable-argsort reference (0: none)")
    parser.add_argument("--skip-python", action="store_true", help="skip fast-reid's slow pure-numpy ranker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--counts", nargs="+", default=["auto"], choices=["auto", *BACKENDS],
                        help="row-count backends of ours to time (auto: the one the probe chooses; the others "
                             f"forced through ${ENV_VAR})")
    parser.add_argument("--json", help="also write the timings and speed-ups (CPU seconds) to this JSON file")
    args = parser.parse_args()

    distmat, q_pids, g_pids, q_cams, g_cams = make_input(args.queries, args.gallery, args.ids, args.cams, args.seed)
    cases = {"tie-free": distmat}
    if args.tie_step > 0:
        cases[f"tie-heavy (step {args.tie_step:g})"] = tie_heavy(distmat, args.tie_step)
    print(f"input: {args.queries} x {args.gallery} float32, {args.ids} ids, {args.cams} cameras, "
          f"max_rank={args.max_rank}, repeats={args.repeats}, cpus={os.cpu_count()}, "
          f"loadavg before={os.getloadavg()[0]:.2f}")
    print(f"cpu: {cpu_model()}; numpy {np.__version__}, torch {torch.__version__}")
    chosen = backend()
    probe = ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in chosen["probe_s"].items())
    print(f"row counts: {chosen['backend']} ({chosen['source']}{': ' + probe if probe else ''})")
    for case, mat in cases.items():
        print(f"  {case}: {len(np.unique(mat[:50]))} distinct values in the first 50 rows")
    workdir = Path(tempfile.mkdtemp(prefix="fastreid_bench_"))
    times: dict[str, list[float]] = {}
    try:
        try:
            rank_cy, rank_py = prepare_fastreid(workdir)
        except Exception as exc:  # report why, still time ours
            print(f"fast-reid unavailable: {exc}".splitlines()[0])
            rank_cy = rank_py = None
        ours: dict[tuple[str, int], object] = {}
        cy_out: dict[str, object] = {}
        for _ in range(args.repeats):
            for case, mat in cases.items():
                if rank_cy is not None:
                    t, cy_out[case] = _timed(lambda: rank_cy.evaluate_cy(mat, q_pids, g_pids, q_cams, g_cams,
                                                                         args.max_rank, False),
                                             f"fast-reid evaluate_cy (Cython), {case} (1 thread)")
                    times.setdefault(f"fast-reid evaluate_cy (Cython), {case} (1 thread)", []).append(t)
                for n in args.threads:
                    torch.set_num_threads(n)
                    for counts in args.counts:
                        if counts == "auto":
                            os.environ.pop(ENV_VAR, None)
                        else:
                            os.environ[ENV_VAR] = counts
                        t, result = _timed(lambda: evaluate_rank(mat, q_pids, g_pids, q_cams, g_cams,
                                                                 max_rank=args.max_rank, rule="market",
                                                                 num_threads=n), _ours_name(case, n, counts))
                        ours.setdefault((case, n), result)
                        times.setdefault(_ours_name(case, n, counts), []).append(t)
                    os.environ.pop(ENV_VAR, None)
        if rank_py is not None and not args.skip_python:
            t, _ = _timed(lambda: rank_py.eval_market1501(distmat, q_pids, g_pids, q_cams, g_cams, args.max_rank))
            times["fast-reid eval_market1501 (pure numpy), tie-free (1 run)"] = [t]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    best = {name: min(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(f"{name:66s} median {statistics.median(ts):7.3f} s  min {best[name]:7.3f} s  "
              f"runs {', '.join(f'{t:.3f}' for t in ts)}")
    for name, ts in CPU_TIMES.items():
        print(f"{name:66s} CPU min {min(ts):7.3f} s  median {statistics.median(ts):7.3f} s")
    for case in cases:
        cy_name = f"fast-reid evaluate_cy (Cython), {case} (1 thread)"
        for counts in args.counts:
            name = _ours_name(case, 1, counts)
            if cy_name in CPU_TIMES and name in CPU_TIMES:
                print(f"speed-up vs Cython in CPU seconds, {case}, 1 thread, counts {counts}: "
                      f"{min(CPU_TIMES[cy_name]) / min(CPU_TIMES[name]):.2f}x (min), "
                      f"{statistics.median(CPU_TIMES[cy_name]) / statistics.median(CPU_TIMES[name]):.2f}x (median)")
    for case in cases:
        cy_name = f"fast-reid evaluate_cy (Cython), {case} (1 thread)"
        for n in args.threads:
            for counts in args.counts:
                name = _ours_name(case, n, counts)
                if cy_name in best:
                    print(f"speed-up vs Cython, {case}, {n} thread(s), counts {counts}: "
                          f"{best[cy_name] / best[name]:.2f}x (min), "
                          f"{statistics.median(times[cy_name]) / statistics.median(times[name]):.2f}x (median)")
    if len(cases) > 1:
        free, tied = cases
        for n in args.threads:
            for counts in args.counts:
                a, b = times[_ours_name(free, n, counts)], times[_ours_name(tied, n, counts)]
                print(f"ours tie-heavy / tie-free, {n} thread(s), counts {counts}: {min(b) / min(a):.2f}x (min), "
                      f"{statistics.median(b) / statistics.median(a):.2f}x (median)")
    print(f"loadavg after={os.getloadavg()[0]:.2f}")
    if args.json:
        _write_json(args, cases, chosen, times)

    failures = []
    free_case = "tie-free"
    if free_case in cy_out:
        cy_cmc, cy_ap, _cy_inp = cy_out[free_case]
        first = ours[free_case, args.threads[0]]
        cy_map = float(np.mean(cy_ap))
        d_map = abs(first.mAP - cy_map)
        d_cmc = float(np.max(np.abs(first.cmc - np.asarray(cy_cmc, dtype=np.float64))))
        print(f"agreement with Cython, tie-free: mAP ours {first.mAP:.8f} vs {cy_map:.8f} (|diff| {d_map:.2e}), "
              f"max |CMC diff| {d_cmc:.2e} (Cython accumulates in float32)")
        if d_map > 1e-5 or d_cmc > 1e-5:
            failures.append("fast-reid and ours disagree on the tie-free case")
    for case, mat in cases.items():
        first = ours[case, args.threads[0]]
        if case != free_case and case in cy_out:
            print(f"{case}: mAP ours {first.mAP:.8f} vs Cython {float(np.mean(cy_out[case][1])):.8f} "
                  "(Cython orders equal distances by an unstable argsort, so these may differ)")
        if args.check_queries > 0:
            k = min(args.check_queries, args.queries)
            ref_ap, ref_first = stable_reference(mat, q_pids, g_pids, q_cams, g_cams, k)
            ref_cmc = np.array([np.mean(ref_first <= r) for r in range(1, args.max_rank + 1)])
            check = evaluate_rank(mat[:k], q_pids[:k], g_pids, q_cams[:k], g_cams, max_rank=args.max_rank,
                                  rule="market", num_threads=1)
            exact = (check.num_valid == len(ref_ap) and np.array_equal(check.cmc, ref_cmc)
                     and float(np.max(np.abs(check.ap - ref_ap), initial=0.0)) <= 1e-12
                     and np.array_equal(first.ap[:check.num_valid], check.ap))
            print(f"{case}: ours vs float64 stable-argsort reference on the first {k} queries: "
                  f"{'identical' if exact else 'DIFFERENT'} (every CMC rank equal, AP within 1e-12)")
            if not exact:
                failures.append(f"ours differs from the stable-order reference on the {case} case")
        for n in args.threads:
            res = ours[case, n]
            if not (np.array_equal(res.cmc, first.cmc) and res.mAP == first.mAP and res.mINP == first.mINP):
                failures.append(f"{case}: results with {n} threads differ from {args.threads[0]} thread(s)")
    if failures:
        raise SystemExit("FAIL: " + "; ".join(failures))


if __name__ == "__main__":
    main()
