"""Per-step cost of the CKDA strategy machinery.

Measures, side by side in one process on the same model preset and the same batch:

1. ``plain``: a hand-written PyTorch loop doing the same work as a first-session step (forward, ReIDCriterion,
   backward, AdamW step, schedule step);
2. ``finetune``: a `FineTune` strategy step (Avalanche hooks, finite-loss check, ...);
3. ``ckda_s1``: a first-session `CKDA` step (no teacher yet: same work as ``plain``);
4. ``ckda_s2``: a second-session `CKDA` step (teacher forward, prompt consistency, CKA with prototypes).

Reported ratios: ckda_s1 / plain (strategy overhead, target <= 1.10) and ckda_s2 / finetune (cost of CKDA's
distillation, target <= 1.5). Rounds are interleaved so machine load drifts affect all variants alike; each number
is the median over rounds of the mean step time of a round.

    .venv/bin/python benchmarks/bench_step.py --preset cpu --identities 4 --instances 4 --steps 5 --rounds 5
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
import warnings

import torch

from ckda_avalanche.losses import ReIDCriterion
from ckda_avalanche.models import create_model
from ckda_avalanche.plugins import DualPrototypes
from ckda_avalanche.strategies import CKDA, FineTune, FineTuneConfig, TrainConfig
from ckda_avalanche.strategies.optim import build_optimizer, make_scheduler
from ckda_avalanche.strategies.precision import autocast_context, resolve_amp_dtype


def make_batch(p: int, k: int, size: tuple[int, int], seed: int = 0) -> list[torch.Tensor]:
    """(image, pid, camid, modality, task): P ids x K visible, then the same ids x K infrared."""
    g = torch.Generator().manual_seed(seed)
    n = 2 * p * k
    pid = torch.arange(p).repeat_interleave(k).repeat(2)
    modality = torch.cat([torch.zeros(p * k), torch.ones(p * k)]).long()
    return [torch.randn(n, 3, *size, generator=g), pid, torch.zeros(n, dtype=torch.long), modality,
            torch.zeros(n, dtype=torch.long)]


class PlainLoop:
    """The reference: forward + ReIDCriterion + backward + AdamW + LambdaLR, nothing else."""

    def __init__(self, model, config: TrainConfig, steps: int) -> None:
        self.model = model.train()
        self.amp_dtype = resolve_amp_dtype(config.amp, torch.device("cpu"))
        self.criterion = ReIDCriterion()
        self.optimizer = build_optimizer(model, config)
        self.scheduler = make_scheduler(self.optimizer, config, iterations_per_epoch=steps, epochs=1000)

    def run(self, batch, steps: int) -> None:
        x, pid, _, modality, _ = batch
        for _ in range(steps):
            self.optimizer.zero_grad(set_to_none=True)
            with autocast_context(torch.device("cpu"), self.amp_dtype):
                loss = self.criterion(self.model(x, modality), pid)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()


def prepare_strategy(strategy, batch, steps: int):
    """Put a strategy in the state of a training session fed by ``[batch] * steps`` (no data loading)."""
    strategy.model.train()
    strategy.is_training = True
    strategy.label_offset = 0
    strategy.dataloader = [tuple(batch)] * steps
    strategy.make_optimizer()
    return strategy


def run_strategy(strategy) -> None:
    """One pass over the prepared ``[batch] * steps`` loader through the strategy's own training loop."""
    strategy.training_epoch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu", help="model preset (create_model name)")
    parser.add_argument("--identities", type=int, default=4, help="P")
    parser.add_argument("--instances", type=int, default=4, help="K")
    parser.add_argument("--steps", type=int, default=5, help="steps per variant per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (first one is warm-up)")
    parser.add_argument("--prototypes", type=int, default=200, help="old identities per modality for CKA")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--amp", default="off", choices=["auto", "bf16", "off"], help="TrainConfig.amp")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No loggers specified")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = create_model(args.preset, num_classes=args.identities)
    size = tuple(base.config.img_size)
    batch = make_batch(args.identities, args.instances, size)
    config = TrainConfig(num_identities=args.identities, num_instances=args.instances, amp=args.amp, epochs=1000)

    plain = PlainLoop(copy.deepcopy(base), config, args.steps)
    finetune = prepare_strategy(FineTune(model=copy.deepcopy(base), method=FineTuneConfig(pixel_prompts=True),
                                         config=config, device="cpu"), batch, args.steps)  # CKDA's model
    ckda_s1 = prepare_strategy(CKDA(model=copy.deepcopy(base), config=config, device="cpu"), batch, args.steps)
    ckda_s2 = prepare_strategy(CKDA(model=copy.deepcopy(base), config=config, device="cpu"), batch, args.steps)
    g = torch.Generator().manual_seed(1)
    dim = base.embed_dim
    ckda_s2.teacher.refresh(copy.deepcopy(base))
    n = args.prototypes
    ckda_s2.cka.history = [DualPrototypes(torch.randn(n, dim, generator=g), torch.arange(n),
                                          torch.randn(n, dim, generator=g), torch.arange(n))]
    variants = {
        "plain": lambda: plain.run(batch, args.steps),
        "finetune": lambda: run_strategy(finetune),
        "ckda_s1": lambda: run_strategy(ckda_s1),
        "ckda_s2": lambda: run_strategy(ckda_s2),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_index in range(args.rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            elapsed = (time.perf_counter() - start) / args.steps
            if round_index > 0:
                times[name].append(elapsed)
    median = {name: statistics.median(v) for name, v in times.items()}
    result = {
        "preset": args.preset, "img_size": list(size), "batch": 2 * args.identities * args.instances,
        "threads": args.threads, "amp": args.amp, "steps": args.steps, "rounds": args.rounds - 1,
        "step_seconds": median,
        "overhead_ckda_s1_vs_plain": median["ckda_s1"] / median["plain"],
        "overhead_finetune_vs_plain": median["finetune"] / median["plain"],
        "ckda_s2_vs_finetune": median["ckda_s2"] / median["finetune"],
    }
    for name, value in median.items():
        print(f"{name:>9}: {1000 * value:8.1f} ms/step")
    print(f"ckda_s1 / plain    = {result['overhead_ckda_s1_vs_plain']:.3f}  (target <= 1.10)")
    print(f"finetune / plain   = {result['overhead_finetune_vs_plain']:.3f}")
    print(f"ckda_s2 / finetune = {result['ckda_s2_vs_finetune']:.3f}  (target <= 1.50)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
