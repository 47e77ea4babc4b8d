"""Rehearse the ``paper`` preset's data path at real scale on a machine without a GPU (a benchmark, not a test).

1. **Data at real size**: RegDB and LLCM written at exactly the paths of their real index files, 256x128 images
   (`benchmarks.synthetic.real_size.write_real_size`; BMP / JPEG like the real files), unless ``--root`` holds them.
2. **Readers**: the real readers on that tree (identities, images, time to read and validate).
3. **Cache planning** for the whole real stream at 256x128 (counts: those read in 2, HITSZ-VCM's from its real
   track-info files, SYSU-MM01's published image counts), for 1, 4 and 8 runs sharing a node of ``--node-memory``
   GiB: which splits each run caches (`plan_image_cache` with `cache_budget.per_run_cache_limit`).
4. **Decode + augment throughput per worker**: the paper preset's training transform over LLCM's training JPEGs read
   from disk in one process (``num_workers=0``: the work of one DataLoader worker), identity-balanced P x K x 2
   batches; images/s. Goal: >= 300 images/s per worker.
5. **Memory**: peak RSS after each stage (``runner.peak_memory``).
6. **Paper-model steps on the CPU**: a few fine-tuning steps of the ViT-B/16 at 256x128 on a small batch, float32.

    python benchmarks/rehearse_paper.py --root /tmp/ckda_rehearsal --json rehearsal.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from ckda_avalanche.benchmarks.cache_budget import per_run_cache_limit
from ckda_avalanche.benchmarks.datasets import LLCM, RegDB
from ckda_avalanche.benchmarks.image_store import cache_bytes, format_bytes
from ckda_avalanche.benchmarks.reid_dataset import make_reid_dataset
from ckda_avalanche.benchmarks.sampler import make_identity_batch_loader
from ckda_avalanche.benchmarks.streams import plan_image_cache
from ckda_avalanche.benchmarks.synthetic.real_size import write_real_size
from ckda_avalanche.benchmarks.transforms import build_eval_transform, build_train_transform
from ckda_avalanche.runner.env_info import cpu_model
from ckda_avalanche.runner.peak_memory import current_peak_rss

os.environ.setdefault("CKDA_DECODED_CACHE", "off")  # measure decoding, keep no on-disk store of the tree

IMG_SIZE = (256, 128)
SYSU_TRAIN_IMAGES = 22258 + 11909
"""SYSU-MM01 training images (train + val ids: 22,258 visible + 11,909 infrared; its index lists ids only)."""
SYSU_TEST_IMAGES = 3803 + 301
"""SYSU-MM01 images of one paper evaluation: 3,803 infrared queries + 301 gallery images (all-search single-shot)."""


def vcm_counts(index: Path, *, frames: int = 3, min_len: int = 12) -> tuple[int, int]:
    """(training frames, test tracklets) of HITSZ-VCM from its real track-info files: ``frames`` per training
    tracklet of at least ``min_len`` frames; one frame per test tracklet (the paper protocol's "frame" feature)."""
    def rows(name: str) -> list[list[int]]:
        text = (index / "VCM" / "info" / name).read_text(encoding="utf-8")
        return [[int(v) for v in line.split()] for line in text.splitlines() if line.strip()]

    train = sum(frames for r in rows("track_train_info.txt") if r[2] - r[1] + 1 >= min_len)
    test = sum(1 for r in rows("track_test_info.txt") if r[2] - r[1] + 1 >= min_len)
    return train, test


def _rss() -> int | None:
    return current_peak_rss()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/tmp/ckda_rehearsal", help="where the real-size tree is (or is written)")
    index_env = os.environ.get("CKDA_VI_REID_INDEX")
    parser.add_argument("--index", default=index_env, required=index_env is None,
                        help="folder of the real index files (RegDB/idx, LLCM/idx; default $CKDA_VI_REID_INDEX)")
    parser.add_argument("--node-memory", type=float, default=128.0, help="GiB of the node in the cache plan")
    parser.add_argument("--batches", type=int, default=16, help="decode+augment batches timed")
    parser.add_argument("--model-steps", type=int, default=2, help="paper-model steps on the CPU (0: none)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one worker's budget)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out: dict = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "threads": args.threads,
                 "torch": torch.__version__, "img_size": list(IMG_SIZE)}
    root = Path(args.root)

    # 1. data at real size
    if not (root / "LLCM" / "idx").is_dir() or not (root / "RegDB" / "idx").is_dir():
        out["write"] = write_real_size(root, args.index, img_size=IMG_SIZE)
    else:
        out["write"] = "existing tree"
    out["rss_after_write"] = _rss()
    print(f"data: {out['write']}", flush=True)

    # 2. readers
    start = time.perf_counter()
    regdb, llcm = RegDB(root / "RegDB"), LLCM(root / "LLCM")
    out["readers_s"] = time.perf_counter() - start
    counts = {r.name: {"train": len(r.train), "test_pool": len(r.test_pool),
                       "ids": r.summary()["splits"]["train"]["ids"]} for r in (regdb, llcm)}
    out["counts"] = counts
    print(f"readers: {counts} in {out['readers_s']:.1f} s", flush=True)

    # 3. cache planning for the real stream
    vcm_train, vcm_test = vcm_counts(Path(args.index))
    out["vcm_counts"] = {"train_frames": vcm_train, "test_tracklets": vcm_test}
    splits = [("RegDB", "train", counts["regdb"]["train"]), ("SYSU-MM01", "train", SYSU_TRAIN_IMAGES),
              ("LLCM", "train", counts["llcm"]["train"]), ("HITSZ-VCM", "train", vcm_train),
              ("RegDB", "test", counts["regdb"]["test_pool"]), ("SYSU-MM01", "test", SYSU_TEST_IMAGES),
              ("LLCM", "test", counts["llcm"]["test_pool"]), ("HITSZ-VCM", "test", vcm_test)]
    total = sum(cache_bytes(n, IMG_SIZE) for _, _, n in splits)
    node_budget = int(args.node_memory * 2**30) // 4
    plans = {}
    for runs in (1, 4, 8):
        limit = per_run_cache_limit(runs, node_limit=node_budget)
        plan = plan_image_cache(splits, img_size=IMG_SIZE, cache="auto", limit=limit)
        cached = sum(cache_bytes(n, IMG_SIZE) for name, split, n in splits if plan[name, split] == "memory")
        plans[runs] = {"per_run_limit": limit, "cached_bytes": cached, "node_total_bytes": cached * runs,
                       "from_disk": [f"{n}/{s}" for (n, s), mode in plan.items() if mode != "memory"]}
        print(f"cache plan, {runs} run(s) on a {args.node_memory:g} GiB node: {format_bytes(limit)} per run, caches "
              f"{format_bytes(cached)} ({format_bytes(cached * runs)} on the node); from disk: "
              f"{plans[runs]['from_disk'] or 'nothing'}", flush=True)
    out["cache_plan"] = {"stream_bytes": total, "node_budget": node_budget, "runs": plans}

    # 4. decode + augment throughput of one worker, from JPEG files
    train = make_reid_dataset(llcm.train, labels=[s.pid for s in llcm.train], dataset="llcm", cache="off",
                              train_transform=build_train_transform(IMG_SIZE),
                              eval_transform=build_eval_transform(IMG_SIZE))
    p, k = 8, 4  # the paper preset's batch: 8 ids x 4 images x 2 modalities
    loader = make_identity_batch_loader(train, num_identities=p, num_instances=k, batches_per_epoch=args.batches + 1,
                                        num_workers=0)
    batches = iter(loader)
    next(batches)  # warm-up
    start, cpu_start, images = time.perf_counter(), time.process_time(), 0
    for batch in batches:
        images += int(batch[0].shape[0])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    out["decode_augment"] = {"images": images, "seconds": elapsed, "cpu_seconds": cpu,
                             "images_per_s_per_worker": images / elapsed, "images_per_cpu_s": images / cpu,
                             "goal_images_per_s": 300, "loadavg": os.getloadavg()[0]}
    out["rss_after_data"] = _rss()
    print(f"decode + augment, one worker ({args.threads} thread): {images / elapsed:.0f} images/s wall, "
          f"{images / cpu:.0f} images per CPU-second ({images} images in {elapsed:.1f} s, {cpu:.1f} s CPU; load "
          f"average {os.getloadavg()[0]:.1f}); goal >= 300", flush=True)

    # 6. paper-model steps on the CPU
    if args.model_steps > 0:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_gpu import time_steps

        row = time_steps("finetune", model_name="paper", amp="off", device=torch.device("cpu"), ids=2, instances=2,
                         steps=args.model_steps, warmup=1, compile_backend=None)
        out["paper_model_cpu"] = row
        print(f"paper model (ViT-B/16, 256x128), fine-tuning, float32, batch {row['batch_images']}: "
              f"{row['step_s']:.1f} s/step, {row['images_per_s']:.2f} images/s", flush=True)
    out["peak_rss_bytes"] = _rss()
    print(f"peak RSS: {format_bytes(out['peak_rss_bytes'] or 0)}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
