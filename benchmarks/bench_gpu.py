"""One GPU check of the paper-scale path, at most about 5 minutes on a CUDA machine; writes one JSON file.

Sections (each records its own error instead of stopping the others):

1. ``end_to_end``: ``ckda run --preset test`` over two sessions (RegDB, SYSU-MM01 synthetic) with ``--device cuda``;
   every mAP / Rank-1 must be finite; wall time and the measured peak rows (``peak_gpu_*_bytes``, ``peak_rss_bytes``).
2. ``steps``: training steps of the ``paper`` model (ViT-B/16, 256x128, 8 ids x 4 images x 2 modalities = 64 images)
   for fine-tuning and a second-session CKDA step (teacher, prompt consistency, CKA over prototypes), in bf16 and in
   fp16 with a GradScaler, without and (for the ``--compile`` variants) with ``torch.compile``: step time, images/s,
   peak allocated / reserved GPU memory.
3. ``packing``: 1, 2 and 4 processes training the paper model (fine-tuning, bf16) on one GPU at the same time through
   Ray (``num_gpus = 1 / N`` each, as ``ckda run --executor ray --gpus-per-run 1/N`` places runs): images/s of each and
   in total, peak memory of each.

Without CUDA the script runs its skip mode: a CPU smoke of the same code paths at tiny size (the ``test`` model, two
steps each, float32 (bf16 and fp16 are left out: the GradScaler needs CUDA); ``torch.compile`` with the ``eager``
backend; packing and the end-to-end run are reported as skipped) and the JSON says
``"cuda_available": false``.

    python benchmarks/bench_gpu.py --out results/gpu/bench_gpu.json            # on the GPU machine
    python benchmarks/bench_gpu.py --out /tmp/bench_gpu_skip.json              # anywhere: skip mode without CUDA
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import make_batch, prepare_strategy  # noqa: E402

from ckda_avalanche.models import create_model  # noqa: E402
from ckda_avalanche.plugins import DualPrototypes  # noqa: E402
from ckda_avalanche.runner.env_info import cpu_model, cuda_info  # noqa: E402
from ckda_avalanche.strategies import CKDA, FineTune, FineTuneConfig, TrainConfig  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peaks(device: torch.device) -> dict[str, int | None]:
    if device.type != "cuda":
        return {"peak_gpu_allocated_bytes": None, "peak_gpu_reserved_bytes": None}
    return {"peak_gpu_allocated_bytes": int(torch.cuda.max_memory_allocated(device)),
            "peak_gpu_reserved_bytes": int(torch.cuda.max_memory_reserved(device))}


def build_strategy(method: str, *, model_name: str, amp: str, device: torch.device, ids: int, instances: int,
                   steps: int, compile_backend: str | None) -> Any:
    """A strategy of ``method`` (``finetune`` or ``ckda_s2``) prepared to train ``steps`` steps on one batch."""
    torch.manual_seed(0)
    base = create_model(model_name, num_classes=ids)
    batch = make_batch(ids, instances, tuple(base.config.img_size))
    config = TrainConfig(num_identities=ids, num_instances=instances, amp=amp, epochs=1000)
    if method == "finetune":
        strategy = FineTune(model=base, method=FineTuneConfig(pixel_prompts=True), config=config, device=device)
    else:
        strategy = CKDA(model=base, config=config, device=device)
    strategy.model.to(device)
    prepare_strategy(strategy, batch, steps)
    if method == "ckda_s2":  # second session: a teacher and 200 old prototypes per modality
        strategy.teacher.refresh(strategy.model)
        g = torch.Generator().manual_seed(1)
        n, dim = 200, base.embed_dim
        strategy.cka.history = [DualPrototypes(torch.randn(n, dim, generator=g), torch.arange(n),
                                               torch.randn(n, dim, generator=g), torch.arange(n)).to(device)]
    if compile_backend is not None:
        strategy.compile_model(backend=compile_backend)
    return strategy


def time_steps(method: str, *, model_name: str, amp: str, device: torch.device, ids: int, instances: int,
               steps: int, warmup: int, compile_backend: str | None) -> dict[str, Any]:
    """Median-free timing: ``warmup`` steps, then ``steps`` steps timed together (synchronised at both ends)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    strategy = build_strategy(method, model_name=model_name, amp=amp, device=device, ids=ids, instances=instances,
                              steps=warmup, compile_backend=compile_backend)
    strategy.training_epoch()  # warm-up (and compilation)
    _sync(device)
    warm_s = time.perf_counter() - started
    strategy.dataloader = strategy.dataloader[:1] * steps
    start = time.perf_counter()
    strategy.training_epoch()
    _sync(device)
    step_s = (time.perf_counter() - start) / steps
    images = 2 * ids * instances
    out = {"method": method, "amp": amp, "compile": compile_backend, "batch_images": images, "steps": steps,
           "step_s": step_s, "images_per_s": images / step_s, "warmup_and_build_s": warm_s,
           "scaler": strategy.scaler is not None, "loss_finite": bool(torch.isfinite(strategy.loss).all()),
           **_peaks(device)}
    del strategy
    return out


