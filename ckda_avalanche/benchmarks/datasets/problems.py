"""`DataProblem`: one finding of a reader's consistency checks or of the deep check, and how readers raise them.

The readers' cheap cross-checks (identity leaks between train and test, duplicated index lines or tracklet rows,
badly named identity folders, empty camera folders, missing or broken files) do not stop at the first finding: a
reader collects them while it reads, then raises one `DatasetProblemsError` carrying all of them. Its message is the
first error (naming the file and line) plus how many more there are, so ``ckda data check ROOT`` stays one line per
dataset while ``ckda data check ROOT --deep`` lists every problem. Warnings (suspicious but usable data) never stop
a reader; they are kept in the reader's ``warnings`` and ``notes``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetLayoutError

ERROR = "error"
"""Severity of a problem that makes the data unusable or the scores wrong."""
WARNING = "warning"
"""Severity of a problem that leaves the data usable but deserves a look."""


@dataclass(frozen=True, slots=True)
class DataProblem:
    """One problem of a dataset on disk: severity, dataset, offending file (and 1-based line) and what is wrong."""

    severity: str
    """`ERROR` or `WARNING`."""
    dataset: str
    """Dataset name as used in messages: ``"RegDB"``, ``"SYSU-MM01"``, ``"LLCM"``, ``"HITSZ-VCM"``."""
    path: str
    """The offending file or folder."""
    message: str
    """What is wrong and what was expected."""
    line: int | None = None
    """1-based line of ``path`` for index files, else None."""

    def __post_init__(self) -> None:
        if self.severity not in (ERROR, WARNING):
            raise ValueError(f"DataProblem.severity: expected {ERROR!r} or {WARNING!r}, got {self.severity!r}")

    @property
    def text(self) -> str:
        """``"<dataset>: <path>[ line N]: <message>"``, the format of `DatasetLayoutError`."""
        where = self.path if self.line is None else f"{self.path} line {self.line}"
        return f"{self.dataset}: {where}: {self.message}"

    def as_error(self) -> DatasetLayoutError:
        """This problem as a `DatasetLayoutError`."""
        return DatasetLayoutError(self.dataset, self.path, self.message, line=self.line)


def error(dataset: str, path: str | Path, message: str, *, line: int | None = None) -> DataProblem:
    """An `ERROR` problem."""
    return DataProblem(severity=ERROR, dataset=dataset, path=str(path), message=message, line=line)


def warning(dataset: str, path: str | Path, message: str, *, line: int | None = None) -> DataProblem:
    """A `WARNING` problem."""
    return DataProblem(severity=WARNING, dataset=dataset, path=str(path), message=message, line=line)


class DatasetProblemsError(DatasetLayoutError):
    """A reader found one or more errors; ``problems`` holds all of them (warnings included), in reading order.

    The message is the first error's, plus ``(and N more problem(s) ...)`` when there are several.
    """

    def __init__(self, problems: Sequence[DataProblem]) -> None:
        errors = [p for p in problems if p.severity == ERROR]
        if not errors:
            raise ValueError("DatasetProblemsError needs at least one error-level problem")
        first = errors[0]
        self.problems = list(problems)
        more = len(errors) - 1
        message = first.message
        if more:
            message += f" (and {more} more error(s); 'ckda data check ROOT --deep' lists them all)"
        super().__init__(first.dataset, first.path, message, line=first.line)


def raise_if_errors(problems: Sequence[DataProblem]) -> None:
    """Raise `DatasetProblemsError` when ``problems`` holds an error; warnings alone pass."""
    if any(p.severity == ERROR for p in problems):
        raise DatasetProblemsError(problems)


def one_modality_identities(dataset: str, samples: Sequence) -> list[DataProblem]:
    """An `ERROR` per training identity whose images are all of one modality (the cross-modality sampler needs
    both), naming the dataset's own identity label and one of its files. ``samples``: `ReIDSample`s (``pid`` is
    the dataset's own label, ``modality`` 0 visible / 1 infrared)."""
    files: dict[int, dict[int, list[str]]] = {}
    for sample in samples:
        files.setdefault(int(sample.pid), {}).setdefault(int(sample.modality), []).append(str(sample.path))
    problems = []
    for pid, by_modality in sorted(files.items()):
        if len(by_modality) != 1:
            continue
        (modality, paths), = by_modality.items()
        have, lack = ("visible", "infrared") if modality == 0 else ("infrared", "visible")
        problems.append(error(dataset, paths[0], f"training identity {pid} has {len(paths)} {have} image(s) "
                              f"(this is one) and no {lack} image: cross-modality batches need both; add its "
                              f"{lack} images, or remove the identity from the training split"))
    return problems


def check_paired_identities(benchmark: object) -> None:
    """`DatasetProblemsError` (naming the dataset's own identity label and a file) when a training identity of any
    session of ``benchmark`` has images of one modality only: refused before the first session trains, not at its
    own session."""
    for experience in benchmark.train_stream:  # type: ignore[attr-defined]
        info = experience.reid
        problems = one_modality_identities(info.dataset, info.samples)
        if problems:
            raise DatasetProblemsError(problems)
