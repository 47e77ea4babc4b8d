"""Load ImageNet ViT weights from a local file into a `ViTReID` backbone (CKDA §2: no downloads at run time).

Formats: a timm/PyTorch state dict (.pth/.pt/.bin; plain, or wrapped as {'model': sd} / {'state_dict': sd}),
.safetensors, or an original JAX/Flax .npz checkpoint (loaded with timm's `_load_weights`). The position embedding
is resampled from the checkpoint's square grid (14x14 for 224 input) to the model's grid with timm's
`resample_abs_pos_embed`; the patch-embedding kernel copies unchanged when it is 16x16 whatever the stride, and is
resampled with `resample_patch_embed` otherwise. The ImageNet head is ignored. Parameters the checkpoint cannot
provide (prompts, modality embedding, BNNeck, classifier) keep their initialisation and are listed in the report;
any other missing backbone key, or a width/depth mismatch, is an error naming the file.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np
import torch
from timm.layers import resample_abs_pos_embed, resample_patch_embed
from timm.models._helpers import clean_state_dict
from timm.models.vision_transformer import _load_weights

from .vit_reid import ViTReID

logger = logging.getLogger(__name__)

TORCH_SUFFIXES = (".pth", ".pt", ".bin")
IGNORED_PREFIXES = ("head.", "pre_logits.")
"""timm keys of the ImageNet classification head, never loaded."""
_NPZ_PREFIXES = ("", "opt/target/", "params/")
_NPZ_BLOCK = re.compile(r"Transformer/encoderblock_(\d+)/")


@dataclasses.dataclass(frozen=True)
class PretrainedReport:
    """What `load_pretrained` did."""

    path: Path
    """The checkpoint file."""
    file_format: str
    """"torch", "safetensors" or "npz"."""
    loaded_keys: tuple[str, ...]
    """Model state-dict keys filled from the checkpoint."""
    initialised_keys: tuple[str, ...]
    """Model keys the checkpoint does not provide (prompts, modality embedding, BNNeck, classifier)."""
    ignored_keys: tuple[str, ...]
    """Checkpoint keys deliberately not loaded (the ImageNet head)."""
    unexpected_keys: tuple[str, ...]
    """Checkpoint keys that match nothing in the model (also logged as a warning)."""
    resized: tuple[str, ...]
    """Human-readable notes of resampled tensors, e.g. "pos_embed (1, 197, 768) -> (1, 211, 768)"."""


def load_pretrained(model: ViTReID, path: str | Path) -> PretrainedReport:
    """Load the ViT weights in `path` into `model.backbone` in place and return a `PretrainedReport`."""
    from .weights_file import check_weights_file, resolve_weights

    path = resolve_weights(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained checkpoint {str(path)!r} does not exist or is not a file")
    check_weights_file(path, model.config)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        report = _load_npz(model, path)
    elif suffix in TORCH_SUFFIXES or suffix == ".safetensors":
        state_dict = _read_state_dict(path, suffix)
        report = _load_state_dict(model, state_dict, path, "safetensors" if suffix == ".safetensors" else "torch")
    else:
        raise ValueError(f"pretrained checkpoint {str(path)!r}: unsupported suffix {suffix!r}; expected one of "
                         f"{[*TORCH_SUFFIXES, '.safetensors', '.npz']}")
    if report.unexpected_keys:
        logger.warning("%s: %d checkpoint keys match nothing in the model and were not loaded: %s",
                       path, len(report.unexpected_keys), list(report.unexpected_keys))
    logger.info("loaded %d tensors from %s (%s); kept initialisation for %d keys: %s", len(report.loaded_keys),
                path, report.file_format, len(report.initialised_keys), list(report.initialised_keys))
    return report


# ---------------------------------------------------------------------- PyTorch / safetensors state dicts
def _read_state_dict(path: Path, suffix: str) -> dict[str, torch.Tensor]:
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        raw: object = load_file(str(path), device="cpu")
    else:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("model", "state_dict"):
        if isinstance(raw, dict) and isinstance(raw.get(wrapper), dict):
            raw = raw[wrapper]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise ValueError(f"pretrained checkpoint {str(path)!r}: expected a state dict of tensors (optionally "
                         f"under 'model' or 'state_dict'), got {type(raw).__name__}")
    return clean_state_dict(raw)


def _load_state_dict(model: ViTReID, state_dict: dict[str, torch.Tensor], path: Path,
                     file_format: str) -> PretrainedReport:
    backbone = model.backbone
    config = model.config
    for required in ("patch_embed.proj.weight", "pos_embed", "cls_token"):
        if required not in state_dict:
            raise ValueError(f"pretrained checkpoint {str(path)!r} is not a timm ViT state dict: "
                             f"no {required!r} key")
    patch_weight = state_dict["patch_embed.proj.weight"]
    depth = len({int(m.group(1)) for k in state_dict if (m := re.match(r"blocks\.(\d+)\.", k))})
    _check_architecture(path, width=int(patch_weight.shape[0]), depth=depth,
                        in_chans=int(patch_weight.shape[1]) if patch_weight.ndim == 4 else config.in_chans,
                        model=model)

    ignored = sorted(k for k in state_dict if k.startswith(IGNORED_PREFIXES))
    sd = {k: v for k, v in state_dict.items() if not k.startswith(IGNORED_PREFIXES)}
    resized: list[str] = []
    target_kernel = tuple(backbone.patch_embed.proj.weight.shape[-2:])
    if patch_weight.ndim == 4 and tuple(patch_weight.shape[-2:]) != target_kernel:
        sd["patch_embed.proj.weight"] = resample_patch_embed(patch_weight, list(target_kernel))
        resized.append(f"patch_embed.proj.weight {tuple(patch_weight.shape)} -> "
                       f"{tuple(sd['patch_embed.proj.weight'].shape)}")
    pos = sd["pos_embed"]
    if pos.shape != backbone.pos_embed.shape:
        sd["pos_embed"] = _resample_pos_embed(pos, model, path)
        resized.append(f"pos_embed {tuple(pos.shape)} -> {tuple(sd['pos_embed'].shape)}")

    own = backbone.state_dict()
    mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                  for k, v in sd.items() if k in own and v.shape != own[k].shape]
    if mismatched:
        raise ValueError(f"pretrained checkpoint {str(path)!r} does not fit the model: {mismatched}")
    result = backbone.load_state_dict(sd, strict=False)
    if result.missing_keys:
        raise ValueError(f"pretrained checkpoint {str(path)!r} lacks backbone weights {result.missing_keys}")
    loaded = sorted(f"backbone.{k}" for k in sd if k in own)
    return PretrainedReport(path=path, file_format=file_format, loaded_keys=tuple(loaded),
                            initialised_keys=_initialised(model, set(loaded)), ignored_keys=tuple(ignored),
                            unexpected_keys=tuple(sorted(result.unexpected_keys)), resized=tuple(resized))


def _resample_pos_embed(pos: torch.Tensor, model: ViTReID, path: Path) -> torch.Tensor:
    """Resample (1, 1 + S*S, D) from the checkpoint's square grid to (1, 1 + rows*cols, D)."""
    side = int(round((pos.shape[1] - 1) ** 0.5))
    if pos.ndim != 3 or side * side != pos.shape[1] - 1:
        raise ValueError(f"pretrained checkpoint {str(path)!r}: pos_embed of shape {tuple(pos.shape)} is not a CLS "
                         f"token plus a square grid, cannot resample it to the model's grid {model.grid_size}")
    return resample_abs_pos_embed(pos, new_size=list(model.grid_size), old_size=[side, side], num_prefix_tokens=1)


