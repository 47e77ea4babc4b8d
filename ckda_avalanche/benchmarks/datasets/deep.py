"""`deep_check`: everything ``ckda data check ROOT`` does, plus decoding every image (backs ``--deep``).

Per dataset folder under ROOT:

1. the reader runs with its default options; its cross-checks (train/test identity leaks, duplicated index lines
   or tracklet rows, identity folders that are unpadded or ambiguous, empty camera folders, labels, missing or
   broken files) are collected, not stopped at the first (`DatasetProblemsError.problems`);
2. every image file under the dataset folder (symlinks followed) is decoded fully, in a thread pool sized from the
   CPU count, with a progress bar, through the same conversion as training (`images.decode_image`): empty,
   truncated or undecodable files, symlink loops and dangling symlinks are errors; lossy 16-bit conversions and
   partly transparent images are warnings; modes (hence bit depths) are tallied per dataset.

Each problem names its file (and index line). Image problems say whether the image is used by the train or the
test split with the reader's default options.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import UnidentifiedImageError

from ..errors import DatasetLayoutError
from ._common import IMAGE_SUFFIXES, ReaderBase, scan_files
from .check import DatasetReport, find_dataset_folders, format_check_report
from .images import decode_image, describe_decode_failure
from .problems import ERROR, WARNING, DataProblem, DatasetProblemsError, error, one_modality_identities, warning

MAX_WORKERS: int = 32
"""Upper bound of the decoding threads."""

CHUNK: int = 64
"""Images per pool task (HITSZ-VCM holds ~460k frames: one future per image would cost too much memory)."""

_DISPLAY = {"regdb": "RegDB", "sysu": "SYSU-MM01", "llcm": "LLCM", "vcm": "HITSZ-VCM"}


def default_workers() -> int:
    """Decoding threads: the CPUs this process may use (``os.sched_getaffinity``), at most `MAX_WORKERS`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cpus))


@dataclass(frozen=True)
class DeepDatasetReport:
    """The deep check of one dataset folder."""

    dataset: str
    """Reader name: ``"regdb"``, ``"sysu"``, ``"llcm"`` or ``"vcm"``."""
    folder: str
    """Absolute path of the dataset folder."""
    summary: dict | None
    """The reader's `summary()` when it read without errors, else None."""
    reader_error: str | None
    """The reader's error message (first error and count) when it did not, else None."""
    problems: list[DataProblem] = field(default_factory=list)
    """Every problem found (reader cross-checks, then images by path)."""
    images: int = 0
    """Image files decoded (or tried)."""
    modes: dict[str, int] = field(default_factory=dict)
    """Pillow mode of the decoded images -> count (``RGB``, ``L``, ``I;16`` ...)."""


@dataclass(frozen=True)
class DeepCheckReport:
    """The deep check of a data root."""

    datasets: list[DeepDatasetReport]
    """One report per dataset folder found."""
    workers: int
    """Decoding threads used."""
    seconds: float
    """Wall time of the whole check."""

    @property
    def problems(self) -> list[DataProblem]:
        """Every problem of every dataset, in report order."""
        return [p for d in self.datasets for p in d.problems]

    @property
    def errors(self) -> list[DataProblem]:
        """The error-level problems."""
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def ok(self) -> bool:
        """True when a dataset folder was found and no error was."""
        return bool(self.datasets) and not self.errors and all(d.reader_error is None for d in self.datasets)

    def basic_reports(self) -> list[DatasetReport]:
        """The plain `check_root` view (for `format_check_report`)."""
        return [DatasetReport(dataset=d.dataset, folder=d.folder, summary=d.summary, error=d.reader_error)
                for d in self.datasets]


def _problem_from_error(exc: DatasetLayoutError, folder: Path) -> DataProblem:
    """A `DataProblem` from a reader's first-error `DatasetLayoutError` (its text minus the ``dataset: path:``)."""
    text = str(exc)
    where = "" if exc.path is None else f" {exc.path}" + ("" if exc.line is None else f" line {exc.line}")
    prefix = f"{exc.dataset}:{where}: "
    message = text[len(prefix):] if text.startswith(prefix) else text
    return error(exc.dataset or "data", exc.path or folder, message, line=exc.line)


def _read(dataset: str, folder: Path, reader_class: type[ReaderBase]):
    """(reader or None, first-error text or None, problems) of one dataset folder."""
    try:
        reader = reader_class(folder)
    except DatasetProblemsError as exc:
        return None, str(exc), list(exc.problems)
    except DatasetLayoutError as exc:
        return None, str(exc), [_problem_from_error(exc, folder)]
    return reader, None, list(reader.problems) + one_modality_identities(_DISPLAY[dataset], reader.train)


