"""Helpers shared by the four dataset readers: index-file parsing, one-pass file listing, summaries.

Every check raises `DatasetLayoutError` naming the dataset, the file, the 1-based line and what was expected:
format errors at once, the cross-checks (missing or broken files, duplicates, leaks, ...) collected and raised
together as a `DatasetProblemsError` (``problems.py``). Images are decoded in ``images.py``.
File existence is checked against one directory scan per image folder (set lookups), never one ``stat`` per
index line, so the ~50k-image SYSU-MM01 / LLCM trees validate in well under a second. The scan follows symlinked
folders and files (the usual way to share a dataset), visits a folder reached twice through links only once, and
reports symlinks that lead nowhere or loop.
"""
from __future__ import annotations

import errno
import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetLayoutError
from ..protocols import EvalProtocol, group_pool_by_tracklet
from ..sample import INFRARED, VISIBLE, ReIDSample
from .images import load_image  # noqa: F401 - re-exported: readers' image loading lived here before
from .problems import WARNING, DataProblem, error, raise_if_errors

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
"""File suffixes (lower-cased) counted as images when a reader lists a folder itself (SYSU-MM01)."""

MODALITY_NAMES: dict[int, str] = {VISIBLE: "visible", INFRARED: "infrared"}


def require_dir(dataset: str, path: Path, what: str) -> Path:
    """Return ``path`` if it is a directory, else raise naming what the folder should hold."""
    if not path.is_dir():
        raise DatasetLayoutError(dataset, path, f"missing folder: expected {what}")
    return path


def require_file(dataset: str, path: Path, what: str) -> Path:
    """Return ``path`` if it is a file, else raise naming what the file should hold."""
    if not path.is_file():
        raise DatasetLayoutError(dataset, path, f"missing index file: expected {what}")
    return path


def read_lines(dataset: str, path: Path) -> list[tuple[int, str]]:
    """Non-blank stripped lines of a text file, with their 1-based line numbers."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DatasetLayoutError(dataset, path, f"expected a UTF-8 text file ({error})") from error
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One ``relative/path label`` line of an index file."""

    relpath: str
    """Image path relative to the dataset root, with ``/`` separators."""
    label: int
    """The split-local label written in the file."""
    line: int
    """1-based line number in the index file."""


def read_path_label_file(dataset: str, path: Path) -> list[IndexEntry]:
    """Parse an index file of ``relative/path label`` lines (RegDB ``idx/``, LLCM ``idx/``)."""
    entries = []
    for number, line in read_lines(dataset, path):
        parts = line.split()
        if len(parts) != 2:
            raise DatasetLayoutError(dataset, path, f"expected '<relative path> <integer label>', got {line!r}",
                                     line=number)
        try:
            label = int(parts[1])
        except ValueError:
            raise DatasetLayoutError(dataset, path, f"label must be an integer, got {parts[1]!r}",
                                     line=number) from None
        entries.append(IndexEntry(relpath=parts[0].replace("\\", "/").lstrip("/"), label=label, line=number))
    if not entries:
        raise DatasetLayoutError(dataset, path, "index file is empty: expected '<relative path> <label>' lines")
    return entries


def read_id_list(dataset: str, path: Path) -> list[int]:
    """Parse an id list: integers separated by commas and/or whitespace (SYSU-MM01 ``exp/``, LLCM ``test_id.txt``)."""
    ids: list[int] = []
    for number, line in read_lines(dataset, path):
        for token in re.split(r"[,\s]+", line):
            if not token:
                continue
            try:
                ids.append(int(token))
            except ValueError:
                raise DatasetLayoutError(dataset, path, f"expected comma-separated integer ids, got {token!r}",
                                         line=number) from None
    if not ids:
        raise DatasetLayoutError(dataset, path, "id list is empty: expected comma-separated integer ids")
    if len(set(ids)) != len(ids):
        duplicates = sorted(i for i, count in Counter(ids).items() if count > 1)
        raise DatasetLayoutError(dataset, path, f"id list repeats ids {duplicates[:10]}")
    return ids


