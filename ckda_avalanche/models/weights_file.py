"""Backbone weight files made by ``ckda pretrain``: safetensors + architecture record + sha256 sidecar.

A file written by `save_backbone` is a timm ViT state dict (what an ImageNet checkpoint holds), so
`load_pretrained` reads it like any other checkpoint. Its safetensors metadata also records the architecture it was
trained with (`ARCHITECTURE_FIELDS` of `ModelConfig`); loading it into a model whose architecture differs is an
error naming the file and every differing field, instead of a silent position-embedding resample. A
``FILE.sha256`` sidecar (``sha256sum`` format) is checked on load when present, which catches a truncated copy or a
Git LFS pointer in place of the weights.

`BUILTIN_WEIGHTS` names the weights shipped inside the package (``ckda pretrain`` on the synthetic pool).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .config import ModelConfig

FORMAT = "ckda-backbone-v1"
"""Value of the ``ckda_format`` metadata key."""
ARCHITECTURE_FIELDS: tuple[str, ...] = ("img_size", "in_chans", "patch_size", "stride", "embed_dim", "depth",
                                        "num_heads", "mlp_ratio", "qkv_bias")
"""`ModelConfig` fields that fix the backbone's weights and their meaning."""
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
"""Folder of the weights shipped with the package."""
BUILTIN_WEIGHTS: dict[str, Path] = {
    "synthetic-cpu-faithful": WEIGHTS_DIR / "vit_tiny_faithful_reid_synthetic.safetensors"}
"""Names accepted by ``--pretrained`` / ``RunConfig.pretrained`` besides file paths."""


def resolve_weights(name_or_path: str | Path) -> Path:
    """A `BUILTIN_WEIGHTS` name -> its file; anything else is taken as a path."""
    return BUILTIN_WEIGHTS.get(str(name_or_path), Path(name_or_path))


def architecture_of(config: ModelConfig) -> dict:
    """The `ARCHITECTURE_FIELDS` of ``config`` as JSON-ready values."""
    arch = {name: getattr(config, name) for name in ARCHITECTURE_FIELDS}
    arch["img_size"] = list(arch["img_size"])
    return arch


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_backbone(model, path: str | Path, *, metadata: dict[str, str] | None = None) -> str:
    """Write ``model.backbone``'s state dict to ``path`` (.safetensors) with the architecture record, write the
    ``path.sha256`` sidecar and return the hex digest."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.backbone.state_dict().items()}
    meta = {"ckda_format": FORMAT, "architecture": json.dumps(architecture_of(model.config), sort_keys=True),
            **(metadata or {})}
    save_file(tensors, str(path), metadata=meta)
    digest = sha256_of(path)
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    return digest


def check_weights_file(path: Path, config: ModelConfig) -> None:
    """Verify the sha256 sidecar (if any) and, for files made by `save_backbone`, the architecture record."""
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        expected = (sidecar.read_text().split() or [""])[0]
        actual = sha256_of(path)
        if actual != expected:
            raise ValueError(f"pretrained checkpoint {str(path)!r}: sha256 {actual} does not match {sidecar.name} "
                             f"({expected}); the file is corrupt, truncated or a Git LFS pointer; restore it "
                             f"(git checkout -- {path.name}) or pass --pretrained none")
    if path.suffix != ".safetensors":
        return
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    if meta.get("ckda_format") != FORMAT:
        return
    stored = json.loads(meta["architecture"])
    wanted = architecture_of(config)
    diffs = [f"{k}: file {stored.get(k)!r} vs model {wanted[k]!r}" for k in ARCHITECTURE_FIELDS
             if stored.get(k) != wanted[k]]
    if diffs:
        raise ValueError(f"pretrained checkpoint {str(path)!r} was trained for another architecture ("
                         f"{'; '.join(diffs)}); use a model with that architecture, make new weights with "
                         f"'ckda pretrain', or pass --pretrained none")
