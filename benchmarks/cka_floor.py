"""CKA's floor at identical weights: the KL of CKA (and its gradient on the shared backbone) when the student *is* the
teacher, under the published setting and the alternative readings of the method spec (s = 10, s = 100, the
normalised student feature L2norm(BN(f))).

    python benchmarks/cka_floor.py [--data data/synthetic] [--batches 20] [--out results/cka_floor/cka_floor.json]

Setting: the ``cpu`` run preset (``cpu-faithful`` model with the shipped synthetic pretraining, its training
settings), CKDA trained for session 1 (RegDB layout, seed 0); then, as at the first iteration of session 2, the
student and the teacher have the same weights (the merged model), the prototypes are the teacher's of session 1
(CKDA's own), and the batches are identity-balanced training batches (P = 8, K = 2, train transform) of session 2
(SYSU-MM01 layout). Before session 1 the BNNeck's running statistics are still 0 / 1, so BN(f) = f and the floor
is nil; after it they are not. The teacher runs in eval mode (f~ = L2norm(BN_running(f))). The student is measured in
eval mode (the pure floor: only the feature spaces differ) and in train mode (as in training: dropout, drop-path and
the batch statistics of BN, seeded). Reported per reading: L_intra, L_inter (mean over batches), the backbone gradient
norm of CKA = 0.5 L_intra + 0.5 L_inter and, for scale, that of the batch-hard triplet loss on the same batch.
The data is the default synthetic draw (``ckda run --data synthetic`` writes it to data/synthetic).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import platform
from pathlib import Path

import torch
import torch.nn.functional as F

from ckda_avalanche.benchmarks.sampler import make_identity_batch_loader
from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.losses.affinity import cka_terms
from ckda_avalanche.losses.triplet import batch_hard_triplet
from ckda_avalanche.models import create_model
from ckda_avalanche.plugins.grad_share import shared_backbone_parameters
from ckda_avalanche.runner.config import CPU
from ckda_avalanche.runner.training import seed_everything
from ckda_avalanche.strategies.ckda import CKDA

READINGS = {
    "published (s=0.1, pre-BN f)": {"scale": 0.1, "student": "feat"},
    "s=10 (pre-BN f)": {"scale": 10.0, "student": "feat"},
    "s=100 (pre-BN f; the affinity helper's own default)": {"scale": 100.0, "student": "feat"},
    "normalised student (s=0.1, L2norm(BN(f)))": {"scale": 0.1, "student": "normalized_bn"},
    "normalised student, s=10": {"scale": 10.0, "student": "normalized_bn"},
}


def _grad_norm(value: torch.Tensor, params: list[torch.nn.Parameter]) -> float:
    grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
    return math.sqrt(sum(float((g * g).sum()) for g in grads if g is not None))


def measure(data: Path, batches: int) -> dict:
    generate_synthetic(data, seed=0)
    bench = vi_lreid_benchmark(data, datasets=("regdb", "sysu"), img_size=(32, 16))
    seed_everything(0)
    strategy = CKDA(model=create_model(CPU.model, CPU.pretrained or False),
                    config=dataclasses.replace(CPU.train, num_workers=0), device="cpu")
    strategy.train(bench.train_stream[0])
    model = strategy.model
    teacher = copy.deepcopy(strategy.teacher.model).eval()
    protos = strategy.cka.prototypes
    same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), teacher.state_dict().values())
               if a.shape == b.shape)
    if not same:
        raise RuntimeError("student and teacher differ after session 1")
    loader = make_identity_batch_loader(bench.train_stream[1].dataset.train(), num_identities=8, num_instances=2,
                                        seed=0, batches_per_epoch=batches, num_workers=0)
    params = shared_backbone_parameters(model)
    sums: dict[str, dict[str, list[float]]] = {}
    for mode in ("eval", "train"):
        model.train(mode == "train")
        for batch in loader:
            x, pid, modality = batch[0], batch[1], batch[3]
            with torch.no_grad():
                feat_t, _ = teacher.forward_features(x, modality)
                target = F.normalize(teacher.head.bnneck(feat_t), dim=1)
            feat, _ = model.forward_features(x, modality)
            normalized = F.normalize(model.head.bnneck(feat), dim=1)
            triplet = _grad_norm(batch_hard_triplet(feat, pid), params)
            for name, reading in READINGS.items():
                student = feat if reading["student"] == "feat" else normalized
                terms = cka_terms(student, target, modality, protos.visible, protos.infrared, scale=reading["scale"])
                cka = 0.5 * terms.intra + 0.5 * terms.inter
                row = sums.setdefault(f"{mode}|{name}", {"intra": [], "inter": [], "grad": [], "triplet_grad": []})
                row["intra"].append(float(terms.intra.detach()))
                row["inter"].append(float(terms.inter.detach()))
                row["grad"].append(_grad_norm(cka, params) if cka.requires_grad else 0.0)
                row["triplet_grad"].append(triplet)
    out: dict = {}
    for key, row in sums.items():
        mode, name = key.split("|")
        out.setdefault(f"student_{mode}_mode", {})[name] = {
            "L_intra": sum(row["intra"]) / len(row["intra"]),
            "L_inter": sum(row["inter"]) / len(row["inter"]),
            "cka_backbone_grad_norm": sum(row["grad"]) / len(row["grad"]),
            "triplet_backbone_grad_norm": sum(row["triplet_grad"]) / len(row["triplet_grad"]),
        }
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/synthetic"))
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = {"command": f"python benchmarks/cka_floor.py --batches {args.batches}", "precision": "float32",
              "machine": f"{_cpu_model()}, 1 torch thread", "model": CPU.model,
              "pretrained": CPU.pretrained, "batches": args.batches, **measure(args.data, args.batches)}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
