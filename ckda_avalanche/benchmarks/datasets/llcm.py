"""LLCM reader (Zhang & Wang, "Diverse Embedding Expansion Network and Low-Light Cross-Modality Benchmark", CVPR 2023).

Layout: ``vis/<pid:04d>/*.jpg`` and ``nir/<pid:04d>/*.jpg`` for train and test alike; file names carry the camera
as ``_c<NN>_`` (``vis/0250/0250_c03_s200519_f13770_vis.jpg``). Index files ``idx/train_vis.txt``,
``idx/train_nir.txt``, ``idx/test_vis.txt``, ``idx/test_nir.txt`` (``path label`` lines) and ``idx/test_id.txt``
(comma-separated test ids). The identity is the folder number; labels must agree with it.

``max_train_label`` keeps only training lines with label < it (the published DEEN setting uses 500); the number of
dropped lines is reported in ``notes``. Protocols: paper = infrared query -> gallery of one random visible image per
(id, camera), seed = the reader's ``trial``, rule "market"; full = 10 trials x both directions (visible query ->
one random infrared image per (id, camera)).
"""
from __future__ import annotations

import re
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
    read_id_list,
    read_path_label_file,
    require_both_modalities,
    require_dir,
    require_file,
    scan_files,
)
from .integrity import IndexIdentities, duplicate_lines, split_leaks
from .problems import DataProblem

_FOLDERS = {VISIBLE: "vis", INFRARED: "nir"}
_CAMERA_FIELD = re.compile(r"_c(\d+)_")
NUM_TRIALS: int = 10
"""The full protocol averages 10 random galleries per direction."""


class LLCM(ReaderBase):
    """LLCM visible / near-infrared images; test gallery drawn per (id, camera)."""

    name = "llcm"

    def __init__(self, root: str | Path, *, trial: int = 0, max_train_label: int | None = None) -> None:
        if trial < 0:
            raise ValueError(f"LLCM trial must be >= 0, got {trial}")
        if max_train_label is not None and max_train_label < 1:
            raise ValueError(f"LLCM max_train_label must be >= 1 or None, got {max_train_label}")
        self.trial, self.max_train_label = trial, max_train_label
        base = require_dir("LLCM", Path(root).expanduser().resolve(), "the LLCM dataset root")
        self.root = str(base)
        self.notes: list[str] = []
        for folder in _FOLDERS.values():
            require_dir("LLCM", base / folder, f"{folder}/<pid:04d>/*.jpg images")
        idx = require_dir("LLCM", base / "idx", "idx/{train,test}_{vis,nir}.txt and idx/test_id.txt")
        listing = merge_listings(*(scan_files(base, folder) for folder in _FOLDERS.values()))
        self.problems: list[DataProblem] = []
        self._identities: dict[str, IndexIdentities] = {"train": [], "test": []}
        self.train = self._read_split(base, idx, "train", listing)
        self.test_pool = self._read_split(base, idx, "test", listing)
        # train lines dropped by max_train_label are not training identities, hence no leak
        self.problems += split_leaks("LLCM", self._identities["train"], self._identities["test"])
        self._finish_problems()
        self._check_test_ids(idx)
        self._set_paper_split()

    def _read_split(self, base: Path, idx: Path, split: str, listing: FileListing) -> list[ReIDSample]:
        samples: list[ReIDSample] = []
        for modality, folder in _FOLDERS.items():
            index_path = require_file("LLCM", idx / f"{split}_{folder}.txt",
                                      f"'{folder}/<pid:04d>/<pid>_c<NN>_..._{folder}.jpg <label>' lines")
            entries = read_path_label_file("LLCM", index_path)
            self.problems += duplicate_lines("LLCM", index_path, entries)
            if split == "train" and self.max_train_label is not None:
                kept = [entry for entry in entries if entry.label < self.max_train_label]
                self.notes.append(f"{index_path.name}: dropped {len(entries) - len(kept)} of {len(entries)} lines "
                                  f"with label >= max_train_label={self.max_train_label}")
                entries = kept
            for entry in entries:
                if entry.relpath.split("/")[0] != folder:
                    raise DatasetLayoutError("LLCM", index_path, f"expected a path under {folder}/, got "
                                             f"{entry.relpath!r}", line=entry.line)
            self.problems += entries_missing("LLCM", index_path, entries, listing)
            pids = [folder_pid("LLCM", index_path, entry) for entry in entries]
            check_label_consistency("LLCM", index_path, entries, pids)
            self._identities[split].append((index_path, [(pid, e.line) for e, pid in zip(entries, pids)]))
            samples.extend(ReIDSample(path=str(base / entry.relpath), pid=pid,
                                      camid=self._camera(index_path, entry), modality=modality)
                           for entry, pid in zip(entries, pids))
        require_both_modalities("LLCM", idx, split, samples)
        return samples

    @staticmethod
    def _camera(index_path: Path, entry: IndexEntry) -> int:
        match = _CAMERA_FIELD.search(entry.relpath.rsplit("/", 1)[-1])
        if match is None:
            raise DatasetLayoutError("LLCM", index_path, f"file name must carry the camera as '_c<NN>_', got "
                                     f"{entry.relpath!r}", line=entry.line)
        return int(match.group(1))

    def _check_test_ids(self, idx: Path) -> None:
        """test_id.txt and the test index files must name the same identities."""
        id_path = require_file("LLCM", idx / "test_id.txt", "one line of comma-separated test ids")
        listed = set(read_id_list("LLCM", id_path))
        present = {s.pid for s in self.test_pool}
        empty = sorted(listed - present)
        if empty:
            raise DatasetLayoutError("LLCM", id_path, f"test ids {empty[:10]} ({len(empty)} in all) have no image in "
                                     "idx/test_vis.txt or idx/test_nir.txt")
        unlisted = sorted(present - listed)
        if unlisted:
            raise DatasetLayoutError("LLCM", id_path, f"identities {unlisted[:10]} ({len(unlisted)} in all) have "
                                     "test images but are not listed as test ids")

    @staticmethod
    def _spec(query: int, trial: int) -> TrialSpec:
        gallery = VISIBLE if query == INFRARED else INFRARED
        direction = "ir2vis" if query == INFRARED else "vis2ir"
        return TrialSpec(name=f"{direction}/trial{trial}", rule="market", query=PoolSelector(modality=query),
                         gallery=PoolSelector(modality=gallery), gallery_shot=1, gallery_seed=trial)

    def protocol(self, kind: str = "paper") -> EvalProtocol:
        """paper: infrared -> visible, trial ``self.trial``; full: trials 0..9 x both directions."""
        self._check_protocol_kind(kind)
        if kind == "paper":
            return EvalProtocol(name="paper", specs=[self._spec(INFRARED, self.trial)])
        specs = [self._spec(query, trial) for query in (INFRARED, VISIBLE) for trial in range(NUM_TRIALS)]
        return EvalProtocol(name="full", specs=specs)
