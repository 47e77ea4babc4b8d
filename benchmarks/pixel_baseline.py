"""Raw-pixel cross-modality baseline on a RegDB-layout root: grayscale, 32x16, per-image standardised, cosine.

A training-free check that the synthetic data carries a cross-modal cue at all (README, "Calibrating the CPU preset"):

    .venv/bin/python benchmarks/pixel_baseline.py data/synthetic/RegDB
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from ckda_avalanche.benchmarks.datasets import RegDB
from ckda_avalanche.evaluation.ranking import evaluate_rank


def pixel_feature(path: str) -> np.ndarray:
    """Grayscale 32x16 pixels, standardised per image and L2-normalised."""
    a = np.asarray(Image.open(path).convert("L").resize((16, 32)), dtype=np.float32)
    a = (a - a.mean()) / (a.std() + 1e-6)
    return a.ravel() / np.linalg.norm(a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="a RegDB-layout folder (e.g. data/synthetic/RegDB)")
    parser.add_argument("--trial", type=int, default=1)
    args = parser.parse_args()
    reader = RegDB(args.root, trial=args.trial)
    q = np.stack([pixel_feature(s.path) for s in reader.query])
    g = np.stack([pixel_feature(s.path) for s in reader.gallery])
    result = evaluate_rank(1 - q @ g.T, np.array([s.pid for s in reader.query]), np.array([s.pid for s in reader.gallery]),
                           np.array([s.camid for s in reader.query]), np.array([s.camid for s in reader.gallery]),
                           rule="none")
    print(f"RegDB visible->infrared, raw pixels: mAP {result.mAP:.3f} Rank-1 {result.cmc[0]:.3f}")


if __name__ == "__main__":
    main()
