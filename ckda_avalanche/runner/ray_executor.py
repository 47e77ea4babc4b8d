"""The Ray executor: every (method, seed) of the grid is one Ray task with declared CPUs and (fractional) GPUs.

- Without ``--ray-address`` an embedded Ray instance is started on this machine (and stopped at the end); with
  ``auto`` or ``HOST:PORT`` the driver joins that cluster. A process that already called ``ray.init`` is reused.
- Before anything is submitted, one zero-CPU probe task per alive node checks that the node sees ``--out`` (a file
  the driver just wrote there) and the data folder: on a cluster both must be on a shared filesystem.
- **Retries.** A task whose worker process dies (killed, out of memory, node lost) is retried by Ray up to
  ``max_retries`` times. Every task runs with ``resume=True`` (the driver refused existing run folders before
  submitting, unless ``--resume``: `validate.validate_run`), so a retry continues from the last finished session's checkpoint and nothing
  finished is recomputed. Python exceptions (bad config, dataset errors, a NaN loss's `RunFailedError`) are
  deterministic: they are not retried (``retry_exceptions=False``) and are reported once with the run's name.
- **Ctrl-C and SIGTERM** cancel every pending task (``ray.cancel(force=True)``: the worker is killed like any crash,
  and the atomic checkpoints keep each finished session), shut an embedded Ray instance down and re-raise
  ``KeyboardInterrupt``: rerun with ``--resume``. (``ray.init`` turns SIGTERM into a bare exit; the driver takes it
  back while it waits, `faults.sigterm_as_interrupt`.)
"""
from __future__ import annotations

import logging
import math
import os
import signal
import socket
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ckda_avalanche.runner.executor_options import ExecutorError, ExecutorOptions
from ckda_avalanche.runner.execute import execute_run
from ckda_avalanche.runner.task import RunOutcome, RunTask


def _ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError("--executor ray: the ray package is not installed (pip install ray)") from None
    return ray


def _run_remote(task: RunTask) -> RunOutcome:
    """Ray task body: one run (module-level so workers import it by reference)."""
    return execute_run(task)


def _probe_paths(probe: str, token: str, data_root: str) -> tuple[str, list[str]]:
    """Ray task body: which of the driver's paths this node cannot see (an empty list: all fine)."""
    problems = []
    try:
        seen = Path(probe).read_text(encoding="utf-8")
    except OSError:
        seen = None
    if seen != token:
        problems.append(f"--out: cannot read {probe}, written by the driver a moment ago")
    if not Path(data_root).is_dir():
        problems.append(f"data folder {data_root} does not exist")
    return socket.gethostname(), problems


def connect(address: str | None) -> bool:
    """Connect to Ray (embedded instance when ``address`` is None); return True when this call started it.

    A ``HOST:PORT`` address (``address``, or ``$RAY_ADDRESS`` when ``address`` is None) is tried with a plain TCP
    connection first (`faults.probe_ray_address`, 3 s): Ray itself keeps retrying an unreachable head for minutes.
    """
    from ckda_avalanche.runner.faults import probe_ray_address

    if address in (None, "auto") and os.environ.get("RAY_ADDRESS", "").strip():  # ray.init would join it
        probe_ray_address(os.environ["RAY_ADDRESS"].strip(), source="$RAY_ADDRESS")
    probe_ray_address(address)
    ray = _ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(logging_level=logging.WARNING, log_to_driver=True)
    if address is None:
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise ExecutorError(f"--ray-address {address}: cannot connect to a Ray cluster ({exc})") from exc
    return True


def check_resources(options: ExecutorOptions) -> None:
    """A clear error when no node could ever host one run (Ray would otherwise wait forever)."""
    ray = _ray()
    cpus = max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]), default=0.0)
    gpus = max((n["Resources"].get("GPU", 0.0) for n in ray.nodes() if n["Alive"]), default=0.0)
    need_cpus = 1.0 if options.cpus_per_run is None else options.cpus_per_run
    if need_cpus > cpus:
        raise ExecutorError(f"--cpus-per-run {need_cpus:g}: the largest node of the Ray cluster has {cpus:g} CPUs")
    if options.gpus_per_run > gpus:
        raise ExecutorError(f"--gpus-per-run {options.gpus_per_run:g}: the largest node of the Ray cluster has "
                            f"{gpus:g} GPUs")


def runs_per_node(nodes: list[dict[str, Any]], options: ExecutorOptions, num_tasks: int) -> int:
    """How many runs Ray can place on one node at the same time (the most over the alive nodes, at most
    ``num_tasks``): limited by the node's CPUs over ``cpus_per_run`` and, with ``gpus_per_run``, its GPUs over that."""
    need_cpus = 1.0 if options.cpus_per_run is None else options.cpus_per_run
    most = 1
    for node in nodes:
        if not node.get("Alive"):
            continue
        resources = node.get("Resources", {})
        fit = math.floor(resources.get("CPU", 0.0) / need_cpus + 1e-9)
        if options.gpus_per_run:
            fit = min(fit, math.floor(resources.get("GPU", 0.0) / options.gpus_per_run + 1e-9))
        most = max(most, fit)
    return max(1, min(most, num_tasks))


