"""Which data a run read, and the guard that keeps ``--resume`` on that data.

``data.json`` in a run folder records, when the run starts:

- ``root``: the absolute data root (``--data``, or the synthetic folder);
- ``synthetic``: the synthetic generator's ``SYNTHETIC.json`` under the root (seed, scale, stored size, generator
  version), or None for real data;
- ``datasets``: per dataset of the stream, in session order, the number of training and test images and a
  fingerprint of each (``train_fingerprint``, ``test_fingerprint``): SHA-256 (first 16 hex digits) of every image
  the reader listed, as ``split, path relative to the root, file size, identity, camera, modality, tracklet``. The
  index files decide which images and labels a reader lists, so an edited index, another split, added, removed,
  renamed or resized images, or relabelled identities all change it.

`check_resume_data` compares that record with the data a resumed run reads; other data is refused with a one-line
diff (``regdb.test_fingerprint ... -> ...``, ``synthetic.seed 0 -> 5``), unless ``--resume-override`` (then
recorded in ``data.json``'s ``overrides``), because a run whose sessions saw two data sets mixes two test sets in its
forgetting and BWT. Every test set is compared (all are evaluated after every session), and the training sets of
the sessions already trained; the training set of a session not trained yet may differ, so that an image that
stopped the run can be repaired and the run resumed (what the message of an undecodable image says to do). A data
root that moved (another ``root``, same fingerprints) is the same data: it resumes, and the new root is recorded.
A run folder from before this record gets one on its first resume. What the fingerprint does not see (an image
whose bytes changed but whose size did not) cannot change results through the decoded-image store, which is keyed
by content (``benchmarks/decoded_store.py``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ckda_avalanche.runner.atomic import atomic_write_json
from ckda_avalanche.runner.run_state import RunStateError, format_changes

__all__ = ["DATA_JSON", "check_resume_data", "data_changes", "data_record", "write_data_record"]

logger = logging.getLogger("ckda_avalanche.runner")

DATA_JSON = "data.json"
"""File name of the data record inside a run folder."""
SYNTHETIC_MARKER = "SYNTHETIC.json"
"""The synthetic generator's summary file under its root (`benchmarks.synthetic.generate.MARKER`)."""
SYNTHETIC_FIELDS: tuple[str, ...] = ("seed", "scale", "img_size", "version")
"""What the record keeps of it: the generator's inputs and version (not its timing)."""


def _relative(path: str, root: str | None) -> str:
    if root is not None:
        try:
            return os.path.relpath(path, root) if os.path.commonpath([path, root]) == root else path
        except ValueError:  # another drive (Windows)
            return path
    return path


def _fingerprint(splits: list[tuple[str, Any]], root: str | None) -> str:
    digest = hashlib.sha256()
    for split, samples in splits:
        for sample in samples:
            path = os.path.abspath(str(sample.path))
            try:
                size = os.stat(path).st_size
            except OSError:
                size = -1
            line = (f"{split}\t{_relative(path, root)}\t{size}\t{sample.pid}\t{sample.camid}\t{sample.modality}\t"
                    f"{getattr(sample, 'tracklet', -1)}\n")
            digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def _synthetic(root: str | None) -> dict[str, Any] | None:
    if root is None:
        return None
    marker = Path(root) / SYNTHETIC_MARKER
    try:
        stored = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict):
        return None
    return {key: stored[key] for key in SYNTHETIC_FIELDS if key in stored}


