"""`check_root`: which of the four datasets live under a folder, and do they read? (backs ``ckda data check ROOT``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetLayoutError
from ._common import ReaderBase
from .problems import DatasetProblemsError, one_modality_identities
from .llcm import LLCM
from .regdb import RegDB
from .sysu import SYSUMM01
from .vcm import HITSZVCM

DATASET_FOLDERS: tuple[tuple[str, tuple[str, ...], type[ReaderBase]], ...] = (
    ("regdb", ("RegDB",), RegDB),
    ("sysu", ("SYSU-MM01",), SYSUMM01),
    ("llcm", ("LLCM",), LLCM),
    ("vcm", ("HITSZ-VCM", "VCM"), HITSZVCM),
)
"""(reader name, accepted folder names in order of preference, reader class)."""


@dataclass(frozen=True)
class DatasetReport:
    """The outcome of reading one dataset folder with the reader's default options."""

    dataset: str
    """Reader name: ``"regdb"``, ``"sysu"``, ``"llcm"`` or ``"vcm"``."""
    folder: str
    """Absolute path of the dataset folder that was read."""
    summary: dict | None
    """The reader's `summary()` when it read cleanly, else None."""
    error: str | None
    """The `DatasetLayoutError` message when it did not, else None."""

    @property
    def ok(self) -> bool:
        """True when the dataset read without a layout error."""
        return self.error is None


def find_dataset_folders(base: Path) -> list[tuple[str, Path, type[ReaderBase]]]:
    """(reader name, dataset folder, reader class) of every dataset folder present under ``base``."""
    found = []
    for dataset, folders, reader_class in DATASET_FOLDERS:
        folder = next((base / name for name in folders if (base / name).is_dir()), None)
        if folder is not None:
            found.append((dataset, folder, reader_class))
    return found


def check_root(root: str | Path) -> list[DatasetReport]:
    """Read every dataset folder found under ``root`` (``RegDB``, ``SYSU-MM01``, ``LLCM``, ``HITSZ-VCM`` or ``VCM``).

    Datasets whose folder is absent are not reported; a reader's `DatasetLayoutError` is reported, not raised, and
    so are training identities with images of one modality only (`problems.one_modality_identities`).
    Raises `DatasetLayoutError` when ``root`` itself is not a folder.
    """
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise DatasetLayoutError("data", base, "missing folder: expected a folder holding RegDB/, SYSU-MM01/, "
                                 "LLCM/ and/or HITSZ-VCM/")
    reports = []
    for dataset, folder, reader_class in find_dataset_folders(base):
        try:
            reader = reader_class(folder)
        except DatasetLayoutError as error:
            reports.append(DatasetReport(dataset=dataset, folder=str(folder), summary=None, error=str(error)))
        else:  # readable; a training identity with one modality only would stop the run at its session
            problems = one_modality_identities(folder.name, reader.train)
            reports.append(DatasetReport(dataset=dataset, folder=str(folder), summary=reader.summary(),
                                         error=str(DatasetProblemsError(problems)) if problems else None))
    return reports


def format_check_report(reports: list[DatasetReport], *, warnings: bool = True) -> str:
    """A plain-text table: per dataset and split (train, query, gallery) ids, visible / infrared images, cameras.

    The readers' notes follow each dataset; ``warnings=False`` leaves out the notes that are warnings (the deep
    check lists those itself).
    """
    if not reports:
        return "no dataset folder found (expected RegDB/, SYSU-MM01/, LLCM/ and/or HITSZ-VCM/ or VCM/)"
    header = f"{'dataset':<8} {'split':<8} {'ids':>6} {'visible':>8} {'infrared':>9}  cameras"
    lines = [header, "-" * len(header)]
    for report in reports:
        if report.summary is None:
            lines.append(f"{report.dataset:<8} ERROR    {report.error}")
            continue
        for split in ("train", "query", "gallery"):
            stats = report.summary["splits"][split]
            cameras = ",".join(str(c) for c in stats["cameras"])
            lines.append(f"{report.dataset:<8} {split:<8} {stats['ids']:>6} {stats['images']['visible']:>8} "
                         f"{stats['images']['infrared']:>9}  {cameras}")
        lines.extend(f"{'':<8} note: {note}" for note in report.summary["notes"]
                     if warnings or not note.startswith("warning: "))
        if report.error:
            lines.append(f"{report.dataset:<8} ERROR    {report.error}")
    return "\n".join(lines)
