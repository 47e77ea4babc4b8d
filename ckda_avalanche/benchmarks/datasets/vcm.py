"""HITSZ-VCM reader (Lin et al., "Learning Modal-Invariant and Temporal-Memory for Video-based Visible-Infrared
Person Re-Identification", CVPR 2022), as used image-wise by the VI-LReID papers.

Layout: ``Train/<pid:04d>/{rgb,ir}/D<cam>/<frame>.jpg`` and ``Test/...`` likewise, plus ``info/``:
``train_name.txt`` / ``test_name.txt`` list one frame name per line, e.g. ``0001M2D3T1F1.jpg`` = identity ``0001``,
modality ``M`` (1 infrared, 2 visible), camera ``D3``, tracklet ``T1``, frame ``F1.jpg``; as in the official data
manager, that name resolves to ``Train/0001/rgb/D3/1.jpg`` (``Test/`` for the test list).
``track_{train,test}_info.txt`` rows are ``modality start end pid cam`` (modality 1 = infrared, 2 = visible; start/end
1-based inclusive indices into the name list); ``query_IDX.txt`` holds 1-based row numbers of the query tracklets.

Like the official data manager, tracklets shorter than ``min_tracklet_len`` are skipped in train AND test (the
counts are reported in ``notes``). Train: ``frames_per_tracklet`` distinct frames per tracklet, drawn with
``numpy.random.default_rng(seed)`` visiting tracklets in row order (``rng.choice(n, k, replace=False)``, kept in
frame order). Test, ``tracklet_feature="frame"``: each tracklet is represented by its middle frame (0-based index
``n // 2``); ``"mean"``: every frame is in the pool and the protocol averages features per tracklet
(``group_by_tracklet=True``). Every sample carries ``tracklet`` = the 0-based row of its track-info file.
Protocols (one fixed split): paper = infrared query tracklets (query_IDX) -> the remaining visible tracklets; full =
both directions (visible tracklets -> the query_IDX tracklets as gallery). Ranking rule "none" (no camera
filtering), as the published code scores HITSZ-VCM with its RegDB evaluator; ``camera_filter=True`` gives the
Market-style rule instead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetLayoutError
from ..protocols import EvalProtocol, PoolSelector, TrialSpec
from ..sample import INFRARED, VISIBLE, ReIDSample
from ._common import ReaderBase, read_lines, require_both_modalities, require_dir, require_file, scan_files
from .integrity import IdentitySource, identity_leaks
from .problems import DataProblem, error, warning

_NAME = re.compile(r"^(\d+)M(\d)D(\d+)T(\d+)F(.+)$")
_MODALITY = {1: INFRARED, 2: VISIBLE}
_MODALITY_FOLDER = {1: "ir", 2: "rgb"}
TRACKLET_FEATURES: tuple[str, ...] = ("frame", "mean")


@dataclass(frozen=True, slots=True)
class _FrameName:
    relpath: str
    pid: int
    modality_code: int
    cam: int


@dataclass(frozen=True, slots=True)
class _Track:
    row: int
    line: int
    modality_code: int
    start: int
    end: int
    pid: int
    cam: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class HITSZVCM(ReaderBase):
    """HITSZ-VCM video dataset read frame-wise (train frames sampled per tracklet, test tracklets as items)."""

    name = "vcm"

    def __init__(self, root: str | Path, *, frames_per_tracklet: int = 3, min_tracklet_len: int = 12,
                 tracklet_feature: str = "frame", seed: int = 0, camera_filter: bool = False) -> None:
        """``camera_filter=False`` (published): rank with no camera filtering, as the published code scores HITSZ-VCM
        with its RegDB evaluator; True: the Market-style same-id-same-camera removal."""
        if tracklet_feature not in TRACKLET_FEATURES:
            raise ValueError(f"HITSZ-VCM tracklet_feature must be one of {TRACKLET_FEATURES}, got "
                             f"{tracklet_feature!r}")
        if frames_per_tracklet < 1 or min_tracklet_len < frames_per_tracklet:
            raise ValueError(f"HITSZ-VCM needs 1 <= frames_per_tracklet <= min_tracklet_len, got "
                             f"{frames_per_tracklet} and {min_tracklet_len}")
        self.frames_per_tracklet, self.min_tracklet_len = frames_per_tracklet, min_tracklet_len
        self.tracklet_feature, self.seed = tracklet_feature, seed
        self.camera_filter = camera_filter
        base = require_dir("HITSZ-VCM", Path(root).expanduser().resolve(), "the HITSZ-VCM dataset root")
        self.root = str(base)
        self.notes: list[str] = []
        self._num_rows: dict[str, int] = {}
        self._pids: dict[str, tuple[Path, list[_Track]]] = {}
        self.problems: list[DataProblem] = []
        info = require_dir("HITSZ-VCM", base / "info", "info/{train,test}_name.txt, info/track_*_info.txt, "
                                                        "info/query_IDX.txt")
        for folder in ("Train", "Test"):
            require_dir("HITSZ-VCM", base / folder, f"{folder}/<pid:04d>/{{rgb,ir}}/D<cam>/<frame>.jpg frames")
        train_tracks, train_names = self._read_split(base, info, "train", "Train")
        test_tracks, test_names = self._read_split(base, info, "test", "Test")
        self._check_leaks(info)
        self.query_rows = self._read_query_rows(info, test_tracks)
        self._finish_problems()
        self.train = self._train_samples(base, train_tracks, train_names)
        self.test_pool = self._test_samples(base, test_tracks, test_names)
        require_both_modalities("HITSZ-VCM", info / "track_train_info.txt", "training", self.train)
        require_both_modalities("HITSZ-VCM", info / "track_test_info.txt", "test", self.test_pool)
        self._set_paper_split()

    # ----------------------------------------------------------------------------------------------- parsing
    def _read_split(self, base: Path, info: Path, split: str, folder: str) -> tuple[list[_Track], list[_FrameName]]:
        name_path = require_file("HITSZ-VCM", info / f"{split}_name.txt", "one frame name per line, e.g. "
                                 "'0001M2D3T1F1.jpg'")
        names = []
        for number, line in read_lines("HITSZ-VCM", name_path):
            match = _NAME.match(line)
            if match is None or int(match.group(2)) not in _MODALITY:
                raise DatasetLayoutError("HITSZ-VCM", name_path, f"expected a frame name '<pid>M<1|2>D<cam>T<tracklet>"
                                         f"F<frame>', got {line!r}", line=number)
            pid_text, modality_text, cam_text, _, frame = match.groups()
            code = int(modality_text)
            names.append((number, _FrameName(relpath=f"{folder}/{pid_text}/{_MODALITY_FOLDER[code]}/D{cam_text}/"
                                             f"{frame}", pid=int(pid_text), modality_code=code, cam=int(cam_text))))
        track_path = require_file("HITSZ-VCM", info / f"track_{split}_info.txt", "rows 'modality start end pid cam'")
        tracks = []
        for row, (number, line) in enumerate(read_lines("HITSZ-VCM", track_path)):
            try:
                modality, start, end, pid, cam = (int(v) for v in line.split())
            except ValueError:
                raise DatasetLayoutError("HITSZ-VCM", track_path, f"expected five integers 'modality start end pid "
                                         f"cam', got {line!r}", line=number) from None
            if modality not in _MODALITY or not 1 <= start <= end <= len(names):
                raise DatasetLayoutError("HITSZ-VCM", track_path, f"expected modality 1|2 and 1 <= start <= end <= "
                                         f"{len(names)} (frames in {name_path.name}), got {line!r}", line=number)
            tracks.append(_Track(row=row, line=number, modality_code=modality, start=start, end=end, pid=pid,
                                 cam=cam))
        if not tracks:
            raise DatasetLayoutError("HITSZ-VCM", track_path, "no tracklet rows: expected 'modality start end pid cam'")
        self._num_rows[split] = len(tracks)
        self._check_rows(track_path, tracks)
        self._pids[split] = (track_path, tracks)
        kept = [t for t in tracks if t.length >= self.min_tracklet_len]
        self.notes.append(f"{track_path.name}: skipped {len(tracks) - len(kept)} of {len(tracks)} tracklets "
                          f"shorter than min_tracklet_len={self.min_tracklet_len}")
        self._check_frames(base, folder, name_path, track_path, kept, names)
        return kept, [name for _, name in names]

    def _check_rows(self, track_path: Path, tracks: list[_Track]) -> None:
        """Each frame belongs to one tracklet: a row repeating or overlapping an earlier row's frames is an error."""
        ordered = sorted(tracks, key=lambda t: (t.start, t.row))
        reach: _Track | None = None  # the earlier row reaching furthest
        for track in ordered:
            if reach is not None and track.start <= reach.end:
                kind = "duplicated tracklet row" if (track.start, track.end) == (reach.start, reach.end) else \
                    "overlapping tracklet rows"
                self.problems.append(error("HITSZ-VCM", track_path, f"{kind}: frames {track.start}..{track.end} of "
                                           f"this row are also in row {reach.row + 1} (line {reach.line}, frames "
                                           f"{reach.start}..{reach.end}); expected each frame in one tracklet",
                                           line=track.line))
            if reach is None or track.end > reach.end:
                reach = track

    def _check_leaks(self, info: Path) -> None:
        """A test tracklet's identity must not be a training identity."""
        train_path, train_tracks = self._pids["train"]
        train: dict[int, IdentitySource] = {}
        for track in train_tracks:
            train.setdefault(track.pid, (train_path, track.line))
        test_path, test_tracks = self._pids["test"]
        self.problems += identity_leaks("HITSZ-VCM", train, test_path, ((t.pid, t.line) for t in test_tracks))

    def _check_frames(self, base: Path, folder: str, name_path: Path, track_path: Path, tracks: list[_Track],
                      names: list[tuple[int, _FrameName]]) -> None:
        """Every frame of a kept tracklet must agree with its row (pid, modality; camera: a warning) and exist."""
        listing = scan_files(base, folder)
        missing = 0
        other_camera: list[tuple[int, _Track, _FrameName]] = []
        for track in tracks:
            mismatch = False
            for number, frame in names[track.start - 1:track.end]:
                if not mismatch and (frame.pid != track.pid or frame.modality_code != track.modality_code):
                    mismatch = True  # one error per row
                    self.problems.append(error("HITSZ-VCM", name_path, f"frame of pid {frame.pid} modality "
                                               f"{frame.modality_code} inside tracklet row {track.row + 1} of "
                                               f"{track_path.name} (pid {track.pid}, modality "
                                               f"{track.modality_code})", line=number))
                if frame.cam != track.cam:
                    other_camera.append((number, track, frame))
                if frame.relpath in listing.broken:
                    self.problems.append(error("HITSZ-VCM", name_path, f"frame resolves to {frame.relpath!r}, a "
                                               f"{listing.broken[frame.relpath]}", line=number))
                elif frame.relpath not in listing.files:
                    if missing == 0:
                        first = (number, frame.relpath)
                    missing += 1
        if missing:
            self.problems.append(error("HITSZ-VCM", name_path, f"frame resolves to {first[1]!r}, which does not exist "
                                       f"under the dataset root ({missing} frame(s) of kept tracklets missing)",
                                       line=first[0]))
        if other_camera:
            number, track, frame = other_camera[0]
            self.problems.append(warning("HITSZ-VCM", name_path, f"frame of camera D{frame.cam} inside tracklet row "
                                         f"{track.row + 1} of {track_path.name} (camera {track.cam}); "
                                         f"{len(other_camera)} frame(s) in all disagree with their row, whose camera "
                                         "is used", line=number))

    def _read_query_rows(self, info: Path, test_tracks: list[_Track]) -> frozenset[int]:
        """0-based test-info rows of the query tracklets (rows of skipped short tracklets are kept but unused)."""
        path = require_file("HITSZ-VCM", info / "query_IDX.txt", "1-based row numbers of the query tracklets")
        track_path = info / "track_test_info.txt"
        modality_of = {t.row: t.modality_code for t in test_tracks}
        num_rows = self._num_rows["test"]
        rows: set[int] = set()
        for number, line in read_lines("HITSZ-VCM", path):
            for token in line.split():
                try:
                    row = int(token)
                except ValueError:
                    raise DatasetLayoutError("HITSZ-VCM", path, f"expected integer row numbers, got {token!r}",
                                             line=number) from None
                if not 1 <= row <= num_rows:
                    raise DatasetLayoutError("HITSZ-VCM", path, f"row {row} is outside 1..{num_rows} (rows of "
                                             f"{track_path.name})", line=number)
                if modality_of.get(row - 1, 1) != 1:
                    raise DatasetLayoutError("HITSZ-VCM", path, f"row {row} of {track_path.name} is a visible "
                                             "tracklet; expected infrared query tracklets", line=number)
                rows.add(row - 1)
        kept_queries = rows & set(modality_of)
        if not kept_queries:
            raise DatasetLayoutError("HITSZ-VCM", path, f"no query tracklet of at least {self.min_tracklet_len} "
                                     "frames; expected query rows")
        self.notes.append(f"query_IDX.txt: {len(kept_queries)} of {len(rows)} query tracklets kept (>= "
                          f"{self.min_tracklet_len} frames)")
        return frozenset(rows)

    # ----------------------------------------------------------------------------------------------- samples
    def _sample(self, base: Path, track: _Track, frame: _FrameName) -> ReIDSample:
        return ReIDSample(path=str(base / frame.relpath), pid=track.pid, camid=track.cam,
                          modality=_MODALITY[track.modality_code], tracklet=track.row)

    def _train_samples(self, base: Path, tracks: list[_Track], names: list[_FrameName]) -> list[ReIDSample]:
        rng = np.random.default_rng(self.seed)
        samples = []
        for track in tracks:
            picks = np.sort(rng.choice(track.length, size=self.frames_per_tracklet, replace=False))
            samples.extend(self._sample(base, track, names[track.start - 1 + int(i)]) for i in picks)
        return samples

    def _test_samples(self, base: Path, tracks: list[_Track], names: list[_FrameName]) -> list[ReIDSample]:
        if self.tracklet_feature == "frame":
            return [self._sample(base, t, names[t.start - 1 + t.length // 2]) for t in tracks]
        return [self._sample(base, t, frame) for t in tracks for frame in names[t.start - 1:t.end]]

    # --------------------------------------------------------------------------------------------- protocol
    def protocol(self, kind: str = "paper") -> EvalProtocol:
        """paper: query_IDX (infrared) -> other visible tracklets; full: plus visible -> query_IDX tracklets."""
        self._check_protocol_kind(kind)
        group = self.tracklet_feature == "mean"
        queries = PoolSelector(tracklets=self.query_rows)
        others = PoolSelector(modality=VISIBLE, tracklets=self.query_rows, exclude_tracklets=True)
        rule = "market" if self.camera_filter else "none"
        specs = [TrialSpec(name="ir2vis/trial0", rule=rule, query=queries, gallery=others)]
        if kind == "full":
            specs.append(TrialSpec(name="vis2ir/trial0", rule=rule, query=others, gallery=queries))
        return EvalProtocol(name=kind, specs=specs, group_by_tracklet=group)
