"""RegDB reader (Nguyen et al., Sensors 2017), with the 10 train/test identity splits used by every VI-ReID paper.

Layout: ``Visible/<pid>/*.bmp``, ``Thermal/<pid>/*.bmp`` and ``idx/{train,test}_{visible,thermal}_{t}.txt`` with
``relative/path label`` lines. The identity is the folder number; the label of the file must agree with it (the
same label always the same folder). Camera ids: visible 1, thermal 2.

A RegDB "trial" changes the identity split itself (206 train / 206 test ids, different per trial), so one reader
reads one trial; evaluating the 10 trials means building 10 readers (``RegDB(root, trial=t)`` for t = 1..10).
Protocols: paper = visible query -> thermal gallery (every test image, no camera rule); full = both directions of
the constructed trial (thermal -> visible swaps the roles).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import DatasetLayoutError
from ..protocols import EvalProtocol, PoolSelector, TrialSpec
from ..sample import INFRARED, VISIBLE, ReIDSample
from ._common import (
    FileListing,
    IndexEntry,
    ReaderBase,
    check_label_consistency,
    entries_missing,
    folder_pid,
    merge_listings,
    read_path_label_file,
    require_both_modalities,
    require_dir,
    require_file,
    scan_files,
)
from .integrity import IndexIdentities, duplicate_lines, split_leaks
from .problems import DataProblem

_MODALITY_FOLDERS = {VISIBLE: "Visible", INFRARED: "Thermal"}
_FILE_WORDS = {VISIBLE: "visible", INFRARED: "thermal"}
_CAMERAS = {VISIBLE: 1, INFRARED: 2}
NUM_TRIALS: int = 10
"""RegDB ships ten identity splits, ``idx/*_{1..10}.txt``."""


class RegDB(ReaderBase):
    """RegDB visible/thermal images of one identity-split trial (1..10)."""

    name = "regdb"

    def __init__(self, root: str | Path, *, trial: int = 1) -> None:
        if not 1 <= trial <= NUM_TRIALS:
            raise ValueError(f"RegDB trial must be in 1..{NUM_TRIALS}, got {trial}")
        self.trial = trial
        base = require_dir("RegDB", Path(root).expanduser().resolve(), "the RegDB dataset root")
        self.root = str(base)
        self.notes: list[str] = []
        for folder in _MODALITY_FOLDERS.values():
            require_dir("RegDB", base / folder, f"{folder}/<pid>/*.bmp images")
        require_dir("RegDB", base / "idx", "idx/{train,test}_{visible,thermal}_<trial>.txt index files")
        listing = merge_listings(*(scan_files(base, folder) for folder in _MODALITY_FOLDERS.values()))
        self.problems: list[DataProblem] = []
        self._identities: dict[str, IndexIdentities] = {"train": [], "test": []}
        self.train = self._read_split(base, "train", listing)
        self.test_pool = self._read_split(base, "test", listing)
        self.problems += split_leaks("RegDB", self._identities["train"], self._identities["test"])
        self._finish_problems()
        self._check_test_ids(base)
        self._set_paper_split()

    def _read_split(self, base: Path, split: str, listing: FileListing) -> list[ReIDSample]:
        samples: list[ReIDSample] = []
        for modality, word in _FILE_WORDS.items():
            index_path = require_file("RegDB", base / "idx" / f"{split}_{word}_{self.trial}.txt",
                                      f"'<{_MODALITY_FOLDERS[modality]}/pid/file.bmp> <label>' lines")
            entries = read_path_label_file("RegDB", index_path)
            self._check_modality_folder(index_path, entries, modality)
            self.problems += entries_missing("RegDB", index_path, entries, listing)
            self.problems += duplicate_lines("RegDB", index_path, entries)
            pids = [folder_pid("RegDB", index_path, entry) for entry in entries]
            check_label_consistency("RegDB", index_path, entries, pids)
            self._identities[split].append((index_path, [(pid, e.line) for e, pid in zip(entries, pids)]))
            samples.extend(ReIDSample(path=str(base / entry.relpath), pid=pid, camid=_CAMERAS[modality],
                                      modality=modality) for entry, pid in zip(entries, pids))
        require_both_modalities("RegDB", base / "idx", f"{split} (trial {self.trial})", samples)
        return samples

    @staticmethod
    def _check_modality_folder(index_path: Path, entries: list[IndexEntry], modality: int) -> None:
        folder = _MODALITY_FOLDERS[modality]
        for entry in entries:
            if entry.relpath.split("/")[0] != folder:
                raise DatasetLayoutError("RegDB", index_path, f"expected a path under {folder}/, got "
                                         f"{entry.relpath!r}", line=entry.line)

    def _check_test_ids(self, base: Path) -> None:
        """Every test identity must have images in both modalities, or cross-modal retrieval is undefined."""
        visible = {s.pid for s in self.test_pool if s.modality == VISIBLE}
        thermal = {s.pid for s in self.test_pool if s.modality == INFRARED}
        if visible != thermal:
            only = sorted(visible ^ thermal)
            raise DatasetLayoutError("RegDB", base / "idx" / f"test_thermal_{self.trial}.txt",
                                     f"test identities {only[:10]} have images in only one of "
                                     f"test_visible_{self.trial}.txt / test_thermal_{self.trial}.txt")

    def protocol(self, kind: str = "paper") -> EvalProtocol:
        """paper: visible -> thermal of this trial; full: both directions of this trial (rule "none")."""
        self._check_protocol_kind(kind)
        vis2ir = TrialSpec(name=f"vis2ir/trial{self.trial}", rule="none",
                           query=PoolSelector(modality=VISIBLE), gallery=PoolSelector(modality=INFRARED))
        if kind == "paper":
            return EvalProtocol(name="paper", specs=[vis2ir])
        ir2vis = TrialSpec(name=f"ir2vis/trial{self.trial}", rule="none",
                           query=PoolSelector(modality=INFRARED), gallery=PoolSelector(modality=VISIBLE))
        return EvalProtocol(name="full", specs=[vis2ir, ir2vis])
