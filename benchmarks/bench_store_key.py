"""What keying the decoded-image store by content costs, per image, next to what the store saves (decoding).

Measures, over the image files of a dataset folder (default: synthetic data generated at ``--scale`` into a
temporary folder; ``--root`` for another folder; ``--jpeg N`` adds N random 256x128 JPEG files, the size of real
VI-ReID images), median over ``--rounds`` after a warm-up, files in the page cache:

- ``hash, first time``: `file_integrity.content_digest` with the per-process memo cleared (read + BLAKE2b-128);
- ``hash, known file``: the same call once the file is known (one ``stat`` per file): every later dataset over
  the same files in the process;
- ``decode``: `image_store.decode_resized` (PIL decode, RGB, antialiased resize to ``--size``), what a store hit
  saves per image;
- ``verify store``: checking the CRC-32 of every record of a store file holding these images (per image, and MB/s).

    python benchmarks/bench_store_key.py --scale 0.3 --jpeg 500 --rounds 5 --json store_key.json
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ckda_avalanche.benchmarks.file_integrity import clear_digest_memo, content_digest, torch_file_problem
from ckda_avalanche.benchmarks.image_store import decode_resized
from ckda_avalanche.benchmarks.synthetic import generate_synthetic

IMAGE_SUFFIXES = {".bmp", ".jpg", ".jpeg", ".png"}


def _timed(function, items) -> float:
    start = time.perf_counter()
    for item in items:
        function(item)
    return (time.perf_counter() - start) / max(1, len(items))


def _median_us(function, items, rounds: int) -> float:
    _timed(function, items)  # warm-up (page cache, imports)
    return 1e6 * statistics.median(_timed(function, items) for _ in range(rounds))


def measure(files: list[str], *, size: tuple[int, int], rounds: int) -> dict[str, float]:
    def first_time(path: str) -> None:
        clear_digest_memo()
        content_digest(path)

    hashed = _median_us(first_time, files, rounds)
    for path in files:
        content_digest(path)
    known = _median_us(content_digest, files, rounds)
    decode = _median_us(lambda p: decode_resized(p, dataset="RegDB", img_size=size, interpolation="bicubic"),
                        files[: min(len(files), 400)], rounds)
    buffer = io.BytesIO()
    torch.save({"images": torch.zeros((len(files), 3, *size), dtype=torch.uint8)}, buffer)
    archive = buffer.getvalue()
    start = time.perf_counter()
    for _ in range(rounds):
        assert torch_file_problem(archive) is None
    verify_s = (time.perf_counter() - start) / rounds
    sizes = [Path(p).stat().st_size for p in files]
    return {"files": len(files), "mean_file_bytes": float(np.mean(sizes)), "hash_first_us": hashed,
            "hash_known_us": known, "decode_us": decode, "verify_store_us_per_image": 1e6 * verify_s / len(files),
            "verify_store_mb_per_s": len(archive) / verify_s / 1e6}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} CPUs"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="a dataset folder (default: synthetic data in a temporary folder)")
    parser.add_argument("--scale", type=float, default=0.3, help="synthetic scale (without --root)")
    parser.add_argument("--jpeg", type=int, default=0, help="also time N random 256x128 JPEG files")
    parser.add_argument("--size", type=int, nargs=2, default=(32, 16), help="resize target (height width)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"machine": _cpu_model(), "torch_threads": args.threads, "load_average": list(os.getloadavg())}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root) if args.root else Path(tmp) / "synthetic"
        if not args.root:
            generate_synthetic(root, seed=0, scale=args.scale)
        files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        results["dataset_files"] = measure(files, size=tuple(args.size), rounds=args.rounds)
        if args.jpeg:
            rng = np.random.default_rng(0)
            jpegs = []
            for k in range(args.jpeg):
                path = Path(tmp) / "jpeg" / f"{k}.jpg"
                path.parent.mkdir(exist_ok=True)
                smooth = rng.integers(0, 256, size=(32, 16, 3), dtype=np.uint8)
                Image.fromarray(smooth).resize((128, 256), Image.BICUBIC).save(path, quality=90)
                jpegs.append(str(path))
            results["jpeg_256x128"] = measure(jpegs, size=tuple(args.size), rounds=args.rounds)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
