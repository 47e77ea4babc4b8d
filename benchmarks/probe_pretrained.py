"""Transfer probe of a backbone: frozen-feature cross-modality mAP on each synthetic benchmark test set.

Used to compare pretraining choices (docs/pretraining.md): the backbone is loaded into the ``cpu-faithful`` model (prompts
and modality embedding at their initialisation, exactly as a run starts) and every test set is scored with the
paper protocol's first trial, without any training. ``--pretrained none`` gives the random-backbone reference.

    .venv/bin/python benchmarks/probe_pretrained.py --root data/synthetic --pretrained synthetic-cpu-faithful
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.evaluation.ranking import evaluate_rank
from ckda_avalanche.models import create_model


def probe(root: str, pretrained: str | None, model_name: str = "cpu-faithful", seed: int = 0) -> dict[str, float]:
    """Dataset -> frozen-feature cross-modality mAP (paper protocol, first trial)."""
    torch.manual_seed(seed)
    model = create_model(model_name, pretrained or False).eval()
    bm = vi_lreid_benchmark(root, img_size=tuple(model.config.img_size))
    scores = {}
    for exp in bm.test_stream:
        with torch.no_grad():
            feats = torch.cat([model(b[0], b[3]) for b in
                               torch.utils.data.DataLoader(exp.dataset.eval(), batch_size=256)])
        trial = exp.reid.protocol.trials(exp.reid.samples)[0]
        pids = np.array([s.pid for s in exp.reid.samples])
        cams = np.array([s.camid for s in exp.reid.samples])
        result = evaluate_rank(1 - feats[trial.query] @ feats[trial.gallery].T, pids[trial.query],
                               pids[trial.gallery], cams[trial.query], cams[trial.gallery], rule=trial.rule)
        scores[exp.reid.dataset] = result.mAP
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data/synthetic")
    parser.add_argument("--pretrained", nargs="+", default=["synthetic-cpu-faithful"], help="weights files/names or 'none'")
    parser.add_argument("--model", default="cpu-faithful", help="registered model the weights are loaded into")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for weights in args.pretrained:
        scores = probe(args.root, None if weights == "none" else weights, args.model)
        row = " ".join(f"{k} {100 * v:.1f}" for k, v in scores.items())
        print(f"{weights}: frozen cross-modality mAP {row} | mean {100 * np.mean(list(scores.values())):.1f}")


if __name__ == "__main__":
    main()
