"""Calibration helper: write ONE synthetic dataset with some `DomainSpec` fields overridden, for a probe.

The generator's domains are fixed per version; calibrating them means asking "what if this domain had other greys,
views or light?". This script writes that variant in the official layout under ``ROOT/<dataset dir>``, drawn from
the same random stream as the real generation (same seed, same version), so that only the overridden fields differ.
Then probe it with `probe_cross_modal.py` (docs/calibration.md, generator v6). Example:

    .venv/bin/python benchmarks/synthetic_variant.py /tmp/v llcm 'views=("front", "back")' 'visible_brightness=(0.6, 0.9)'
    .venv/bin/python benchmarks/probe_cross_modal.py --root /tmp/v --dataset llcm --model cpu-faithful --epochs 12 \
        --lr 3e-3 --pretrained synthetic-cpu-faithful --within

Values are Python literals (``ast.literal_eval``). ``test_ids=N`` overrides the test identity count.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import shutil
from pathlib import Path

from ckda_avalanche.benchmarks.synthetic import DOMAINS, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="where to write (ROOT/<dataset dir> is replaced)")
    parser.add_argument("dataset", choices=sorted(generate.DATASET_DIRS), help="reader name of the dataset")
    parser.add_argument("overrides", nargs="*", metavar="FIELD=VALUE", help="DomainSpec fields, or test_ids=N")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0, the default benchmark)")
    args = parser.parse_args()
    spec = DOMAINS[args.dataset]
    fields = {f.name for f in dataclasses.fields(spec)}
    changes, n_test = {}, None
    for item in args.overrides:
        key, sep, text = item.partition("=")
        if not sep:
            parser.error(f"override {item!r}: expected FIELD=VALUE")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError) as err:
            parser.error(f"override {key}: {text!r} is not a Python literal ({err})")
        if key == "test_ids":
            n_test = int(value)
        elif key in fields:
            changes[key] = value
        else:
            parser.error(f"override {key!r}: not a DomainSpec field (expected one of {sorted(fields)} or test_ids)")
    out = args.root / generate.DATASET_DIRS[args.dataset]
    shutil.rmtree(out, ignore_errors=True)
    counts = generate.write_dataset(out, args.dataset, seed=args.seed, spec=dataclasses.replace(spec, **changes),
                                    n_test=n_test)
    print(f"{out}: {counts}")


if __name__ == "__main__":
    main()