def end_to_end(device: torch.device, work: Path) -> dict[str, Any]:
    """``ckda run --preset test`` over regdb, sysu on ``device``; finite scores required."""
    import pandas as pd

    from ckda_avalanche.cli import main as ckda

    cfg = work / "two_sessions.json"
    cfg.write_text(json.dumps({"datasets": ["regdb", "sysu"], "synthetic_scale": 0.15}))
    out = work / "e2e"
    start = time.perf_counter()
    rc = ckda(["run", "--preset", "test", "--methods", "finetune,ckda", "--config", str(cfg), "--device",
               device.type, "--synthetic-dir", str(work / "synthetic"), "--out", str(out), "--no-progress"])
    wall = time.perf_counter() - start
    scores, peaks = {}, {}
    for method in ("finetune", "ckda"):
        frame = pd.read_csv(out / method / "seed0" / "metrics.csv")
        rows = frame[(frame.trial == "mean") & frame.metric.isin(["mAP", "Rank1"])]
        scores[method] = {f"{r.eval_dataset}/{r.metric}/after{r.train_exp}": float(r.value)
                          for r in rows.itertuples()}
        peak_rows = frame[frame.metric.str.startswith("peak_")]
        peaks[method] = {f"{r.metric}/session{r.train_exp}": float(r.value) for r in peak_rows.itertuples()}
    finite = rc == 0 and all(math.isfinite(v) for s in scores.values() for v in s.values()) and all(scores.values())
    env = json.loads((out / "ckda" / "seed0" / "env.json").read_text())
    return {"rc": rc, "wall_s": wall, "finite": finite, "scores": scores, "peaks": peaks,
            "env_device": env.get("device"), "env_gpu_name": env.get("gpu_name")}


def _pack_worker(seconds: float, model_name: str, ids: int, instances: int) -> dict[str, Any]:
    """Ray task body: fine-tune steps of ``model_name`` in bf16 for about ``seconds``; images/s and peak memory."""
    device = torch.device("cuda")
    strategy = build_strategy("finetune", model_name=model_name, amp="bf16", device=device, ids=ids,
                              instances=instances, steps=3, compile_backend=None)
    strategy.training_epoch()
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    strategy.dataloader = strategy.dataloader[:1] * 5
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        strategy.training_epoch()
        steps += 5
    torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    return {"steps": steps, "seconds": elapsed, "images_per_s": steps * 2 * ids * instances / elapsed,
            **_peaks(device)}


