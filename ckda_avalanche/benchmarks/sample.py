"""The one record every reader, stream and metric shares."""
from __future__ import annotations

from dataclasses import dataclass

VISIBLE: int = 0
"""Modality code of visible (RGB) images."""
INFRARED: int = 1
"""Modality code of infrared (thermal or near-infrared) images."""


@dataclass(frozen=True, slots=True)
class ReIDSample:
    """One image of a VI-ReID dataset, as read from its official layout."""

    path: str
    """Absolute path of the image file."""
    pid: int
    """Identity as the dataset names it (not yet remapped to contiguous labels)."""
    camid: int
    """Camera id as the dataset names it (1-based where the dataset is)."""
    modality: int
    """0 = visible, 1 = infrared."""
    tracklet: int = -1
    """HITSZ-VCM tracklet id (0-based row of the track-info file); -1 for image datasets."""
