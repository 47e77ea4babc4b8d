"""Execute one `task.RunTask`: what the local and the Ray executor both call.

`execute_run` builds the benchmark (unless an equal one was built before in this process), sets the threads and calls
`session_runner.run_single` (which records the attempt and attaches the tracking loggers), so a run computes the same
thing whichever executor runs it. Every function here reads the method from the task, resolved once by the driver.
"""
from __future__ import annotations

from typing import Any

from ckda_avalanche.runner.task import RunOutcome, RunTask


def build_benchmark(task: RunTask) -> Any:
    """The VI-LReID benchmark of ``task`` (its method's stream-level switches applied, read from its data root);
    the image cache gets the node's budget divided by ``task.runs_per_node`` (`benchmarks.cache_budget`)."""
    from ckda_avalanche.benchmarks.cache_budget import per_run_cache_limit
    from ckda_avalanche.benchmarks.datasets.problems import check_paired_identities
    from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
    from ckda_avalanche.models import get_model_config

    config = task.config
    extra = dict(task.method.stream)
    reader_options = config.readers.for_stream(config.datasets, extra.pop("reader_options", None))
    img_size = tuple(get_model_config(config.model).img_size)
    if task.runs_per_node > 1 and "cache_limit_bytes" not in extra:
        extra["cache_limit_bytes"] = per_run_cache_limit(task.runs_per_node)
    benchmark = vi_lreid_benchmark(task.data_root, datasets=config.datasets, protocol=config.protocol,
                                   img_size=img_size, reader_options=reader_options, **extra)
    if not config.train.allow_unpaired_identities:
        check_paired_identities(benchmark)
    return benchmark


def benchmark_key(task: RunTask) -> str:
    """Tasks with equal keys can share one benchmark object (same data, configuration and stream-level switches)."""
    return repr((str(task.data_root), task.config.to_dict(), sorted(task.method.stream.items())))


def execute_run(task: RunTask, benchmarks: dict[str, Any] | None = None) -> RunOutcome:
    """Train and evaluate one (method, seed); the same code path for every executor (see the module docstring).

    ``benchmarks``: benchmarks built earlier in this process, by `benchmark_key` (the local executor shares them
    between runs; the task's benchmark is added to it)."""
    import torch

    from ckda_avalanche.runner.session_runner import run_single

    benchmarks = {} if benchmarks is None else benchmarks
    key = benchmark_key(task)
    if key not in benchmarks:
        benchmarks[key] = build_benchmark(task)
    benchmark = benchmarks[key]
    threads_before = torch.get_num_threads()
    if task.threads is not None:
        torch.set_num_threads(int(task.threads))
    try:
        return RunOutcome.of(task, run_single(task, benchmark))
    finally:
        torch.set_num_threads(threads_before)
