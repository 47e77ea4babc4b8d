"""Errors raised by the dataset readers and the synthetic generator."""
from __future__ import annotations

from pathlib import Path


class DatasetLayoutError(ValueError):
    """A dataset on disk does not match its official layout.

    The message always names the dataset, the offending file (with a 1-based line number for index files) and
    what was expected, e.g. ``RegDB: /data/RegDB/idx/train_visible_1.txt line 7: expected '<relative path>
    <integer label>', got 'Visible/3/a.bmp x'``.
    """

    def __init__(self, dataset: str, path: str | Path | None, message: str, *, line: int | None = None) -> None:
        self.dataset = dataset
        self.path = None if path is None else str(path)
        self.line = line
        where = "" if path is None else f" {path}"
        if line is not None:
            where += f" line {line}"
        super().__init__(f"{dataset}:{where}: {message}" if where else f"{dataset}: {message}")
