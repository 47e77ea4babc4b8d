"""Size of each run's ``checkpoint.pt`` by part, and what the same checkpoint would take with the ``paper`` model.

For every ``OUT/<method>/seed<k>/checkpoint.pt`` under the given run folders: the file size, the tensor bytes of the
model, of each plugin's state and of the evaluator, and how many model-sized copies the whole holds (tensor bytes
whose name is a model parameter or buffer, over the model's bytes). The paper estimate replaces every model-shaped
byte by the paper model's (``create_model("paper")``, float32) and keeps the other bytes as measured (prototypes,
exemplar indices, metric history: they grow with the feature width and the datasets, not with the backbone).

    python benchmarks/checkpoint_sizes.py results/RUN [--paper-model paper] [--json sizes.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from ckda_avalanche.models import create_model


def _tensors(value: Any, path: str = ""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{path}/{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{path}/{i}")
    elif torch.is_tensor(value):
        yield path, value


def breakdown(path: Path) -> dict[str, Any]:
    """Parts of one checkpoint: file bytes, tensor bytes by top-level part, model-shaped bytes and copies."""
    state = torch.load(path, map_location="cpu", weights_only=False)["strategy"]
    model_keys = set(state["model"])
    model_bytes = sum(t.numel() * t.element_size() for t in state["model"].values())
    parts: dict[str, int] = {}
    model_shaped = 0
    for name, tensor in _tensors(state):
        size = tensor.numel() * tensor.element_size()
        top = "/".join(name.split("/")[1:3]) if name.startswith("/plugins/") else name.split("/")[1]
        parts[top] = parts.get(top, 0) + size
        if name.rsplit("/", 1)[-1] in model_keys:
            model_shaped += size
    return {"file_bytes": path.stat().st_size, "model_bytes": model_bytes, "parts": parts,
            "model_shaped_bytes": model_shaped, "model_copies": model_shaped / max(model_bytes, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders (OUT)")
    parser.add_argument("--paper-model", default="paper", help="model preset of the paper estimate")
    parser.add_argument("--json", help="also write the table to this JSON file")
    args = parser.parse_args(argv)
    paper = create_model(args.paper_model, num_classes=0)
    paper_bytes = sum(t.numel() * t.element_size() for t in paper.state_dict().values())
    rows = []
    for run in args.runs:
        for ckpt in sorted(Path(run).glob("*/seed*/checkpoint.pt")):
            info = breakdown(ckpt)
            other = info["file_bytes"] - info["model_shaped_bytes"]
            info.update(method=ckpt.parents[1].name, seed=ckpt.parent.name,
                        paper_estimate_bytes=int(info["model_copies"] * paper_bytes + other))
            rows.append(info)
    print(f"paper model ({args.paper_model}): {paper_bytes / 2**20:.1f} MiB of float32 weights (no classifier)")
    print(f"{'method':24s} {'file MiB':>9s} {'copies':>7s} {'paper est. MiB':>15s}  parts (MiB)")
    for r in rows:
        parts = ", ".join(f"{k} {v / 2**20:.2f}" for k, v in sorted(r["parts"].items(), key=lambda kv: -kv[1])[:4])
        print(f"{r['method'] + ' ' + r['seed']:24s} {r['file_bytes'] / 2**20:9.2f} {r['model_copies']:7.2f} "
              f"{r['paper_estimate_bytes'] / 2**20:15.0f}  {parts}")
    if args.json:
        Path(args.json).write_text(json.dumps({"paper_model_bytes": paper_bytes, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
