"""``ckda pretrain``: a synthetic stand-in for ImageNet pretraining of the ``cpu`` backbone.

CKDA (arXiv 2511.15016, §4.1) and every VI-LReID baseline start from an ImageNet-pretrained ViT: the model already
extracts useful features, learns each dataset well within a session, then forgets. Nothing is downloaded here, so
this module trains the backbone of a registered model on the pretraining pool
(``benchmarks/synthetic/pretrain_pool.py``: identities, palettes, backgrounds and illumination the benchmark never
uses; visible images only by default, like ImageNet) and saves it as a safetensors file that `load_pretrained`
reads like an ImageNet checkpoint.

What is pretrained is the plain ViT (patch embedding, position embedding, CLS token, blocks, final norm): the
model is built with prompts and modality embedding off, exactly the parameters an ImageNet checkpoint provides.
The objective is person re-identification itself (identity cross-entropy with label smoothing + batch-hard
triplet, `ReIDCriterion`) on P x K identity-balanced batches, with flips and random erasing.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ckda_avalanche.benchmarks import batch_ops
from ckda_avalanche.benchmarks.synthetic.pretrain_pool import MODALITY_CHOICES, pool_record, render_pretrain_pool
from ckda_avalanche.benchmarks.transforms import IMAGENET_MEAN, IMAGENET_STD
from ckda_avalanche.losses import ReIDCriterion
from ckda_avalanche.models import create_model
from ckda_avalanche.models.weights_file import save_backbone

PLAIN_VIT = {"use_msp": False, "use_mcp": False, "use_modality_embedding": False}
"""Model overrides of the pretrained network: the parameters an ImageNet ViT checkpoint has, nothing more."""


@dataclass(frozen=True)
class PretrainConfig:
    """Everything ``ckda pretrain`` needs (defaults: the run that made the committed weights)."""

    model: str = "cpu-faithful"
    """Registered model whose backbone is pretrained (its architecture is recorded in the file)."""
    num_ids: int = 1200
    """Identities in the pool."""
    cameras_per_id: int = 3
    """Visible cameras each identity is seen in."""
    images_per_camera: int = 3
    """Images per identity and camera."""
    modalities: str = "visible"
    """"visible" (like ImageNet) or "both" (adds one near-infrared camera per identity)."""
    pool_seed: int = 0
    """Seed of the pool's generator (salted: never a benchmark draw)."""
    steps: int = 4000
    """Optimiser steps."""
    num_identities: int = 16
    """P: identities per batch."""
    num_instances: int = 4
    """K: images per identity in a batch."""
    lr: float = 1e-3
    """AdamW peak learning rate (from random weights)."""
    weight_decay: float = 0.05
    """AdamW weight decay."""
    warmup_steps: int = 200
    """Linear warm-up steps, then cosine decay to 1% of the peak."""
    objective: str = "id+triplet"
    """"id+triplet", "id" (cross-entropy only) or "triplet" (metric only)."""
    grayscale_p: float = 0.8
    """Probability of showing a pool image in greyscale: visible-only pretraining that must also rely on shape,
    texture and brightness, the cues that survive in infrared (a common VI-ReID augmentation)."""
    seed: int = 0
    """Seed of initialisation, batches and augmentation."""
    amp: str = "off"
    """"off" (float32) or "bf16" autocast of the forward (CPU or CUDA)."""

    def __post_init__(self) -> None:
        if self.modalities not in MODALITY_CHOICES:
            raise ValueError(f"PretrainConfig.modalities: expected one of {MODALITY_CHOICES}, got {self.modalities!r}")
        if self.objective not in ("id+triplet", "id", "triplet"):
            raise ValueError(f"PretrainConfig.objective: expected 'id+triplet', 'id' or 'triplet', got "
                             f"{self.objective!r}")
        if not 0.0 <= self.grayscale_p <= 1.0:
            raise ValueError(f"PretrainConfig.grayscale_p: expected a probability in [0, 1], got {self.grayscale_p}")
        if self.amp not in ("off", "bf16"):
            raise ValueError(f"PretrainConfig.amp: expected 'off' or 'bf16', got {self.amp!r}")
        for name in ("num_ids", "steps", "num_identities", "num_instances"):
            if getattr(self, name) < 1:
                raise ValueError(f"PretrainConfig.{name}: expected >= 1, got {getattr(self, name)}")
        if self.num_identities > self.num_ids:
            raise ValueError(f"PretrainConfig.num_identities ({self.num_identities}) exceeds num_ids ({self.num_ids})")


def _batches(labels: torch.Tensor, *, p: int, k: int, generator: torch.Generator):
    """Endless P x K batches of pool indices: P random identities, K random images of each (without replacement
    when the identity has K images or more)."""
    num_ids = int(labels.max()) + 1
    by_id = [torch.nonzero(labels == i).flatten() for i in range(num_ids)]
    while True:
        ids = torch.randperm(num_ids, generator=generator)[:p]
        picks = []
        for i in ids.tolist():
            pool = by_id[i]
            if len(pool) >= k:
                picks.append(pool[torch.randperm(len(pool), generator=generator)[:k]])
            else:
                picks.append(pool[torch.randint(len(pool), (k,), generator=generator)])
        yield torch.cat(picks)