@dataclass(frozen=True)
class FileListing:
    """Files under a folder, as ``/``-separated paths relative to the dataset root."""

    files: set[str]
    """Every readable file (symlinks followed)."""
    broken: dict[str, str]
    """Symlinks that cannot be followed -> why (``"dangling symlink"``, ``"symlink loop"``)."""


def _broken_reason(path: str) -> str | None:
    try:
        os.stat(path)
    except FileNotFoundError:
        return f"dangling symlink (points to {os.readlink(path)!r}, which does not exist)"
    except OSError as exc:
        return "symlink loop" if exc.errno == errno.ELOOP else f"unreadable symlink ({exc.strerror})"
    return None


def scan_files(root: Path, folder: str) -> FileListing:
    """Every file under ``root/folder`` (one ``os.scandir`` per folder), following symlinked folders and files.

    ``folder=""`` lists the whole of ``root`` (paths then start below it).
    """
    files: set[str] = set()
    broken: dict[str, str] = {}
    visited: set[tuple[int, int]] = set()
    stack = [(str(root / folder), folder.replace(os.sep, "/").strip("/"))]
    while stack:
        directory, rel_dir = stack.pop()
        try:
            info = os.stat(directory)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in visited:
            continue  # reached again through a symlink: list it once
        visited.add((info.st_dev, info.st_ino))
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    stack.append((entry.path, rel))
                    continue
                reason = _broken_reason(entry.path) if entry.is_symlink() else None
                if reason is None:
                    files.add(rel)
                else:
                    broken[rel] = reason
    return FileListing(files=files, broken=broken)


def list_files(root: Path, folder: str) -> set[str]:
    """Every readable file under ``root/folder``, as ``/``-separated paths relative to ``root`` (see `scan_files`)."""
    return scan_files(root, folder).files


def merge_listings(*listings: FileListing) -> FileListing:
    """The union of several listings."""
    return FileListing(files=set().union(*(x.files for x in listings)),
                       broken={k: v for x in listings for k, v in x.broken.items()})


def entries_missing(dataset: str, index_path: Path, entries: Iterable[IndexEntry],
                    listing: FileListing) -> list[DataProblem]:
    """One error per broken symlink an index entry names, and one for the entries naming no file at all."""
    problems = []
    missing = []
    for entry in entries:
        if entry.relpath in listing.files:
            continue
        if entry.relpath in listing.broken:
            problems.append(error(dataset, index_path, f"image {entry.relpath!r} is a "
                                  f"{listing.broken[entry.relpath]}", line=entry.line))
        else:
            missing.append(entry)
    if missing:
        first = missing[0]
        problems.append(error(dataset, index_path, f"image {first.relpath!r} does not exist under the dataset root "
                              f"({len(missing)} listed image(s) missing in this file)", line=first.line))
    return problems


def check_entries_exist(dataset: str, index_path: Path, entries: Iterable[IndexEntry], existing: set[str]) -> None:
    """Raise on the first index entry whose image is not in ``existing`` (and say how many are missing)."""
    problems = entries_missing(dataset, index_path, entries, FileListing(files=existing, broken={}))
    if problems:
        raise problems[0].as_error()


def folder_pid(dataset: str, index_path: Path, entry: IndexEntry, *, depth: int = 1) -> int:
    """The identity encoded by the folder at position ``depth`` of an entry's path (``Visible/<pid>/x.bmp``)."""
    parts = entry.relpath.split("/")
    if len(parts) <= depth + 1:
        raise DatasetLayoutError(dataset, index_path, f"expected '<modality folder>/<pid>/<file>', got "
                                 f"{entry.relpath!r}", line=entry.line)
    try:
        return int(parts[depth])
    except ValueError:
        raise DatasetLayoutError(dataset, index_path, f"identity folder must be an integer, got {parts[depth]!r} "
                                 f"in {entry.relpath!r}", line=entry.line) from None


