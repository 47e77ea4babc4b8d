"""Throughput of the data path, of the model step, and of the two together, for the ``cpu`` and ``paper`` presets.

For each preset (its model, image size and P x K x 2 batch from ``ckda_avalanche.runner.config``) this measures, in
one process, with interleaved rounds (the first is a warm-up; the median over the others is reported):

- ``data, memory cache``: identity sampler + memory cache + batched augmentation (`make_identity_batch_loader`,
  main process), on synthetic data (``generate_synthetic`` at ``--scale``, 128x64 files resized to the preset);
- ``data, files + workers``: the same over random 256x128 JPEG files read from disk by DataLoader workers
  (``num_workers="auto"`` unless ``--workers``), the path of real datasets that do not fit in memory;
- ``data, per-image (old)``: the previous pipeline for comparison: PIL decoding and per-image torchvision transforms
  for every item, in the main process;
- ``cache fill``: decoding every image of the training set once into the cache (first epoch only);
- ``model step``: a `FineTune` training step on ready batches (forward, ReID losses, backward, AdamW, schedule);
- ``step + data, memory`` / ``step + data, files``: the same strategy reading its batches from the loader.

The data-path share of a step is ``(t(step + data) - t(step)) / t(step + data)`` (per batch; what feeding the model
adds), next to ``t(data) / t(step + data)``. Goal: <= 15% on the ``cpu`` preset.

    python benchmarks/bench_data_path.py --presets cpu --threads 2 --amp off --json data_path.json
    python benchmarks/bench_data_path.py --presets cpu \\
        --model-overrides 'cpu={"patch_size": 4, "stride": 3, "prompt_patch": 2}'
    python benchmarks/bench_data_path.py --presets paper --steps 2 --rounds 2   # ViT-B: slow on a CPU
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ckda_avalanche.benchmarks.batch_loader import make_reid_loader
from ckda_avalanche.benchmarks.reid_dataset import make_reid_dataset
from ckda_avalanche.benchmarks.sample import INFRARED, VISIBLE, ReIDSample
from ckda_avalanche.benchmarks.sampler import make_identity_batch_loader
from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.benchmarks.transforms import ModalityAwareTransform, build_eval_transform, build_train_transform
from ckda_avalanche.models import create_model
from ckda_avalanche.runner.config import get_preset
from ckda_avalanche.strategies import FineTune, FineTuneConfig, TrainConfig
from ckda_avalanche.strategies.base import resolve_device

# The "cache fill" row measures decoding: no on-disk decoded-image store (it would also keep a file for each
# temporary dataset this script generates).
os.environ["CKDA_DECODED_CACHE"] = "off"


def write_jpegs(folder: Path, *, identities: int, per_modality: int, size=(256, 128), seed: int = 0) -> list:
    """Random smooth colour JPEGs (quality 90) at ``size``: ``identities`` x 2 modalities x ``per_modality``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    samples = []
    for pid in range(identities):
        for modality in (VISIBLE, INFRARED):
            for k in range(per_modality):
                coarse = rng.integers(0, 256, size=(size[0] // 16, size[1] // 16, 3), dtype=np.uint8)
                image = Image.fromarray(coarse).resize((size[1], size[0]), Image.BICUBIC)
                array = np.clip(np.asarray(image, dtype=np.int16) + rng.integers(-20, 21, (*size, 3)), 0, 255)
                path = folder / f"{pid:04d}_{modality}_{k}.jpg"
                Image.fromarray(array.astype(np.uint8)).save(path, quality=90)
                samples.append(ReIDSample(path=str(path), pid=pid, camid=1 + modality, modality=modality))
    return samples


def per_image_only(transform: ModalityAwareTransform) -> ModalityAwareTransform:
    """The same per-image transform without its batched form (the dataset then decodes PIL images per item)."""
    return ModalityAwareTransform(common_pre=transform.common_pre, infrared_only=transform.infrared_only,
                                  common_post=transform.common_post)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _consume(loader) -> None:
    for batch in loader:
        pass


def bench_preset(name: str, args: argparse.Namespace, tmp: Path, device: torch.device) -> dict:
    run = get_preset(name)
    overrides = dict(args.model_overrides.get(name, {}))
    base_model = create_model(run.model, config_overrides=overrides)
    img_size = tuple(base_model.config.img_size)
    p = args.identities or run.train.num_identities
    k = args.instances or run.train.num_instances
    batch = 2 * p * k
    steps = args.steps

    synthetic = vi_lreid_benchmark(tmp / "synthetic", datasets=(args.dataset,), img_size=img_size, cache="memory")
    train = synthetic.train_stream[0].dataset
    identities = synthetic.train_stream[0].reid.num_identities
    samples = list(synthetic.train_stream[0].reid.samples)
    labels = list(train.targets)
    jpegs = write_jpegs(tmp / "jpeg", identities=args.file_identities, per_modality=args.file_images)
    files = make_reid_dataset(jpegs, labels=[s.pid for s in jpegs], dataset="jpeg", cache="off",
                              train_transform=build_train_transform(img_size),
                              eval_transform=build_eval_transform(img_size))
    old = make_reid_dataset(samples, labels=labels, dataset="old", train_transform=per_image_only(
        build_train_transform(img_size)), eval_transform=per_image_only(build_eval_transform(img_size)))

    fill_seconds = _timed(lambda: _consume(make_reid_loader(train.eval(), batch_size=256, num_workers=0)), device)

    def loader(dataset, workers):
        return make_identity_batch_loader(dataset, num_identities=p, num_instances=k, batches_per_epoch=steps,
                                          num_workers=workers, persistent_workers=True, device=device)

    memory_loader = loader(train, 0)
    files_loader = loader(files, args.workers)
    old_loader = loader(old, 0)
    ready = [[t.to(device) for t in b] for b in memory_loader]

    def strategy(num_classes: int) -> FineTune:
        torch.manual_seed(0)
        model = create_model(run.model, num_classes=num_classes, config_overrides=overrides)
        config = TrainConfig(num_identities=p, num_instances=k, amp=args.amp, epochs=1000, warmup_epochs=0)
        # the preset's whole model (CKDA's, prompters included unless the overrides remove them)
        s = FineTune(model=model, method=FineTuneConfig(pixel_prompts=model.config.use_msp), config=config,
                     device=device)
        s.model.train()
        s.is_training = True
        s.label_offset = 0
        s.dataloader = ready
        s.make_optimizer()
        return s

    model_only, with_memory, with_files = strategy(identities), strategy(identities), strategy(args.file_identities)
    with_memory.dataloader = memory_loader
    with_files.dataloader = files_loader

    variants = {
        "data, memory cache": lambda: _consume(memory_loader),
        "data, files + workers": lambda: _consume(files_loader),
        "data, per-image (old)": lambda: _consume(old_loader),
        "model step": model_only.training_epoch,
        "step + data, memory": with_memory.training_epoch,
        "step + data, files": with_files.training_epoch,
    }
    times: dict[str, list[float]] = {key: [] for key in variants}
    for round_index in range(args.rounds):
        for key, fn in variants.items():
            elapsed = _timed(fn, device) / steps
            if round_index > 0 or args.rounds == 1:
                times[key].append(elapsed)
    per_batch = {key: statistics.median(values) for key, values in times.items()}
    together, model = per_batch["step + data, memory"], per_batch["model step"]
    return {
        "preset": name, "model": run.model, "model_overrides": overrides, "img_size": list(img_size),
        "batch": batch, "steps": steps, "rounds": args.rounds, "dataset": args.dataset,
        "train_images": len(train), "file_workers": files_loader.num_workers,
        "cache_fill_images_per_s": len(train) / fill_seconds,
        "seconds_per_batch": per_batch,
        "images_per_s": {key: batch / value for key, value in per_batch.items()},
        "data_share_of_step": (together - model) / together,
        "data_alone_over_step": per_batch["data, memory cache"] / together,
        "data_share_of_step_files": (per_batch["step + data, files"] - model) / per_batch["step + data, files"],
    }


def markdown(results: list[dict]) -> str:
    rows = ["| preset | path | images/s | ms / batch |", "|---|---|---|---|"]
    for r in results:
        label = f"{r['preset']} ({r['img_size'][0]}x{r['img_size'][1]}, batch {r['batch']})"
        rows.append(f"| {label} | cache fill (decode + resize once, {r['train_images']} images) | "
                    f"{r['cache_fill_images_per_s']:,.0f} | - |")
        for key, seconds in r["seconds_per_batch"].items():
            suffix = f" ({r['file_workers']} workers)" if "files" in key else ""
            rows.append(f"| {label} | {key}{suffix} | {r['images_per_s'][key]:,.0f} | {1000 * seconds:.1f} |")
        rows.append(f"| {label} | **data share of a step, memory cache** (goal <= 15%) | "
                    f"**{100 * r['data_share_of_step']:.1f}%** (data alone / step: "
                    f"{100 * r['data_alone_over_step']:.1f}%) | |")
        rows.append(f"| {label} | data share of a step, files + workers | {100 * r['data_share_of_step_files']:.1f}% "
                    f"| |")
    return "\n".join(rows)


def _overrides(values: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for value in values:
        preset, _, text = value.partition("=")
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as err:
            raise SystemExit(f"--model-overrides {value!r}: expected PRESET={{json}}: {err}") from None
        if "img_size" in parsed:
            parsed["img_size"] = tuple(parsed["img_size"])
        out[preset] = parsed
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper"], choices=["cpu", "paper", "test"])
    parser.add_argument("--model-overrides", action="append", default=[], metavar="PRESET=JSON",
                        help="ModelConfig overrides of one preset's model, e.g. cpu='{\"patch_size\": 4}'")
    parser.add_argument("--steps", type=int, default=20, help="batches per variant per round")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (the first is a warm-up)")
    parser.add_argument("--identities", type=int, default=0, help="P (default: the preset's)")
    parser.add_argument("--instances", type=int, default=0, help="K (default: the preset's)")
    parser.add_argument("--scale", type=float, default=0.3, help="synthetic data scale")
    parser.add_argument("--dataset", default="vcm", choices=["regdb", "sysu", "llcm", "vcm"],
                        help="synthetic training set to read")
    parser.add_argument("--file-identities", type=int, default=32, help="identities of the random JPEG set")
    parser.add_argument("--file-images", type=int, default=8, help="JPEGs per identity and modality")
    parser.add_argument("--workers", default="auto", help="DataLoader workers of the file path (a number or auto)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--amp", default="off", choices=["auto", "bf16", "off"], help="TrainConfig.amp")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    args.model_overrides = _overrides(args.model_overrides)
    args.workers = args.workers if args.workers == "auto" else int(args.workers)
    warnings.filterwarnings("ignore", message="No loggers specified")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_data_path_") as folder:
        tmp = Path(folder)
        generate_synthetic(tmp / "synthetic", seed=0, scale=args.scale)
        results = [bench_preset(name, args, tmp, device) for name in args.presets]
    info = {"device": str(device), "cpu": platform.processor() or platform.machine(), "threads": args.threads,
            "cpus": os.cpu_count(), "amp": args.amp, "load_average": os.getloadavg(),
            "seconds": time.perf_counter() - started}
    print(markdown(results))
    print(f"\n{info}")
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "results": results}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