def augment(images: torch.Tensor, *, generator: torch.Generator, grayscale_p: float = 0.0,
            erase_p: float = 0.5) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> normalised float32: per image, greyscale (p ``grayscale_p``: the ITU-R 601 luminance
    in all three channels, like torchvision's ``RandomGrayscale``), a horizontal flip (p 0.5), then random erasing
    (p ``erase_p``, area 2-33%, aspect 0.3-3.3, erased to 0 after normalisation, like torchvision's default)."""
    b, _, h, w = images.shape
    images = batch_ops.grayscale(images, torch.rand(b, generator=generator) < grayscale_p)
    x = batch_ops.flip(images, torch.rand(b, generator=generator) < 0.5)
    x = batch_ops.normalize(x, torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD))
    area = torch.empty(b).uniform_(0.02, 0.33, generator=generator) * h * w
    log_ratio = torch.empty(b).uniform_(math.log(0.3), math.log(1 / 0.3), generator=generator)
    eh = (area * log_ratio.exp()).sqrt().round().clamp(1, h)
    ew = (area / log_ratio.exp()).sqrt().round().clamp(1, w)
    top = (torch.rand(b, generator=generator) * (h - eh + 1)).floor()
    left = (torch.rand(b, generator=generator) * (w - ew + 1)).floor()
    boxes = torch.stack([top, left, eh, ew], dim=1).long()
    return batch_ops.erase(x, boxes, torch.rand(b, generator=generator) < erase_p, inplace=True)


def pretrain(config: PretrainConfig, out: str | Path, *, command: str = "", log_every: int = 200,
             log=None) -> dict[str, Any]:
    """Render the pool, train the backbone, save ``out`` (+ ``out.sha256``, ``out.json``) and return the report.

    The report (in the ``.json`` sidecar and the safetensors metadata key ``pretrain``) holds the config, the loss
    curve, the times and, under ``pool`` (also its own metadata key), the generator and pool versions, every pool
    domain spec and scene range and the measured separation from the benchmark (`pretrain_pool.pool_record`)."""
    log = log or (lambda line: print(line, flush=True))
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ValueError(f"ckda pretrain --out {out}: expected a .safetensors file name")
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    model = create_model(config.model, config_overrides=PLAIN_VIT)
    pool = render_pretrain_pool(num_ids=config.num_ids, cameras_per_id=config.cameras_per_id,
                                images_per_camera=config.images_per_camera, modalities=config.modalities,
                                img_size=tuple(model.config.img_size), seed=config.pool_seed)
    render_seconds = time.perf_counter() - start
    log(f"pool: {len(pool)} images of {pool.num_ids} identities ({config.modalities}) rendered in "
        f"{render_seconds:.0f} s")
    model.reset_classifier(pool.num_ids)
    model.train()
    from ckda_avalanche.losses.reid_criterion import ReIDLossConfig

    weights = {"id+triplet": (1.0, 1.0), "id": (1.0, 0.0), "triplet": (0.0, 1.0)}[config.objective]
    criterion = ReIDCriterion(config=ReIDLossConfig(id_weight=weights[0], triplet_weight=weights[1]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return 0.01 + 0.99 * step / config.warmup_steps
        t = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    generator = torch.Generator().manual_seed(config.seed)
    batches = _batches(pool.labels, p=config.num_identities, k=config.num_instances, generator=generator)
    curve: list[tuple[int, float]] = []
    running = 0.0
    for step in range(1, config.steps + 1):
        idx = next(batches)
        x = augment(pool.images[idx], generator=generator, grayscale_p=config.grayscale_p)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.amp == "bf16"):
            output = model(x, pool.modality[idx])
        loss = criterion(output, pool.labels[idx])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"ckda pretrain: non-finite loss {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.item()
        if step % log_every == 0 or step == config.steps:
            n = log_every if step % log_every == 0 else step % log_every
            curve.append((step, round(running / n, 4)))
            log(f"step {step}/{config.steps}: loss {running / n:.3f} ({time.perf_counter() - start:.0f} s)")
            running = 0.0
    seconds = time.perf_counter() - start
    report = {"pretrain_config": dataclasses.asdict(config), "pool_images": len(pool), "pool_ids": pool.num_ids,
              "render_seconds": round(render_seconds, 1), "seconds": round(seconds, 1), "loss_curve": curve,
              "command": command, "torch_threads": torch.get_num_threads(), "pool": pool_record()}
    sha = save_backbone(model, out, metadata={"pretrain": json.dumps(report, sort_keys=True),
                                              "pool": json.dumps(report["pool"], sort_keys=True)})
    report["sha256"] = sha
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    log(f"wrote {out} (sha256 {sha}) in {seconds:.0f} s")
    return report


def run_pretrain_command(*, out: str, config_file: str | None, threads: int | None, flags: dict[str, str],
                         command: str) -> dict[str, Any]:
    """``ckda pretrain``: `PretrainConfig` from defaults, then ``--config FILE``, then the flags (typed, checked)."""
    import os

    from ckda_avalanche.runner.overrides import apply_overrides, load_config_file

    config = PretrainConfig()
    if config_file:
        config = apply_overrides(config, load_config_file(config_file), where=str(config_file))
    config = apply_overrides(config, flags, where="ckda pretrain")  # flags arrive typed by argparse
    torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
    return pretrain(config, out, command=command)