def check_label_consistency(dataset: str, index_path: Path, entries: Sequence[IndexEntry],
                            pids: Sequence[int]) -> None:
    """Each label must always name the same identity folder and each folder always carry the same label."""
    label_to_pid: dict[int, tuple[int, int]] = {}
    pid_to_label: dict[int, tuple[int, int]] = {}
    for entry, pid in zip(entries, pids):
        seen_pid, seen_line = label_to_pid.setdefault(entry.label, (pid, entry.line))
        if seen_pid != pid:
            raise DatasetLayoutError(dataset, index_path, f"label {entry.label} is used for identity folder {pid} "
                                     f"here but for folder {seen_pid} on line {seen_line}", line=entry.line)
        seen_label, seen_line = pid_to_label.setdefault(pid, (entry.label, entry.line))
        if seen_label != entry.label:
            raise DatasetLayoutError(dataset, index_path, f"identity folder {pid} has label {entry.label} here but "
                                     f"label {seen_label} on line {seen_line}", line=entry.line)


def require_both_modalities(dataset: str, path: Path, split: str, samples: Sequence[ReIDSample]) -> None:
    """Raise when a split holds no image of one modality."""
    for modality, modality_name in MODALITY_NAMES.items():
        if not any(sample.modality == modality for sample in samples):
            raise DatasetLayoutError(dataset, path, f"the {split} split has no {modality_name} image; expected "
                                     "both modalities")


def split_stats(samples: Sequence[ReIDSample]) -> dict:
    """ids, images per modality, cameras (and tracklets when known) of a list of samples."""
    stats: dict = {
        "ids": len({s.pid for s in samples}),
        "images": {name: sum(1 for s in samples if s.modality == m) for m, name in MODALITY_NAMES.items()},
        "cameras": sorted({s.camid for s in samples}),
    }
    tracklets = {s.tracklet for s in samples if s.tracklet >= 0}
    if tracklets:
        stats["tracklets"] = len(tracklets)
    return stats


class ReaderBase(ABC):
    """What the four readers share: the public attributes, the paper trial's query/gallery and `summary()`."""

    name: str = ""
    root: str
    train: list[ReIDSample]
    test_pool: list[ReIDSample]
    query: list[ReIDSample]
    gallery: list[ReIDSample]
    notes: list[str]
    problems: list[DataProblem]
    """Findings of the reader's cross-checks; once the reader is built, only warnings (errors raise)."""

    @abstractmethod
    def protocol(self, kind: str = "paper") -> EvalProtocol:
        """The paper (``"paper"``) or full (``"full"``) evaluation protocol over `test_pool`."""

    def _check_protocol_kind(self, kind: str) -> None:
        if kind not in ("paper", "full"):
            raise ValueError(f"{self.name}: protocol kind must be 'paper' or 'full', got {kind!r}")

    def _finish_problems(self) -> None:
        """Raise the collected errors together (`DatasetProblemsError`); copy the warnings into ``notes``."""
        raise_if_errors(self.problems)
        self.notes.extend(f"warning: {p.text}" for p in self.problems if p.severity == WARNING)

    def _set_paper_split(self) -> None:
        """Materialise ``query`` / ``gallery`` from the first trial of the paper protocol."""
        protocol = self.protocol("paper")
        pool = group_pool_by_tracklet(self.test_pool)[0] if protocol.group_by_tracklet else self.test_pool
        first = protocol.trials(pool)[0]
        self.query = [pool[i] for i in first.query]
        self.gallery = [pool[i] for i in first.gallery]

    def summary(self) -> dict:
        """Per split (train, query, gallery, test_pool): ids, images per modality, cameras; plus the notes."""
        return {
            "dataset": self.name,
            "root": self.root,
            "splits": {
                "train": split_stats(self.train),
                "query": split_stats(self.query),
                "gallery": split_stats(self.gallery),
                "test_pool": split_stats(self.test_pool),
            },
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={self.root!r}, train={len(self.train)}, "
                f"test_pool={len(self.test_pool)}, query={len(self.query)}, gallery={len(self.gallery)})")