# ---------------------------------------------------------------------- JAX / Flax .npz
def _load_npz(model: ViTReID, path: Path) -> PretrainedReport:
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.files)
        prefix = next((p for p in _NPZ_PREFIXES if f"{p}embedding/kernel" in keys), None)
        if prefix is None:
            raise ValueError(f"pretrained checkpoint {str(path)!r} is not a JAX ViT .npz: no 'embedding/kernel'")
        kernel_shape = archive[f"{prefix}embedding/kernel"].shape  # (kh, kw, in, D)
        pos_key = next((k for k in (f"{prefix}Transformer/posembed_input/pos_embedding", f"{prefix}pos_embedding")
                        if k in keys), None)
        if pos_key is None:
            raise ValueError(f"pretrained checkpoint {str(path)!r} has no position embedding entry")
        pos = torch.from_numpy(np.asarray(archive[pos_key], dtype=np.float32))
        if f"{prefix}Transformer/encoderblock/LayerNorm_0/scale" in keys:  # scanned (stacked) blocks
            depth = int(archive[f"{prefix}Transformer/encoderblock/LayerNorm_0/scale"].shape[0])
        else:
            depth = len({int(m.group(1)) for k in keys if (m := _NPZ_BLOCK.match(k[len(prefix):]))})
    _check_architecture(path, width=int(kernel_shape[-1]), depth=depth, in_chans=int(kernel_shape[-2]),
                        model=model)
    try:
        _load_weights(model.backbone, str(path), prefix=prefix)
    except KeyError as error:
        raise ValueError(f"pretrained checkpoint {str(path)!r} lacks the JAX ViT entry {error}") from error
    # timm's npz loader resamples bilinearly; redo it as for the other formats (bicubic, antialiased) so one
    # checkpoint gives the same model whatever its file format.
    resized = ()
    if pos.shape != model.backbone.pos_embed.shape:
        with torch.no_grad():
            model.backbone.pos_embed.copy_(_resample_pos_embed(pos, model, path))
        resized = (f"pos_embed {tuple(pos.shape)} -> {tuple(model.backbone.pos_embed.shape)}",)
    stripped = [k[len(prefix):] for k in keys if k.startswith(prefix)]
    ignored = sorted(prefix + k for k in stripped if k.startswith(("head/", "pre_logits/")))
    known = re.compile(r"(embedding/|cls$|Transformer/posembed_input/|Transformer/encoder_norm/|"
                       r"Transformer/encoderblock(_\d+)?/|head/|pre_logits/)")
    unexpected = sorted(prefix + k for k in stripped if not known.match(k))
    unexpected += sorted(k for k in keys if not k.startswith(prefix))
    loaded = sorted(f"backbone.{k}" for k in model.backbone.state_dict())
    return PretrainedReport(path=path, file_format="npz", loaded_keys=tuple(loaded),
                            initialised_keys=_initialised(model, set(loaded)), ignored_keys=tuple(ignored),
                            unexpected_keys=tuple(unexpected), resized=resized)


# ---------------------------------------------------------------------- shared checks
def _check_architecture(path: Path, *, width: int, depth: int, in_chans: int, model: ViTReID) -> None:
    config = model.config
    problems = []
    if width != config.embed_dim:
        problems.append(f"width {width} vs model embed_dim {config.embed_dim}")
    if depth != config.depth:
        problems.append(f"depth {depth} blocks vs model depth {config.depth}")
    if in_chans != config.in_chans:
        problems.append(f"{in_chans} input channels vs model in_chans {config.in_chans}")
    if problems:
        raise ValueError(f"pretrained checkpoint {str(path)!r} does not match the model: {'; '.join(problems)}")


def _initialised(model: ViTReID, loaded: set[str]) -> tuple[str, ...]:
    """Model keys outside `loaded`; these must all lie outside the backbone."""
    rest = sorted(k for k in model.state_dict() if k not in loaded)
    stray = [k for k in rest if k.startswith("backbone.")]
    if stray:  # pragma: no cover - guarded by the missing-key checks above
        raise ValueError(f"backbone weights were not loaded: {stray}")
    return tuple(rest)
