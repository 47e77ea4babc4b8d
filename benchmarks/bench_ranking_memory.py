"""Peak memory of `evaluate_rank` and `evaluate_features` on a 20000 x 20000 problem, one fresh process per case.

Usage:  .venv/bin/python benchmarks/bench_ranking_memory.py [--n 20000 --dim 256 --threads 2]

Each case runs in its own subprocess (``--case rank`` / ``--case features``) so that no allocation of an earlier
case is counted. Memory is the kernel's resident-set accounting, which sees numpy, torch and malloc arenas alike:

* rank: the (n, n) float32 distance matrix (1.6 GB at n = 20000) is generated in place, row block by row block,
  so it adds no temporaries; then the peak-RSS counter is reset (``echo 5 > /proc/self/clear_refs``) and the
  reported figure is peak RSS during ``evaluate_rank`` minus RSS just before it: the memory added on top of its
  input. Targets: < 500 MB added.
* features: (n, dim) float32 query and gallery features; the reported figure is the process's total peak RSS
  (VmHWM since start, interpreter and torch included) at the end of ``evaluate_features``. Target: < 1 GB total.

``ru_maxrss`` from ``resource.getrusage`` is printed next to VmHWM as a cross-check.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

MB = 1024 * 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _child(case: str, n: int, dim: int, threads: int, seed: int) -> dict:
    import numpy as np
    import torch

    from ckda_avalanche.evaluation.ranking import evaluate_features, evaluate_rank

    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    q_pids, g_pids = rng.integers(0, 1500, n), rng.integers(0, 1500, n)
    q_cams, g_cams = rng.integers(1, 7, n), rng.integers(1, 7, n)
    out: dict = {"case": case, "n": n, "threads": threads}
    if case == "rank":
        distmat = np.empty((n, n), dtype=np.float32)
        for start in range(0, n, 1000):
            rng.random(out=distmat[start:start + 1000], dtype=np.float32)
        out["input_mb"] = distmat.nbytes / MB
        reset = _reset_peak()
        before_kb = _status_kb("VmRSS")
        out["peak_reset"] = reset
        out["hwm_minus_rss_before_call_mb"] = (_status_kb("VmHWM") - before_kb) / 1024
        start_t = time.perf_counter()
        res = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=20, rule="market",
                            num_threads=threads)
        out["seconds"] = time.perf_counter() - start_t
        out["rss_before_call_mb"] = before_kb / 1024
        out["peak_added_mb"] = (_status_kb("VmHWM") - before_kb) / 1024
    elif case == "features":
        gen = torch.Generator().manual_seed(seed)
        q = torch.randn(n, dim, generator=gen)
        g = torch.randn(n, dim, generator=gen)
        out["input_mb"] = (q.nbytes + g.nbytes) / MB
        start_t = time.perf_counter()
        res = evaluate_features(q, g, q_pids, g_pids, q_cams, g_cams, metric="cosine", max_rank=20,
                                rule="market", num_threads=threads)
        out["seconds"] = time.perf_counter() - start_t
    else:
        raise ValueError(f"unknown case {case!r}")
    out["peak_total_mb"] = _status_kb("VmHWM") / 1024
    out["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["mAP"] = res.mAP
    out["rank1"] = float(res.cmc[0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=["rank", "features"], help="run one case in this process (internal)")
    parser.add_argument("--n", type=int, default=20000, help="number of queries = number of gallery items")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(_child(args.case, args.n, args.dim, args.threads, args.seed)))
        return
    limits = {"rank": ("peak_added_mb", 500.0), "features": ("peak_total_mb", 1024.0)}
    failed = False
    for case, (key, limit) in limits.items():
        cmd = [sys.executable, __file__, "--case", case, "--n", str(args.n), "--dim", str(args.dim),
               "--threads", str(args.threads), "--seed", str(args.seed)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"case {case} failed:\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        ok = out[key] < limit
        failed |= not ok
        print(f"{case:8s} {key} = {out[key]:8.1f} MB (limit {limit:.0f} MB: {'ok' if ok else 'EXCEEDED'})  "
              + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items()
                          if k not in ("case", key)))
    if failed:
        raise SystemExit("FAIL: a memory limit was exceeded")


if __name__ == "__main__":
    main()