def check_shared_paths(out: Path, data_root: Path) -> None:
    """Every alive node must see ``out`` and ``data_root`` (one zero-CPU probe task per node)."""
    ray = _ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    out.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    probe = out / f".ckda-probe-{token}"
    probe.write_text(token, encoding="utf-8")
    try:
        remote = ray.remote(_probe_paths)
        refs = {n["NodeManagerAddress"]: remote.options(
            num_cpus=0, max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False),
        ).remote(str(probe.resolve()), token, str(data_root.resolve())) for n in ray.nodes() if n["Alive"]}
        problems = []
        for ip, ref in refs.items():
            host, found = ray.get(ref)
            problems += [f"node {host} ({ip}): {p}" for p in found]
    finally:
        probe.unlink(missing_ok=True)
    if problems:
        raise ExecutorError("paths not shared by every Ray node (put --out and the data on a shared filesystem, "
                            "mounted at the same path on every node): " + "; ".join(problems))


def _describe_failure(task: RunTask, exc: BaseException) -> str:
    ray = _ray()
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return f"{task.label} failed: {type(cause).__name__}: {cause}"
    if isinstance(exc, ray.exceptions.WorkerCrashedError):
        return f"{task.label} failed: its worker died on every attempt (retries exhausted); rerun with --resume"
    return f"{task.label} failed: {type(exc).__name__}: {exc}"


def run_on_ray(tasks: list[RunTask], options: ExecutorOptions,
               report: Callable[[str], None] = print) -> list[RunOutcome]:
    """Run ``tasks`` as Ray tasks (see the module docstring); outcomes in the order of ``tasks``.

    Raises `ExecutorError` listing the failed runs after every other run finished.
    """
    from ckda_avalanche.runner.faults import restore_sigterm, sigterm_as_interrupt

    sigterm_before = signal.getsignal(signal.SIGTERM)
    started = connect(options.ray_address)  # a dead address fails before Ray is even imported
    ray = _ray()
    pending: dict[Any, int] = {}
    try:
        with sigterm_as_interrupt():  # ray.init made SIGTERM a bare sys.exit: take the Ctrl-C path below instead
            return _submit_and_wait(ray, tasks, options, pending, report)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()
        restore_sigterm(sigterm_before)  # the caller's handler, not the one ray.init installed


def _submit_and_wait(ray: Any, tasks: list[RunTask], options: ExecutorOptions, pending: dict[Any, int],
                     report: Callable[[str], None]) -> list[RunOutcome]:
    """Submit every task (``pending``: object ref -> task index, kept up to date for cancelling) and collect them."""
    from tqdm.auto import tqdm

    check_resources(options)
    if tasks:
        check_shared_paths(tasks[0].run_dir.parents[1], tasks[0].data_root)
    cpus = 1.0 if options.cpus_per_run is None else options.cpus_per_run
    remote = ray.remote(_run_remote).options(num_cpus=cpus, num_gpus=options.gpus_per_run,
                                             max_retries=options.max_retries, retry_exceptions=False)
    device_cpu = options.gpus_per_run == 0
    packed = runs_per_node(ray.nodes(), options, len(tasks))  # each run's image cache: 1/packed of the budget
    for index, task in enumerate(tasks):
        task = replace(task, resume=True, executor="ray", threads=options.threads(), progress=False,
                       device="cpu" if device_cpu and task.device == "auto" else task.device,
                       runs_per_node=packed)
        pending[remote.remote(task)] = index
    outcomes: list[RunOutcome | None] = [None] * len(tasks)
    failures: list[str] = []
    with tqdm(total=len(tasks), desc=f"runs (ray, {cpus:g} CPU{'s' if cpus != 1 else ''}"
              + (f", {options.gpus_per_run:g} GPU" if options.gpus_per_run else "") + " each)",
              disable=not options.progress, dynamic_ncols=True) as bar:
        write = bar.write if options.progress else report
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            try:
                outcomes[index] = ray.get(done[0])
                write(outcomes[index].line())
            except ray.exceptions.RayError as exc:
                failures.append(_describe_failure(tasks[index], exc))
                write(failures[-1])
            bar.update(1)
    if failures:
        raise ExecutorError(f"{len(failures)} of {len(tasks)} run(s) failed (the others finished; fix the "
                            f"cause and rerun with --resume): " + " | ".join(failures))
    return [o for o in outcomes if o is not None]