def inspect_image(dataset: str, path: str) -> tuple[str | None, list[DataProblem]]:
    """(Pillow mode or None, problems) of decoding one image as training does."""
    try:
        decoded = decode_image(path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return None, [error(dataset, path, describe_decode_failure(path, exc))]
    problems = []
    if decoded.loss is not None:
        problems.append(warning(dataset, path, decoded.loss))
    if decoded.transparent > 0:
        problems.append(warning(dataset, path, f"{decoded.transparent:.0%} of the pixels are not fully opaque; the "
                                "alpha channel is dropped, which shows the colours stored under it"))
    return decoded.mode, problems


def _usage_note(path: str, used: dict[str, str] | None) -> str:
    if used is None:
        return ""
    split = used.get(path)
    return f" [{split} image]" if split else " [not used with the reader's default options]"


def _annotate(problem: DataProblem, note: str) -> DataProblem:
    return DataProblem(severity=problem.severity, dataset=problem.dataset, path=problem.path,
                       message=problem.message + note, line=problem.line)


def deep_check(root: str | Path, *, workers: int | None = None, progress: bool = True) -> DeepCheckReport:
    """Read every dataset folder under ``root`` and decode every image in it; see the module docstring.

    Raises `DatasetLayoutError` when ``root`` is not a folder, ``ValueError`` when ``workers < 1``.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers: expected >= 1, got {workers}")
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise DatasetLayoutError("data", base, "missing folder: expected a folder holding RegDB/, SYSU-MM01/, "
                                 "LLCM/ and/or HITSZ-VCM/")
    plans = []
    jobs: list[tuple[int, str]] = []
    for dataset, folder, reader_class in find_dataset_folders(base):
        folder = folder.resolve()
        name = _DISPLAY[dataset]
        reader, reader_error, problems = _read(dataset, folder, reader_class)
        used = None if reader is None else {**{s.path: "test" for s in reader.test_pool},
                                            **{s.path: "train" for s in reader.train}}
        listing = scan_files(folder, "")
        images = sorted(str(folder / rel) for rel in listing.files
                        if os.path.splitext(rel)[1].lower() in IMAGE_SUFFIXES)
        broken = [error(name, folder / rel, f"cannot open image: {reason}") for rel, reason in sorted(
            listing.broken.items()) if os.path.splitext(rel)[1].lower() in IMAGE_SUFFIXES]
        index = len(plans)
        plans.append({"dataset": dataset, "name": name, "folder": folder, "reader": reader, "error": reader_error,
                      "problems": problems, "used": used, "broken": broken, "images": images})
        jobs.extend((index, path) for path in images)

    def inspect_chunk(chunk: list[tuple[int, str]]) -> list[tuple[str | None, list[DataProblem]]]:
        return [inspect_image(plans[index]["name"], path) for index, path in chunk]

    chunks = [jobs[i:i + CHUNK] for i in range(0, len(jobs), CHUNK)]
    results: list[tuple[str | None, list[DataProblem]]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(jobs), desc="decoding images", unit="img", disable=not progress,
                 dynamic_ncols=True) as bar:
        for chunk_results in pool.map(inspect_chunk, chunks):
            results.extend(chunk_results)
            bar.update(len(chunk_results))

    per_plan: list[list[tuple[str, tuple[str | None, list[DataProblem]]]]] = [[] for _ in plans]
    for (index, path), result in zip(jobs, results):
        per_plan[index].append((path, result))
    reports = []
    for plan, decoded in zip(plans, per_plan):
        reader_problems: list[DataProblem] = plan["problems"]
        image_problems = [_annotate(p, _usage_note(p.path, plan["used"])) for p in plan["broken"]]
        modes: Counter[str] = Counter()
        for path, (mode, problems) in decoded:
            if mode is not None:
                modes[mode] += 1
            image_problems.extend(_annotate(p, _usage_note(path, plan["used"])) for p in problems)
        image_problems = _drop_repeated(reader_problems, image_problems, plan["folder"])
        image_problems.sort(key=lambda p: (p.path, p.severity != ERROR))
        reader: ReaderBase | None = plan["reader"]
        reports.append(DeepDatasetReport(
            dataset=plan["dataset"], folder=str(plan["folder"]),
            summary=None if reader is None else reader.summary(), reader_error=plan["error"],
            problems=reader_problems + image_problems, images=len(plan["images"]) + len(plan["broken"]),
            modes=dict(sorted(modes.items(), key=lambda item: (-item[1], item[0]))),
        ))
    return DeepCheckReport(datasets=reports, workers=workers, seconds=time.perf_counter() - start)


def _drop_repeated(reader_problems: Iterable[DataProblem], image_problems: list[DataProblem],
                   folder: Path) -> list[DataProblem]:
    """Leave out an image's broken-symlink error when a reader problem already names that image (index line)."""
    texts = [p.message for p in reader_problems]
    kept = []
    for problem in image_problems:
        rel = os.path.relpath(problem.path, folder).replace(os.sep, "/")
        if problem.message.startswith("cannot open image:") and any(repr(rel) in text for text in texts):
            continue
        kept.append(problem)
    return kept


def format_deep_report(report: DeepCheckReport) -> str:
    """The `format_check_report` table, then per dataset the decoded images and their modes, then every problem."""
    lines = [format_check_report(report.basic_reports(), warnings=False)]
    if not report.datasets:
        return lines[0]
    total = sum(d.images for d in report.datasets)
    lines += ["", f"deep check: {total} image file(s) decoded in {report.seconds:.1f} s with {report.workers} "
              "thread(s)", f"{'dataset':<8} {'images':>7}  modes (Pillow; I;16 = 16-bit, scaled to 8 bits)"]
    for d in report.datasets:
        modes = ", ".join(f"{mode} {count}" for mode, count in d.modes.items()) or "-"
        lines.append(f"{d.dataset:<8} {d.images:>7}  {modes}")
    problems = report.problems
    errors = sum(p.severity == ERROR for p in problems)
    warnings = sum(p.severity == WARNING for p in problems)
    if not problems:
        lines += ["", "no problems found"]
        return "\n".join(lines)
    lines += ["", f"{errors} error(s), {warnings} warning(s):"]
    lines.extend(f"  {p.severity.upper():<7}  {p.text}" for p in problems)
    return "\n".join(lines)
