"""SYSU-MM01 reader (Wu et al., ICCV 2017) and its single/multi-shot, all/indoor-search gallery protocols.

Layout: ``cam{1..6}/<pid:04d>/<n:04d>.jpg``; cameras 1, 2 (indoor), 4, 5 (outdoor) are visible, 3 and 6 infrared.
``exp/train_id.txt``, ``exp/val_id.txt``, ``exp/test_id.txt`` hold comma-separated ids. Training uses train + val
ids (every image in every camera); the test pool holds every image of the test ids.

Protocol (as in the official evaluation): query = every infrared test image; the gallery of trial ``t`` draws
``shot`` images per (test id, visible camera) with seed ``t`` (see `sample_gallery_per_id_camera`: numpy
``default_rng(t)``, (pid, camera) groups in ascending order, ``min(shot, n)`` images without replacement). Visible
cameras: 1, 2, 4, 5 for all-search, 1, 2 for indoor-search. Ranking rule "sysu". Paper = all-search single-shot,
one trial (the reader's ``trial``); full = 10 trials x {all, indoor} x {single, multi (10 shots)}.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetLayoutError
from ..protocols import EvalProtocol, PoolSelector, TrialSpec
from ..sample import INFRARED, VISIBLE, ReIDSample
from ._common import IMAGE_SUFFIXES, ReaderBase, read_id_list, require_both_modalities, require_dir, require_file
from .problems import DataProblem, error, warning

CAMERAS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
INFRARED_CAMERAS: frozenset[int] = frozenset({3, 6})
SEARCH_CAMERAS: dict[str, frozenset[int]] = {"all": frozenset({1, 2, 4, 5}), "indoor": frozenset({1, 2})}
"""Gallery (visible) cameras of each search mode."""
SHOTS: dict[str, int] = {"single": 1, "multi": 10}
NUM_TRIALS: int = 10
"""The published protocol averages 10 random galleries."""


def _modality(camid: int) -> int:
    return INFRARED if camid in INFRARED_CAMERAS else VISIBLE


class SYSUMM01(ReaderBase):
    """SYSU-MM01: train = train+val ids, test pool = every image of the test ids."""

    name = "sysu"

    def __init__(self, root: str | Path, *, search: str = "all", shot: int = 1, trial: int = 0) -> None:
        if search not in SEARCH_CAMERAS:
            raise ValueError(f"SYSU-MM01 search must be one of {sorted(SEARCH_CAMERAS)}, got {search!r}")
        if shot not in SHOTS.values():
            raise ValueError(f"SYSU-MM01 shot must be 1 (single-shot) or 10 (multi-shot), got {shot}")
        if trial < 0:
            raise ValueError(f"SYSU-MM01 trial must be >= 0, got {trial}")
        self.search, self.shot, self.trial = search, shot, trial
        base = require_dir("SYSU-MM01", Path(root).expanduser().resolve(), "the SYSU-MM01 dataset root")
        self.root = str(base)
        self.notes: list[str] = []
        self.problems: list[DataProblem] = []
        exp = require_dir("SYSU-MM01", base / "exp", "exp/{train,val,test}_id.txt id lists")
        id_lists = {split: read_id_list("SYSU-MM01", require_file("SYSU-MM01", exp / f"{split}_id.txt",
                                                                  "one line of comma-separated ids"))
                    for split in ("train", "val", "test")}
        self._check_disjoint(exp, id_lists)
        images = self._list_images(base)
        id_files = {pid: exp / f"{split}_id.txt" for split, ids in id_lists.items() for pid in ids}
        train_ids = sorted(id_lists["train"] + id_lists["val"])
        self.train = self._samples(base, id_files, train_ids, images)
        self.test_pool = self._samples(base, id_files, sorted(id_lists["test"]), images)
        self._check_test_cameras(base)
        self._finish_problems()
        require_both_modalities("SYSU-MM01", exp / "train_id.txt", "training", self.train)
        require_both_modalities("SYSU-MM01", exp / "test_id.txt", "test", self.test_pool)
        self._set_paper_split()

    def _check_disjoint(self, exp: Path, id_lists: dict[str, list[int]]) -> None:
        test = set(id_lists["test"])
        for split in ("train", "val"):
            shared = sorted(test & set(id_lists[split]))
            if shared:
                self.problems.append(error("SYSU-MM01", exp / "test_id.txt", f"train/test identity leak: test ids "
                                           f"{shared[:10]} also appear in {split}_id.txt; expected disjoint splits"))

    def _list_images(self, base: Path) -> dict[tuple[int, int], tuple[str, list[str]]]:
        """(pid, camera) -> (identity folder name, sorted image file names), one directory scan per camera folder.

        Identity folders must be named ``<pid:04d>`` (``0001``): an unpadded (``1``) or non-numeric name, two
        folders of one identity (``1`` and ``0001``), a camera folder without any image and a symlink that leads
        nowhere are errors; identity folders without images are a warning. Symlinked folders and files are followed.
        """
        images: dict[tuple[int, int], tuple[str, list[str]]] = {}
        for cam in CAMERAS:
            cam_dir = require_dir("SYSU-MM01", base / f"cam{cam}", f"cam{cam}/<pid:04d>/<n:04d>.jpg images")
            folders: dict[int, list[str]] = {}
            empty: list[str] = []
            count = 0
            with os.scandir(cam_dir) as entries:
                pid_dirs = sorted(entries, key=lambda entry: entry.name)
            for pid_dir in pid_dirs:
                if not self._is_dir(pid_dir):
                    continue
                name = pid_dir.name
                if not (name.isascii() and name.isdigit()):
                    self.problems.append(error("SYSU-MM01", pid_dir.path, "expected identity folders named "
                                               "<pid:04d>, e.g. 0001"))
                    continue
                pid = int(name)
                if name != f"{pid:04d}":
                    self.problems.append(error("SYSU-MM01", pid_dir.path, f"identity folder {name!r} is not "
                                               f"zero-padded; expected {pid:04d} (folders are named <pid:04d>)"))
                folders.setdefault(pid, []).append(name)
                names = self._image_names(pid_dir.path)
                count += len(names)
                if not names:
                    empty.append(name)
                elif (pid, cam) not in images:
                    images[(pid, cam)] = (name, names)
            for pid, names in sorted(folders.items()):
                if len(names) > 1:
                    self.problems.append(error("SYSU-MM01", cam_dir / names[0], f"ambiguous identity folders: "
                                               f"{' and '.join(names)} in cam{cam} both hold identity {pid}; "
                                               f"expected one folder {pid:04d}"))
            if count == 0:
                self.problems.append(error("SYSU-MM01", cam_dir, f"camera folder holds no image; expected "
                                           f"cam{cam}/<pid:04d>/<n:04d>.jpg (an empty camera silently shrinks "
                                           "the query or gallery set)"))
            elif empty:
                self.problems.append(warning("SYSU-MM01", cam_dir, f"{len(empty)} identity folder(s) hold no "
                                             f"image: {empty[:10]}"))
        return images

    def _is_dir(self, entry: os.DirEntry) -> bool:
        """``entry.is_dir()`` following symlinks; a symlink that leads nowhere is recorded as an error."""
        try:
            if entry.is_dir():
                return True
        except OSError:
            pass
        if entry.is_symlink() and not os.path.exists(entry.path):
            self.problems.append(error("SYSU-MM01", entry.path, "broken symlink (dangling or a loop); expected an "
                                       "identity folder or an image"))
        return False

    def _image_names(self, folder: str) -> list[str]:
        names = []
        with os.scandir(folder) as files:
            for entry in files:
                if os.path.splitext(entry.name)[1].lower() not in IMAGE_SUFFIXES or self._is_dir(entry):
                    continue
                try:
                    is_file = entry.is_file()
                except OSError:  # a symlink loop: already recorded by _is_dir
                    is_file = False
                if is_file:
                    names.append(entry.name)
        return sorted(names)

    @staticmethod
    def _samples(base: Path, id_files: dict[int, Path], ids: list[int],
                 images: dict[tuple[int, int], tuple[str, list[str]]]) -> list[ReIDSample]:
        samples: list[ReIDSample] = []
        for pid in ids:
            found = 0
            for cam in CAMERAS:
                folder, names = images.get((pid, cam), ("", []))
                for name in names:
                    samples.append(ReIDSample(path=str(base / f"cam{cam}" / folder / name), pid=pid,
                                              camid=cam, modality=_modality(cam)))
                    found += 1
            if found == 0:
                split = id_files[pid].name.removesuffix("_id.txt")
                raise DatasetLayoutError("SYSU-MM01", id_files[pid], f"{split} id {pid} has no image in any "
                                         f"cam{{1..6}}/{pid:04d}/ folder")
        return samples

    def _check_test_cameras(self, base: Path) -> None:
        """Warn about a camera folder without any image of a test identity: its query/gallery share is empty."""
        used = {s.camid for s in self.test_pool}
        for cam in CAMERAS:
            if cam not in used:
                role = "query" if cam in INFRARED_CAMERAS else "gallery"
                self.problems.append(warning("SYSU-MM01", base / f"cam{cam}", f"no image of a test identity "
                                             f"(exp/test_id.txt): the {role} set has no cam{cam} image"))

    def _spec(self, search: str, shot: int, trial: int) -> TrialSpec:
        shot_name = "single" if shot == 1 else "multi"
        return TrialSpec(name=f"{search}/{shot_name}/trial{trial}", rule="sysu",
                         query=PoolSelector(modality=INFRARED),
                         gallery=PoolSelector(modality=VISIBLE, cameras=SEARCH_CAMERAS[search]),
                         gallery_shot=shot, gallery_seed=trial)

    def protocol(self, kind: str = "paper") -> EvalProtocol:
        """paper: the reader's (search, shot, trial), one trial; full: 10 trials x {all, indoor} x {1, 10} shots."""
        self._check_protocol_kind(kind)
        if kind == "paper":
            return EvalProtocol(name="paper", specs=[self._spec(self.search, self.shot, self.trial)])
        specs = [self._spec(search, shot, trial) for search in SEARCH_CAMERAS for shot in SHOTS.values()
                 for trial in range(NUM_TRIALS)]
        return EvalProtocol(name="full", specs=specs)
