"""Cross-checks every reader runs while reading: duplicated index lines and train/test identity leaks.

Both are silent score changes, not crashes: a duplicated test line enlarges the gallery (RegDB: 60 instead of 50
images) and weights one image twice; an identity in both the training and the test split lets the model be tested
on people it was trained on. They return `DataProblem`s (errors) naming the index file and line; the reader raises
them together (see `problems.py`).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ._common import IndexEntry
from .problems import DataProblem, error

SHOWN_IDS: int = 10
"""How many offending ids a message lists before ``...``."""


def _ids_text(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:SHOWN_IDS])
    return f"[{shown}{', ...' if len(ids) > SHOWN_IDS else ''}]"


def duplicate_lines(dataset: str, index_path: Path, entries: Iterable[IndexEntry]) -> list[DataProblem]:
    """One error per index line naming an image an earlier line of the same file already named."""
    first_line: dict[str, int] = {}
    problems = []
    for entry in entries:
        seen = first_line.setdefault(entry.relpath, entry.line)
        if seen != entry.line:
            problems.append(error(dataset, index_path, f"duplicated line: image {entry.relpath!r} is already listed "
                                  f"on line {seen}; expected each image once", line=entry.line))
    return problems


IdentitySource = tuple[Path, int | None]
"""Where an identity was found: (file, 1-based line or None for id lists / folders)."""


def identity_leaks(dataset: str, train: dict[int, IdentitySource], test_path: Path,
                   test: Iterable[tuple[int, int | None]]) -> list[DataProblem]:
    """One error for ``test_path`` when identities it lists (``(pid, line)`` pairs) are also training identities.

    ``train`` maps each training identity to the file (and line) where it first appears.
    """
    leaked: dict[int, int | None] = {}
    for pid, line in test:
        if pid in train and pid not in leaked:
            leaked[pid] = line
    if not leaked:
        return []
    ids = sorted(leaked)
    first = min(leaked, key=lambda pid: (leaked[pid] is None, leaked[pid] or 0, pid))
    train_file, train_line = train[first]
    where = train_file.name if train_line is None else f"{train_file.name} line {train_line}"
    return [error(dataset, test_path, f"train/test identity leak: identities {_ids_text(ids)} ({len(ids)} in all) "
                  f"are also training identities (identity {first}: {where}); expected disjoint splits",
                  line=leaked[first])]


IndexIdentities = list[tuple[Path, list[tuple[int, int]]]]
"""Per index file of a split: (file, [(identity, 1-based line), ...])."""


def split_leaks(dataset: str, train: IndexIdentities, test: IndexIdentities) -> list[DataProblem]:
    """`identity_leaks` of every test index file against every identity of the train index files."""
    first: dict[int, IdentitySource] = {}
    for path, pairs in train:
        for pid, line in pairs:
            first.setdefault(pid, (path, line))
    return [problem for path, pairs in test for problem in identity_leaks(dataset, first, path, pairs)]
