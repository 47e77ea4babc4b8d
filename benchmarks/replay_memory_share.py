"""Training identities of the four real VI-ReID datasets under the paper protocol, counted from their official index
files, and the share of old identities that Replay's published memory (500 identities x 4 images) holds at the start
of each session of the real stream; then the memory size that gives the same mean share on a synthetic stream.

    python benchmarks/replay_memory_share.py INDEX_ROOT [--synthetic-identities 64]

INDEX_ROOT holds ``RegDB/idx``, ``SYSU-MM01/exp``, ``LLCM/idx`` and ``VCM/info`` (the split files only; no images).
Protocol: RegDB trial 1 (``train_visible_1.txt``), SYSU-MM01 train + val ids, LLCM every training label, HITSZ-VCM the
pids of ``track_train_info.txt``. The package's constants (`plugins.replay.PUBLISHED_STREAM_IDENTITIES`) must agree.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ckda_avalanche.plugins.replay import (
    PUBLISHED_MEMORY_IDENTITIES,
    PUBLISHED_STREAM_IDENTITIES,
    benchmark_memory_identities,
    mean_old_share,
)


def _labels(path: Path) -> set[int]:
    return {int(line.split()[1]) for line in path.read_text().splitlines() if line.strip()}


def count_identities(root: Path) -> dict[str, int]:
    regdb = _labels(root / "RegDB/idx/train_visible_1.txt") | _labels(root / "RegDB/idx/train_thermal_1.txt")
    sysu: set[int] = set()
    for name in ("train_id.txt", "val_id.txt"):
        sysu |= {int(v) for v in (root / "SYSU-MM01/exp" / name).read_text().replace("\n", ",").split(",") if v.strip()}
    llcm = _labels(root / "LLCM/idx/train_vis.txt") | _labels(root / "LLCM/idx/train_nir.txt")
    vcm = {int(line.split()[3]) for line in (root / "VCM/info/track_train_info.txt").read_text().splitlines()
           if line.strip()}
    return {"regdb": len(regdb), "sysu": len(sysu), "llcm": len(llcm), "vcm": len(vcm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index_root", type=Path)
    parser.add_argument("--synthetic-identities", type=int, default=64, help="training identities per session")
    args = parser.parse_args()
    counts = count_identities(args.index_root)
    real = list(counts.values())
    if tuple(real) != PUBLISHED_STREAM_IDENTITIES:
        raise SystemExit(f"counts {real} differ from PUBLISHED_STREAM_IDENTITIES {PUBLISHED_STREAM_IDENTITIES}")
    old = [sum(real[:s]) for s in range(1, len(real))]
    published = PUBLISHED_MEMORY_IDENTITIES
    synthetic = [args.synthetic_identities] * len(real)
    memory = benchmark_memory_identities(synthetic)
    synthetic_old = [sum(synthetic[:s]) for s in range(1, len(synthetic))]
    report = {
        "training_identities": counts,
        "published_memory_identities": published,
        "real_stream": {f"session{s + 2}": {"old_identities": o, "share": min(1.0, published / o)}
                        for s, o in enumerate(old)},
        "real_mean_share_sessions_2_4": mean_old_share(published, real),
        "synthetic_identities_per_session": args.synthetic_identities,
        "synthetic_memory_identities": memory,
        "synthetic_memory_images": memory * 4,
        "synthetic_stream": {f"session{s + 2}": {"old_identities": o, "share": min(1.0, memory / o)}
                             for s, o in enumerate(synthetic_old)},
        "synthetic_mean_share_sessions_2_4": mean_old_share(memory, synthetic),
        "rule": "fewest memory identities whose mean share of old identities over sessions 2-4 reaches the "
                "published memory's mean share on the real stream",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
