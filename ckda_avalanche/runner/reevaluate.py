"""Re-score saved runs without training (``ckda eval``): the kept per-session models under any protocol / test set.

For one run folder (``OUT/<method>/seed<k>/`` of a run made with ``--keep-session-checkpoints``):

1. ``config.json`` rebuilds the run's `RunConfig`, the method's resolved config (variants included), the model (with
   its ablations; the pretrained file is not needed, the weights are replaced) and the strategy, with the same
   training config and ``eval_mb_size`` as the run;
2. the stream is built as ``ckda run`` builds it (same datasets, image size and method data quirks), with the chosen
   protocol, plus any extra test datasets after the trained ones (experience indices of the trained datasets do
   not move);
3. for k = 1..S the model kept after session k is loaded, the clock and the metric's bookkeeping are set as they
   were after session k (dataset d learned in session d + 1), and Avalanche's ``strategy.eval`` scores the chosen
   test experiences with the same `ReIDRetrievalPluginMetric` and `TidyCSVLogger` as training time, so the rows
   (per-dataset and per-trial scores, seen average, forgetting, BWT) are those training would have written;
4. the rows are merged into the run's ``metrics.csv`` (`merge_rows`): new rows are appended, rows already present
   with the same value are skipped, so running ``ckda eval`` twice adds nothing, and a row present with another
   value is an error (or replaced with ``replace=True``). Re-scoring the paper protocol therefore checks that the
   training-time metrics are reproduced exactly.

Protocol column: the protocol name (``paper`` / ``full``) when the run's own datasets are tested, else
``<protocol>@<d1>+<d2>...`` naming the tested datasets, so a different test set never mixes with (or overwrites)
the rows of the full set. Tested datasets must start with a prefix of the run's session order (the reports infer
when a dataset was learned from its position) and may add datasets the run never trained on.
Run-level rows (training time, memory) are not repeated: they belong to training, not to a protocol.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckda_avalanche.runner.config import RunConfig
from ckda_avalanche.runner.data_record import DATA_JSON, data_changes, data_record
from ckda_avalanche.runner.lock import RunLock
from ckda_avalanche.runner.overrides import ConfigError, apply_overrides
from ckda_avalanche.runner.run_state import format_changes, keep_rescored_rows
from ckda_avalanche.runner.session_models import kept_sessions, load_model_weights, load_session_model
from ckda_avalanche.runner.variants import base_method, check_known_method, model_overrides, stream_overrides

__all__ = ["MergeCounts", "RescoreConflictError", "SavedRun", "eval_datasets", "find_run_dirs", "load_saved_run",
           "merge_rows", "protocol_label", "reevaluate", "rescore_run", "saved_run_benchmark",
           "saved_run_strategy"]


class RescoreConflictError(ValueError):
    """A re-scored value differs from the value the run's CSV already holds for the same row."""


@dataclass(frozen=True)
class SavedRun:
    """What re-scoring needs from one run folder."""

    run_dir: Path
    """The ``OUT/<method>/seed<k>`` folder."""
    method: str
    """Method name as recorded (a variant name such as ``ckda[no_msp]`` included)."""
    base: str
    """The strategy it runs."""
    seed: int
    """Seed of the run."""
    run: str
    """The CSV's ``run`` value."""
    run_config: RunConfig
    """The run's resolved `RunConfig`."""
    method_config: Any | None
    """The method's resolved config dataclass (None for methods without one)."""
    sessions: int
    """Sessions the run finished (``state.json``)."""