def packing(counts: list[int], seconds: float, model_name: str, ids: int, instances: int) -> dict[str, Any]:
    """N runs on one GPU at once through Ray (``num_gpus = 1/N`` each), for each N of ``counts``."""
    import ray

    ray.init(num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        out: dict[str, Any] = {}
        for n in counts:
            remote = ray.remote(_pack_worker).options(num_gpus=1.0 / n, num_cpus=1)
            each = ray.get([remote.remote(seconds, model_name, ids, instances) for _ in range(n)])
            out[str(n)] = {"runs": each, "total_images_per_s": sum(r["images_per_s"] for r in each)}
        if "1" in out:
            one = out["1"]["total_images_per_s"]
            for n, row in out.items():
                row["total_vs_one_run"] = row["total_images_per_s"] / one
        return out
    finally:
        ray.shutdown()


def _section(result: dict[str, Any], name: str, fn: Any) -> None:
    start = time.perf_counter()
    try:
        result[name] = fn()
    except Exception as exc:  # noqa: BLE001 - one section's failure must not hide the others
        result[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
    if isinstance(result[name], dict):
        result[name]["section_s"] = time.perf_counter() - start
    print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)


def run(out: Path, *, force_skip: bool = False, steps: int = 10, warmup: int = 3, pack_seconds: float = 20.0,
        compile_variants: tuple[str, ...] = ("finetune:bf16", "ckda_s2:bf16")) -> dict[str, Any]:
    """Run every section (or the skip mode without CUDA / with ``force_skip``) and write the JSON to ``out``."""
    warnings.filterwarnings("ignore", message="No loggers specified")
    cuda = torch.cuda.is_available() and not force_skip
    device = torch.device("cuda" if cuda else "cpu")
    result: dict[str, Any] = {"cuda_available": bool(torch.cuda.is_available()), "mode": "gpu" if cuda else "skip",
                              "device": str(device), "cpu_model": cpu_model(), "torch": torch.__version__,
                              **cuda_info(device)}
    started = time.perf_counter()
    if cuda:
        model_name, ids, instances, amps = "paper", 8, 4, ("bf16", "fp16")
        with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
            _section(result, "end_to_end", lambda: end_to_end(device, Path(tmp)))
    else:  # skip mode: the same code paths at tiny size on the CPU
        model_name, ids, instances, amps = "test", 2, 2, ("off",)
        steps, warmup = 2, 1
        result["end_to_end"] = {"skipped": "no CUDA"}
    variants = [(m, a, None) for m in ("finetune", "ckda_s2") for a in amps]
    backend = "inductor" if cuda else "eager"
    variants += [(m, a, backend) for m, a in (v.split(":") for v in compile_variants) if cuda or a in ("bf16",)]
    if not cuda:
        variants = [(m, "off" if a == "bf16" else a, b) for m, a, b in variants]

    def steps_section() -> dict[str, Any]:
        rows = []
        for method, amp, compile_backend in variants:
            try:
                rows.append(time_steps(method, model_name=model_name, amp=amp, device=device, ids=ids,
                                       instances=instances, steps=steps, warmup=warmup,
                                       compile_backend=compile_backend))
            except Exception as exc:  # noqa: BLE001 - record and go on
                rows.append({"method": method, "amp": amp, "compile": compile_backend,
                             "error": f"{type(exc).__name__}: {exc}"})
        return {"model": model_name, "rows": rows}

    _section(result, "steps", steps_section)
    if cuda:
        _section(result, "packing", lambda: packing([1, 2, 4], pack_seconds, model_name, ids, instances))
    else:
        result["packing"] = {"skipped": "no CUDA"}
    result["total_s"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--skip", action="store_true", help="the skip mode even where CUDA is available")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant (GPU)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up steps per variant (GPU)")
    parser.add_argument("--pack-seconds", type=float, default=20.0, help="training seconds per packing level")
    parser.add_argument("--compile", nargs="*", default=["finetune:bf16", "ckda_s2:bf16"],
                        help="METHOD:AMP variants also timed with torch.compile")
    args = parser.parse_args(argv)
    result = run(Path(args.out), force_skip=args.skip, steps=args.steps, warmup=args.warmup,
                 pack_seconds=args.pack_seconds, compile_variants=tuple(args.compile))
    for row in result.get("steps", {}).get("rows", []):
        if "error" in row:
            print(f"  {row['method']:9s} {row['amp']:5s} compile={row['compile']}: ERROR {row['error']}")
        else:
            peak = row["peak_gpu_reserved_bytes"]
            print(f"  {row['method']:9s} {row['amp']:5s} compile={row['compile']}: {1000 * row['step_s']:.1f} ms/step, "
                  f"{row['images_per_s']:.1f} images/s" + (f", peak reserved {peak / 2**30:.2f} GiB" if peak else ""))
    print(f"wrote {args.out} ({result['mode']} mode, {result['total_s']:.0f} s)")
    errors = [name for name in ("end_to_end", "steps", "packing") if "error" in result.get(name, {})]
    e2e = result.get("end_to_end", {})
    return 1 if errors or (result["mode"] == "gpu" and not e2e.get("finite")) else 0


if __name__ == "__main__":
    sys.exit(main())
