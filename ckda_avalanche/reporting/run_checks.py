"""Which runs of a tidy table can be reported: incomplete or duplicated runs are left out with one warning each.

Reports must not crash because one run folder is unfinished, was copied twice or was run twice into the same CSV,
and must not silently rank such a run either. `screen_runs` names the run (run, method, seed, protocol) and what is
wrong with it in a `RunLeftOutWarning`, and returns the rows of the other runs. A run (`tidy_data.RUN_KEYS`) is left
out when:

- its rows come from more than one CSV file (the same run copied or reported twice);
- a measurement appears twice (same key, e.g. a second process appended the same sessions);
- it holds no per-dataset trial-mean scores;
- (``complete_only``) it finished fewer sessions than it has datasets (one session per dataset), or a trial-mean
  ``mAP`` / ``Rank1`` of a dataset already learned is missing or NaN after some session (the cells the seen-average,
  forgetting and BWT need: ``R[t, d]`` for every session ``t`` and dataset ``d`` learned by then);
- (``complete_only``) another run has the same (method, protocol, seed): a seed counted twice.

When every run is left out, `NoRunToReportError` says so (the warnings say why).
"""
from __future__ import annotations

import warnings

import pandas as pd

__all__ = ["NoRunFoundError", "NoRunToReportError", "REQUIRED_METRICS", "RunLeftOutWarning", "screen_runs"]

REQUIRED_METRICS: tuple[str, ...] = ("mAP", "Rank1")
"""Trial-mean metrics every reported run must hold for each learned dataset after each session."""
_RUN_KEYS: tuple[str, ...] = ("method", "protocol", "run", "seed")
_SPECIAL = ("seen_avg", "-")


class RunLeftOutWarning(UserWarning):
    """A run was left out of a report; the message names it and what is wrong."""


class NoRunToReportError(ValueError):
    """Every run was left out of a report (see the `RunLeftOutWarning`s)."""


class NoRunFoundError(NoRunToReportError, FileNotFoundError):
    """A report's source is missing, or a folder holds no run CSV."""


def _name(keys: tuple) -> str:
    method, protocol, run, seed, draw = (*keys, 0)[:5]
    where = f"seed {seed}" if not draw else f"draw {draw}, seed {seed}"
    return f"run {run!r} (method {method}, {where}, protocol {protocol})"


def _problem(rows: pd.DataFrame, files: list[str], complete_only: bool) -> str | None:
    if len(files) > 1:
        return f"its rows are in {len(files)} files ({', '.join(files)}); keep one copy"
    key = [c for c in rows.columns if c not in ("value", "_source")]
    duplicated = rows.duplicated(key, keep="first")
    if duplicated.any():
        first = rows[duplicated].iloc[0]
        return (f"{int(duplicated.sum())} measurement(s) recorded twice, e.g. train_exp {first['train_exp']} "
                f"{first['eval_dataset']} {first['trial']} {first['metric']} (two runs wrote into one CSV?); "
                f"rerun it into a fresh folder")
    per_dataset = rows[~rows["eval_dataset"].isin(_SPECIAL) & (rows["trial"] == "mean")]
    if per_dataset.empty:
        return "no per-dataset trial-mean scores"
    if not complete_only:
        return None
    datasets = list(pd.unique(per_dataset["eval_dataset"]))
    final = int(per_dataset["train_exp"].max())
    if final < len(datasets):
        return (f"unfinished: {final} of {len(datasets)} sessions ({', '.join(datasets)}) have scores; resume it "
                f"with --resume")
    scored = per_dataset[per_dataset["value"].notna()]
    have = set(zip(scored["train_exp"].astype(int), scored["eval_dataset"], scored["metric"]))
    recorded = set(zip(per_dataset["train_exp"].astype(int), per_dataset["eval_dataset"], per_dataset["metric"]))
    for t in range(1, final + 1):
        for d, dataset in enumerate(datasets[:t]):
            for metric in REQUIRED_METRICS:
                if (t, dataset, metric) not in have:
                    what = "is NaN" if (t, dataset, metric) in recorded else "missing"
                    return f"no {metric} of {dataset} after session {t} (R[{t}, {d}] {what})"
    return None


def screen_runs(frame: pd.DataFrame, *, complete_only: bool = True) -> pd.DataFrame:
    """The rows of the runs that can be reported; a `RunLeftOutWarning` per run left out (see module docstring).

    ``frame`` may carry a ``_source`` column (the CSV file of each row), used to spot runs spread over several files;
    it is dropped from the result. Raises `NoRunToReportError` when no run is left.
    """
    sources = frame["_source"] if "_source" in frame.columns else pd.Series("", index=frame.index)
    keep = pd.Series(True, index=frame.index)
    kept: dict[tuple, pd.Index] = {}
    problems = 0
    run_keys = [*_RUN_KEYS, *(["draw"] if "draw" in frame.columns else [])]  # the same run of two draws: two
    for keys, rows in frame.groupby(run_keys, sort=True):
        files = sorted({str(s) for s in sources.loc[rows.index] if str(s)})
        problem = _problem(rows, files, complete_only)
        if problem is None:
            kept[keys] = rows.index
            continue
        problems += 1
        keep.loc[rows.index] = False
        warnings.warn(f"{_name(keys)} left out: {problem}", RunLeftOutWarning, stacklevel=3)
    if complete_only:  # one run per (method, protocol, draw, seed): a replicate counted twice is left out
        draws = frame["draw"] if "draw" in frame.columns else pd.Series(0, index=frame.index)
        by_seed: dict[tuple, list[tuple]] = {}
        for keys in kept:
            method, protocol, _, seed = keys[:4]
            for draw in sorted(set(draws.loc[kept[keys]])):
                by_seed.setdefault((method, protocol, int(draw), seed), []).append(keys)
        for (method, protocol, draw, seed), runs in sorted(by_seed.items()):
            if len(runs) < 2:
                continue
            names = ", ".join(repr(r[2]) for r in runs)
            where = f"seed {seed}" if draw == 0 else f"draw {draw} seed {seed}"
            for keys in runs:
                problems += 1
                keep.loc[kept[keys]] = False
                warnings.warn(f"{_name(keys)} left out: method {method} {where} ({protocol}) appears in several "
                              f"runs ({names}); report one of them", RunLeftOutWarning, stacklevel=3)
    if problems and not keep.any():
        raise NoRunToReportError(f"no run left to report: all {problems} run(s) were left out (see the warnings)")
    return frame[keep.to_numpy()].drop(columns=["_source"], errors="ignore").reset_index(drop=True)