def data_record(benchmark: Any, root: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The record of the data ``benchmark`` reads (`vi_lreid_benchmark`: ``experience.reid.samples``)."""
    base = None if root is None else os.path.abspath(os.fspath(root))
    datasets: dict[str, Any] = {}
    for train, test in zip(benchmark.train_stream, benchmark.test_stream):
        info, pool = train.reid, test.reid
        datasets[str(info.dataset)] = {
            "train_images": len(info.samples), "train_fingerprint": _fingerprint([("train", info.samples)], base),
            "test_images": len(pool.samples), "test_fingerprint": _fingerprint([("test", pool.samples)], base),
        }
    return {"root": base, "synthetic": _synthetic(base), "datasets": datasets}


def _flat(record: Mapping[str, Any], trained: int | None, order: list[str]) -> dict[str, Any]:
    """Dotted name -> value. ``order`` is the stream's session order: ``data.json`` is written with sorted keys, so
    the record's own key order is not the session order (which ``config.json`` holds and the config check compares)."""
    flat: dict[str, Any] = {}
    for name, value in (record.get("synthetic") or {}).items():
        flat[f"synthetic.{name}"] = value
    if record.get("synthetic") is None:
        flat["synthetic"] = None
    datasets = record.get("datasets") or {}
    position_of = {name: position for position, name in enumerate(order)}
    for dataset, fields in datasets.items():
        position = position_of.get(dataset, len(order))
        for name, value in (fields or {}).items():
            if name.startswith("train_") and trained is not None and position >= trained:
                continue  # a session not trained yet: its training images may still be repaired
            flat[f"{dataset}.{name}"] = value
    flat["datasets"] = sorted(datasets)
    return flat


def data_changes(stored: Mapping[str, Any], record: Mapping[str, Any], *, trained: int | None = None
                 ) -> list[tuple[str, Any, Any]]:
    """What differs between two data records, as (dotted name, old, new); the root is not compared. ``trained``:
    compare the training images of the first ``trained`` datasets only (None: all); test images always."""
    order = [str(name) for name in (record.get("datasets") or {})]  # built in session order (`data_record`)
    old = _flat(stored, trained, order)
    new = _flat(json.loads(json.dumps(record, default=str)), trained, order)
    return [(name, old.get(name, "<absent>"), new.get(name, "<absent>")) for name in sorted(set(old) | set(new))
            if old.get(name, "<absent>") != new.get(name, "<absent>")]


def write_data_record(run_dir: str | os.PathLike[str], record: Mapping[str, Any], **extra: Any) -> None:
    """Write ``data.json`` (atomically)."""
    atomic_write_json(Path(run_dir) / DATA_JSON, {**record, **extra})


def check_resume_data(run_dir: str | os.PathLike[str], record: Mapping[str, Any], *, override: bool,
                      sessions_done: int) -> None:
    """Refuse (`RunStateError`, one line) to resume ``run_dir`` on data other than its ``data.json``'s, unless
    ``override`` (then recorded). A missing record is written now; a moved root is recorded."""
    path = Path(run_dir) / DATA_JSON
    if not path.exists():
        write_data_record(run_dir, record, recorded_after_session=int(sessions_done))
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(stored, dict):
            raise ValueError("expected a JSON object")
    except (OSError, ValueError) as exc:
        raise RunStateError(f"{path}: unreadable ({exc}); cannot check that --resume reads the run's data; restore "
                            f"it, or delete it to record the current data") from exc
    changes = data_changes(stored, record, trained=sessions_done)
    if changes and not override:
        where = f" (the run read {stored.get('root')})" if stored.get("root") != record.get("root") else ""
        raise RunStateError(f"{path}: --resume with other data{where}: {format_changes(changes)}; resume with the "
                            f"data this run started with, or pass --resume-override to continue with this data "
                            f"(recorded in {DATA_JSON})")
    if not changes and stored.get("root") == record.get("root"):
        return
    updated = {**stored, **record}
    if changes:
        history = list(stored.get("overrides", []))
        history.append({"after_session": int(sessions_done), "root": [stored.get("root"), record.get("root")],
                        "changed": {name: [old, new] for name, old, new in changes}})
        updated["overrides"] = history
        logger.warning("%s: resumed after session %d on other data (%s); recorded in %s", run_dir, sessions_done,
                       format_changes(changes), DATA_JSON)
    else:
        updated["moved_from"] = list(stored.get("moved_from", [])) + [stored.get("root")]
    write_data_record(run_dir, updated)