def find_run_dirs(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Every run folder (holding ``config.json`` and ``metrics.csv``) at or below ``paths``, sorted, no repeats."""
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if not path.is_dir():
            raise ConfigError(f"{path}: not a run folder")
        below = sorted(p.parent for p in path.rglob("config.json") if (p.parent / "metrics.csv").is_file())
        if not below:
            raise ConfigError(f"{path}: no run folder (config.json + metrics.csv) at or below it")
        found += [p for p in below if p not in found]
    return found


def with_legacy_pixel_prompts(config_cls: type, saved: dict[str, Any]) -> dict[str, Any]:
    """The recorded method config, with ``pixel_prompts`` filled in for runs made before baselines had the field.

    Until then fine-tuning and Joint recorded no config and LwF, EWC, Replay, LSTKC and DKP none of the field, yet
    their models carried CKDA's pixel prompters; the recorded ``model_config`` (``use_msp``) says whether they did,
    so their kept session models still load."""
    recorded = dict(saved["method_config"] or {})
    has_field = any(f.name == "pixel_prompts" for f in dataclasses.fields(config_cls))
    if has_field and "pixel_prompts" not in recorded:
        recorded["pixel_prompts"] = bool((saved.get("model_config") or {}).get("use_msp", True))
    return recorded


def load_saved_run(run_dir: str | os.PathLike[str]) -> SavedRun:
    """Read ``config.json`` and ``state.json`` of a run folder; errors name the file and what is wrong."""
    from ckda_avalanche.strategies import METHOD_CONFIGS

    run_dir = Path(run_dir)
    config_path, state_path = run_dir / "config.json", run_dir / "state.json"
    try:
        saved = json.loads(config_path.read_text(encoding="utf-8"))
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{run_dir}: cannot read config.json / state.json ({exc})") from exc
    missing = [k for k in ("method", "seed", "run", "run_config", "method_config") if k not in saved]
    if missing or "sessions_done" not in state:
        raise ConfigError(f"{config_path}: not a ckda run config (missing {missing or ['state.json sessions_done']})")
    method = str(saved["method"])
    base = str(saved.get("base_method") or base_method(method))
    check_known_method(base, str(config_path))
    run_config = apply_overrides(RunConfig(), saved["run_config"], where=f"{config_path}: run_config")
    method_config = None
    if base in METHOD_CONFIGS:
        recorded = with_legacy_pixel_prompts(METHOD_CONFIGS[base], saved)
        method_config = apply_overrides(METHOD_CONFIGS[base](), recorded, where=f"{config_path}: method_config")
    elif saved["method_config"] is not None:
        raise ConfigError(f"{config_path}: method {base!r} takes no config but one is recorded")
    return SavedRun(run_dir=run_dir, method=method, base=base, seed=int(saved["seed"]), run=str(saved["run"]),
                    run_config=run_config, method_config=method_config, sessions=int(state["sessions_done"]))


def eval_datasets(trained: Sequence[str], requested: Sequence[str] | None) -> list[str]:
    """The test datasets: the run's own by default; else a prefix of the run's order followed by untrained ones."""
    from ckda_avalanche.benchmarks.streams import DEFAULT_ORDER

    trained = [str(d) for d in trained]
    if requested is None:
        return trained
    chosen = [str(d).strip().lower() for d in requested]
    unknown = [d for d in chosen if d not in DEFAULT_ORDER]
    if unknown or not chosen or len(set(chosen)) != len(chosen):
        raise ConfigError(f"--datasets {','.join(chosen)}: expected distinct names among {list(DEFAULT_ORDER)}")
    inside = [d for d in chosen if d in trained]
    if chosen[: len(inside)] != trained[: len(inside)]:
        raise ConfigError(f"--datasets {','.join(chosen)}: the run's datasets must come first and be a prefix of its "
                          f"session order {trained} (reports infer when a dataset was learned from its position); "
                          "datasets it never trained on may follow")
    return chosen


def protocol_label(protocol: str, trained: Sequence[str], tested: Sequence[str]) -> str:
    """The CSV's protocol value: ``protocol`` for the run's own datasets, else ``protocol@d1+d2...``."""
    return protocol if list(tested) == list(trained) else f"{protocol}@{'+'.join(tested)}"


def rescore_run(saved: SavedRun, benchmark: Any, *, protocol: str, tested: Sequence[str], device: str = "auto",
                progress: bool = False) -> list[list[str]]:
    """Score the kept models of sessions 1..S of ``saved`` on ``tested`` (experiences of ``benchmark``, built with
    ``protocol``); returns the tidy rows (text, `TIDY_COLUMNS` order) with the protocol column labelled."""
    from avalanche.training.plugins import EvaluationPlugin

    from ckda_avalanche.evaluation import TidyCSVLogger, reid_metrics

    trained = list(saved.run_config.datasets)
    kept = kept_sessions(saved.run_dir)
    wanted = list(range(1, saved.sessions + 1))
    absent = [s for s in wanted if s not in kept]
    if not wanted or absent:
        raise ConfigError(f"{saved.run_dir}: no kept model for session(s) {absent or wanted} of {saved.sessions}; "
                          "only runs made with --keep-session-checkpoints can be re-scored")
    names = list(benchmark.reid_datasets)
    missing = [d for d in tested if d not in names]
    if missing or names[: len(trained)] != trained:
        raise ValueError(f"benchmark datasets {names} must start with the run's {trained} and hold {list(tested)}")
    metrics = reid_metrics(progress=progress)
    metric = metrics[0]
    with tempfile.TemporaryDirectory(prefix="ckda-eval-") as tmp:
        tmp_csv = Path(tmp) / "metrics.csv"
        logger = TidyCSVLogger(tmp_csv, run=saved.run, method=saved.method, seed=saved.seed, dataset_names=names,
                               protocol=protocol)
        strategy = saved_run_strategy(saved, EvaluationPlugin(*metrics, loggers=[logger]), device=device)
        experiences = [benchmark.test_stream[names.index(d)] for d in tested]
        for session in wanted:
            try:
                kept = load_session_model(saved.run_dir, session)
            except (OSError, ValueError) as exc:  # missing or damaged file: one line naming it
                raise ConfigError(str(exc)) from None
            load_model_weights(strategy.model, kept)
            strategy.model.to(strategy.device)
            strategy.clock.train_exp_counter = session
            state = metric.state_dict()  # as after training session k: dataset d learned in session d + 1
            state["learned_at"] = {d: d + 1 for d in range(min(session, len(trained)))}
            state["last_trained_exp"] = session - 1
            metric.load_state_dict(state)
            strategy.eval(experiences)
        with tmp_csv.open(newline="") as handle:
            rows = list(csv.reader(handle))[1:]
    label = protocol_label(protocol, trained, tested)
    column = _column("protocol")
    for row in rows:
        row[column] = label
    return rows


def saved_run_strategy(saved: SavedRun, evaluator: Any, *, device: str = "auto") -> Any:
    """The run's strategy around ``evaluator``: its model (with the method's ablations; weights still to be loaded
    with `load_model_weights`), training config, seed and ``eval_mb_size``, as ``ckda run`` built it."""
    from ckda_avalanche.models import create_model
    from ckda_avalanche.strategies import STRATEGIES, resolve_device

    model = create_model(saved.run_config.model, False, config_overrides=model_overrides(saved.method_config))
    kwargs: dict[str, Any] = dict(
        model=model, config=dataclasses.replace(saved.run_config.train, seed=saved.seed),
        eval_mb_size=saved.run_config.eval_mb_size, device=resolve_device(device), evaluator=evaluator)
    if saved.method_config is not None:
        kwargs["method"] = saved.method_config
    return STRATEGIES[saved.base](**kwargs)


def saved_run_benchmark(saved: SavedRun, root: Path, *, datasets: Sequence[str], protocol: str) -> Any:
    """The test stream of ``datasets`` as ``ckda run`` builds it for ``saved`` (image size, reader settings, method
    data quirks)."""
    from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
    from ckda_avalanche.models import get_model_config
    img_size = tuple(get_model_config(saved.run_config.model).img_size)
    extra = dict(stream_overrides(saved.method_config))
    reader_options = saved.run_config.readers.for_stream(list(datasets), extra.pop("reader_options", None))
    return vi_lreid_benchmark(root, datasets=list(datasets), protocol=protocol, img_size=img_size,
                              reader_options=reader_options, **extra)


def _column(name: str) -> int:
    from ckda_avalanche.evaluation import TIDY_COLUMNS

    return TIDY_COLUMNS.index(name)


@dataclass(frozen=True)
class MergeCounts:
    """What `merge_rows` did."""

    new: int
    """Rows appended."""
    identical: int
    """Rows already present with the same value (skipped)."""
    replaced: int
    """Rows present with another value and replaced (``replace=True`` only)."""


def _same(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    return x == y or (math.isnan(x) and math.isnan(y))


def merge_rows(csv_path: str | os.PathLike[str], rows: Sequence[Sequence[str]], *, replace: bool = False
               ) -> MergeCounts:
    """Merge tidy rows into ``csv_path`` keyed by every column but ``value``, rewriting the file atomically.

    A row whose key is absent is appended; present with an equal value (NaN equals NaN), skipped; present with
    another value: `RescoreConflictError` naming the first such row (nothing written), or replaced in place when
    ``replace``.
    """
    from ckda_avalanche.evaluation.tidy_logger import TIDY_COLUMNS, rewrite_csv_rows, tidy_rows_from_csv

    path = Path(csv_path)
    tidy_rows_from_csv(path)  # validates header and types of the existing file
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        existing = list(reader)
    value = TIDY_COLUMNS.index("value")
    index = {tuple(r[:value]): i for i, r in enumerate(existing)}
    appended: list[list[str]] = []
    identical = 0
    conflicts: list[tuple[list[str], str]] = []
    for row in rows:
        row = list(row)
        if len(row) != len(TIDY_COLUMNS):
            raise ValueError(f"{path}: a merged row must have the columns {TIDY_COLUMNS}, got {row}")
        at = index.get(tuple(row[:value]))
        if at is None:
            index[tuple(row[:value])] = len(existing) + len(appended)
            appended.append(row)
        elif _same(existing[at][value], row[value]):
            identical += 1
        else:
            conflicts.append((row, existing[at][value]))
    if conflicts and not replace:
        row, old = conflicts[0]
        where = ", ".join(f"{c}={v}" for c, v in zip(TIDY_COLUMNS[:value], row))
        raise RescoreConflictError(
            f"{path}: {len(conflicts)} re-scored value(s) differ from the CSV, e.g. {where}: {old} in the CSV, "
            f"{row[value]} now (different device or code?); pass --replace to overwrite them")
    for row, _ in conflicts:
        existing[index[tuple(row[:value])]] = row
    if appended or conflicts:
        rewrite_csv_rows(path, header, existing + appended)
    return MergeCounts(new=len(appended), identical=identical, replaced=len(conflicts))


def reevaluate(paths: Sequence[str | os.PathLike[str]], *, protocol: str, datasets: Sequence[str] | None,
               data_root: Callable[[RunConfig], Path], device: str = "auto", replace: bool = False,
               progress: bool = False, report: Callable[[str], None] = print) -> list[tuple[SavedRun, MergeCounts]]:
    """Re-score every run folder at or below ``paths`` and merge the rows into each run's ``metrics.csv``.

    ``datasets``: the test datasets (None: each run's own, see `eval_datasets`); ``data_root(run_config)``: the
    folder holding the datasets for that run (the CLI generates synthetic data there). Every run is checked
    (config, kept sessions, datasets) before the first one is scored. Streams are built once per distinct
    (root, datasets, image size, data quirks). ``report`` gets one line per run. Each run's output folder
    (``OUT`` of ``OUT/<method>/seed<k>``) is locked like ``ckda run`` locks it, so a training process never appends
    to a CSV being rewritten (`runner.lock.RunLockedError` names the holder). Rows of other protocols than the run's
    are also kept in ``rescored_rows.json`` (`run_state.keep_rescored_rows`), so a resume that rebuilds the CSV from
    the checkpoint keeps them. A run re-scored on other data than it trained on (``data.json``,
    `runner.data_record`) is refused with the diff.
    """
    plans = [(s, eval_datasets(s.run_config.datasets, datasets)) for s in map(load_saved_run, find_run_dirs(paths))]
    with ExitStack() as locks:  # no `ckda run` may append to a CSV this rewrites (OUT/<method>/seed<k>: lock OUT)
        for out in sorted({saved.run_dir.parent.parent for saved, _ in plans}):
            locks.enter_context(RunLock(out))
        return _reevaluate(plans, protocol=protocol, data_root=data_root, device=device, replace=replace,
                           progress=progress, report=report)


def check_trained_data(run_dir: Path, record: dict[str, Any]) -> None:
    """Refuse (`ConfigError`, one line) to re-score ``run_dir`` when the test sets of the datasets it trained on
    differ from its ``data.json`` (datasets tested only now are not compared; a run without the record is not
    checked)."""
    path = run_dir / DATA_JSON
    if not path.is_file():
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        trained = dict(stored["datasets"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); cannot check that the data is the run's") from None
    mine = {**record, "datasets": {k: v for k, v in record["datasets"].items() if k in trained}}
    changes = data_changes(stored, mine, trained=0)  # re-scoring reads the test sets only
    if changes:
        raise ConfigError(f"{path}: the data under {record.get('root')} is not the data this run trained on "
                          f"({stored.get('root')}): {format_changes(changes)}; pass that folder as --data")


def _reevaluate(plans: list[tuple[SavedRun, list[str]]], *, protocol: str, data_root: Callable[[RunConfig], Path],
                device: str, replace: bool, progress: bool, report: Callable[[str], None]
                ) -> list[tuple[SavedRun, MergeCounts]]:
    from ckda_avalanche.models import get_model_config

    for saved, _ in plans:
        absent = [k for k in range(1, saved.sessions + 1) if k not in kept_sessions(saved.run_dir)]
        if saved.sessions < 1 or absent:
            raise ConfigError(f"{saved.run_dir}: no kept model for session(s) {absent or [1]}; only runs made with "
                              "--keep-session-checkpoints can be re-scored")
    benchmarks: dict[str, Any] = {}
    done: list[tuple[SavedRun, MergeCounts]] = []
    for saved, tested in plans:
        config = saved.run_config
        root = data_root(config)
        stream = list(config.datasets) + [d for d in tested if d not in config.datasets]
        extra = dict(stream_overrides(saved.method_config))
        reader_options = config.readers.for_stream(stream, extra.pop("reader_options", None))
        img_size = tuple(get_model_config(config.model).img_size)
        key = repr((str(root), stream, img_size, sorted(extra.items()), sorted(reader_options.items())))
        if key not in benchmarks:
            benchmarks[key] = saved_run_benchmark(saved, root, datasets=stream, protocol=protocol)
        check_trained_data(saved.run_dir, data_record(benchmarks[key], root))
        rows = rescore_run(saved, benchmarks[key], protocol=protocol, tested=tested, device=device,
                           progress=progress)
        counts = merge_rows(saved.run_dir / "metrics.csv", rows, replace=replace)
        keep_rescored_rows(saved.run_dir, rows, protocol=config.protocol)  # a CSV rebuilt on --resume keeps them
        report(f"{saved.run_dir} ({saved.method}, seed {saved.seed}, protocol "
               f"{protocol_label(protocol, config.datasets, tested)}, sessions 1-{saved.sessions}): {counts.new} new "
               f"row(s), {counts.identical} identical, {counts.replaced} replaced")
        done.append((saved, counts))
    return done
