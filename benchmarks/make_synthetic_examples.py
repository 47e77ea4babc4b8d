"""Write results/synthetic_examples.png: per synthetic dataset, a few identities with a visible and an infrared image.

Usage: ``python benchmarks/make_synthetic_examples.py [--root DIR] [--seed 0] [--scale 1.0] [--ids 6]``. Generates the
synthetic data under ``--root`` (or reuses it when ``SYNTHETIC.json`` there matches), then reads the images back
through the dataset's own index files (RegDB trial 1, SYSU-MM01 cameras, LLCM idx, HITSZ-VCM tracklets).
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from PIL import Image, ImageDraw

from ckda_avalanche.benchmarks.synthetic import generate_synthetic

ROW_TITLES = {"regdb": "RegDB-like (low-res, thermal)", "sysu": "SYSU-MM01-like (indoor/outdoor, NIR)",
              "llcm": "LLCM-like (dim light, noisy, NIR)", "vcm": "HITSZ-VCM-like (video, campus, NIR)"}


def _pairs_regdb(root: Path, n: int) -> list[tuple[int, Path, Path]]:
    vis = [line.split()[0] for line in (root / "idx" / "train_visible_1.txt").read_text().splitlines()]
    th = [line.split()[0] for line in (root / "idx" / "train_thermal_1.txt").read_text().splitlines()]
    out, seen = [], set()
    for v, t in zip(vis, th):
        pid = int(v.split("/")[1])
        if pid not in seen:
            seen.add(pid)
            out.append((pid, root / v, root / t))
    return out[:n]


def _pairs_sysu(root: Path, n: int) -> list[tuple[int, Path, Path]]:
    out, seen = [], set()
    for pid_dir in sorted((root / "cam3").iterdir()) + sorted((root / "cam6").iterdir()):
        vis = sorted(root.glob(f"cam[1245]/{pid_dir.name}/*.jpg"))
        if vis and int(pid_dir.name) not in seen:
            seen.add(int(pid_dir.name))
            out.append((int(pid_dir.name), vis[0], sorted(pid_dir.iterdir())[0]))
    return out[:n]


def _pairs_llcm(root: Path, n: int) -> list[tuple[int, Path, Path]]:
    nir_paths = [line.split()[0] for line in (root / "idx" / "train_nir.txt").read_text().splitlines()]
    nir = {rel.split("/")[1]: rel for rel in nir_paths}
    out, seen = [], set()
    for line in (root / "idx" / "train_vis.txt").read_text().splitlines():
        rel = line.split()[0]
        pid = rel.split("/")[1]
        if pid not in seen and pid in nir:
            seen.add(pid)
            out.append((int(pid), root / rel, root / nir[pid]))
    return out[:n]


def _pairs_vcm(root: Path, n: int) -> list[tuple[int, Path, Path]]:
    names = (root / "info" / "train_name.txt").read_text().splitlines()
    first: dict[tuple[int, int], Path] = {}
    for line in (root / "info" / "track_train_info.txt").read_text().splitlines():
        m_code, start, _end, pid, _cam = (int(x) for x in line.split())
        m = re.fullmatch(r"(\d{4})M([12])D(\d+)T\d+F(.+)", names[start - 1])
        path = root / "Train" / m.group(1) / ("ir" if m_code == 1 else "rgb") / f"D{m.group(3)}" / m.group(4)
        first.setdefault((pid, m_code), path)
    pids = sorted({pid for pid, _ in first})
    return [(pid, first[(pid, 2)], first[(pid, 1)]) for pid in pids if (pid, 1) in first and (pid, 2) in first][:n]


def make_grid(root: Path, ids: int, out: Path) -> None:
    """Compose the labelled grid (one row per dataset, visible|infrared per identity) and save it to ``out``."""
    pickers = {"regdb": ("RegDB", _pairs_regdb), "sysu": ("SYSU-MM01", _pairs_sysu),
               "llcm": ("LLCM", _pairs_llcm), "vcm": ("HITSZ-VCM", _pairs_vcm)}
    cell_w, cell_h, label_h, gap = 64, 128, 16, 6
    width = ids * (2 * cell_w + gap) + gap
    height = len(pickers) * (cell_h + 2 * label_h) + gap
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    y = gap // 2
    for name, (folder, pick) in pickers.items():
        draw.text((gap, y), ROW_TITLES[name], fill=(0, 0, 0))
        y += label_h
        for k, (pid, vis, ir) in enumerate(pick(root / folder, ids)):
            x = gap + k * (2 * cell_w + gap)
            for j, path in enumerate((vis, ir)):
                with Image.open(path) as img:
                    canvas.paste(img.convert("RGB").resize((cell_w, cell_h)), (x + j * cell_w, y))
            draw.text((x + 2, y + cell_h + 1), f"id {pid}: VIS | IR", fill=(0, 0, 0))
        y += cell_h + label_h
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("data/synthetic"), help="synthetic data root")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--ids", type=int, default=6, help="identities per dataset row")
    parser.add_argument("--out", type=Path, default=Path("results/synthetic_examples.png"))
    args = parser.parse_args()
    summary = generate_synthetic(args.root, seed=args.seed, scale=args.scale)
    print(f"synthetic data under {summary.root} (generated in {summary.seconds:.1f} s)")
    make_grid(summary.root, args.ids, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
