"""Calibration probe: train FineTune for one session on one synthetic dataset and report cross-modality mAP/Rank-1.

Used to size the ``cpu`` preset and to check that the synthetic benchmark is learnable (README, "Calibrating the CPU
preset"). Example (one row of the README table):

    .venv/bin/python benchmarks/probe_cross_modal.py --root data/synthetic --dataset regdb --epochs 24 --lr 3e-3 \
        --identities 8 --instances 2
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.evaluation.ranking import evaluate_rank
from ckda_avalanche.models import create_model
from ckda_avalanche.strategies import FineTune, FineTuneConfig, TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data/synthetic")
    parser.add_argument("--dataset", default="regdb")
    parser.add_argument("--model", default="cpu")
    parser.add_argument("--img-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="override the model's input size (e.g. 64 32 for the earlier cpu preset)")
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--identities", type=int, default=8, help="P")
    parser.add_argument("--instances", type=int, default=2, help="K")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrained", default=None, help="backbone weights (file or 'synthetic-cpu'); default none")
    parser.add_argument("--within", action="store_true",
                        help="also report within-modality mAP (visible->visible, infrared->infrared; self excluded)")
    parser.add_argument("--overrides", default=None, help="JSON ModelConfig overrides")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up epochs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    import json

    overrides = json.loads(args.overrides) if args.overrides else None
    model = create_model(args.model, args.pretrained or False, img_size=tuple(args.img_size) if args.img_size else None,
                         config_overrides=overrides)
    bm = vi_lreid_benchmark(args.root, datasets=(args.dataset,), img_size=tuple(model.config.img_size))
    config = TrainConfig(epochs=args.epochs, warmup_epochs=args.warmup, amp="off", lr=args.lr, seed=args.seed,
                         num_identities=args.identities, num_instances=args.instances)
    strategy = FineTune(model=model, method=FineTuneConfig(pixel_prompts=model.config.use_msp), config=config,
                        device="cpu")  # the model as built (--overrides decide the prompters)
    start = time.perf_counter()
    strategy.train(bm.train_stream[0])
    seconds = time.perf_counter() - start
    exp = bm.test_stream[0]
    model.eval()
    with torch.no_grad():
        feats = torch.cat([model(b[0], b[3]) for b in torch.utils.data.DataLoader(exp.dataset.eval(), batch_size=256)])
    trial = exp.reid.protocol.trials(exp.reid.samples)[0]
    pids = np.array([s.pid for s in exp.reid.samples])
    cams = np.array([s.camid for s in exp.reid.samples])
    result = evaluate_rank(1 - feats[trial.query] @ feats[trial.gallery].T, pids[trial.query], pids[trial.gallery],
                           cams[trial.query], cams[trial.gallery], rule=trial.rule)
    iterations = strategy.clock.train_epoch_iterations * args.epochs
    print(f"{args.dataset} {trial.name}: cross-modality mAP {result.mAP:.3f} Rank-1 {result.cmc[0]:.3f} "
          f"after ~{iterations} iterations ({seconds:.0f} s training)")
    if args.within:
        modality = np.array([s.modality for s in exp.reid.samples])
        for m, name in ((0, "visible->visible"), (1, "infrared->infrared")):
            print(f"{args.dataset} {name}: mAP {within_map(feats[modality == m], pids[modality == m]):.3f}")


def within_map(feats: torch.Tensor, pids: np.ndarray) -> float:
    """Mean AP of every image against all others of the same modality (itself left out; queries with no other
    image of their identity skipped). A diagnostic: how separable identities are without the modality gap."""
    sims = (feats @ feats.T).numpy()
    aps = []
    for i in range(len(pids)):
        others = np.arange(len(pids)) != i
        order = np.argsort(-sims[i, others], kind="stable")
        hits = (pids[others] == pids[i])[order]
        if hits.any():
            ranks = np.flatnonzero(hits) + 1
            aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    return float(np.mean(aps))


if __name__ == "__main__":
    main()
