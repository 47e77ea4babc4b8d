"""Decoding one image file to 8-bit RGB, for training, evaluation and ``ckda data check --deep`` alike.

Conversion policy (every mode Pillow can open):

- 8-bit modes (``1``, ``L``, ``P``, ``RGB``, ``CMYK``, ``YCbCr``, ``LA``, ``RGBA`` ...) go through Pillow's
  ``convert("RGB")``; single-channel infrared is replicated to 3 channels, an alpha channel is dropped (the deep
  check warns when an image is partly transparent, as the hidden colours then become visible).
- 16-bit greyscale (``I;16*``, and ``I`` with every value in 0..65535) is scaled linearly to 8 bits:
  ``v8 = round(v16 * 255 / 65535)`` (= ``round(v16 / 257)``: 0 -> 0, 65535 -> 255, order kept, nothing clipped).
  Pillow's own ``convert`` clips instead, which turns a typical 16-bit infrared frame almost entirely white, so it is
  never used for these modes. A fixed scale (rather than a per-image stretch) keeps the relative brightness of the
  frames of a camera, as an 8-bit export by the camera would.
- The fixed scale loses information when a file uses only a small part of the 16-bit range (e.g. 12-bit or 8-bit
  sensor values stored in a 16-bit PNG). If the scaled image keeps fewer than `MIN_GREY_LEVELS` grey levels while
  the file has at least that many distinct values, an `ImageConversionWarning` is issued (once per dataset at run
  time; per file in the deep check). If it keeps at most `FLAT_GREY_LEVELS` while the file has more distinct
  values (typically 8-bit values 0..255 in a 16-bit file, which would come out black), nothing of the image
  survives: that is an `ImageDecodeError`, never a silently black image. Convert such files yourself with a
  stretch suited to the camera.
- 32-bit integer images outside 0..65535 and floating-point images (``F``) have no defined 8-bit scale: errors.
"""
from __future__ import annotations

import errno
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetLayoutError

SIXTEEN_BIT_MODES: frozenset[str] = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
"""Pillow modes of 16-bit greyscale images."""
MIN_GREY_LEVELS: int = 16
"""Fewer grey levels than this after the 16-bit -> 8-bit scaling (from a file with at least as many distinct values)
counts as losing information."""
FLAT_GREY_LEVELS: int = 2
"""At most this many grey levels after the 16-bit -> 8-bit scaling (from a file with more distinct values) leaves no
usable image: an error."""
ALPHA_MODES: frozenset[str] = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
"""Pillow modes with an alpha channel."""


class ImageConversionWarning(UserWarning):
    """An image was converted to 8-bit RGB with a visible loss of information (see the module docstring)."""


class ImageDecodeError(DatasetLayoutError):
    """An image file is missing, unreadable, not an image, truncated, or cannot be converted to 8-bit RGB.

    ``ImageDecodeError(dataset, path, message)`` names the file. A PyTorch DataLoader worker re-raises exceptions
    in the main process as ``type(text)``; that one-argument form is accepted and keeps only the original message
    (the last ``[module.]ImageDecodeError: ...`` line of the worker's traceback), so the error still reads as one line.
    """

    def __init__(self, dataset: str, path: str | Path | None = None, message: str | None = None, *,
                 line: int | None = None) -> None:
        if path is None and message is None:
            text = dataset
            name = f"{type(self).__name__}: "
            originals = [row.split(name, 1)[1] for row in text.splitlines()
                         if row.startswith(name) or (f".{name}" in row and not row.startswith(" "))]
            self.reason = originals[-1] if originals else text
            ValueError.__init__(self, self.reason)
            self.dataset, self.path, self.line = "", None, None
            return
        super().__init__(dataset, path, "" if message is None else message, line=line)
        self.reason = message

    def with_hint(self, hint: str) -> ImageDecodeError:
        """The same error with ``"; <hint>"`` appended to the message."""
        if self.path is None:
            return type(self)(f"{self.reason}; {hint}")
        return type(self)(self.dataset, self.path, f"{self.reason}; {hint}", line=self.line)


class OversizeImageError(ValueError):
    """An image over Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``): refused, not decoded."""


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An image decoded to 8-bit RGB, with what the file held."""

    rgb: Image.Image
    """The 8-bit RGB image the models see."""
    mode: str
    """Pillow mode of the file (``"RGB"``, ``"L"``, ``"I;16"`` ...)."""
    bits: int
    """Bits per channel of the file (8, 16 or 32; 1 for bilevel)."""
    size: tuple[int, int]
    """(width, height)."""
    loss: str | None
    """Why the conversion lost information (an `ImageConversionWarning`'s text), else None."""
    transparent: float
    """Share of pixels that are not fully opaque (0.0 without an alpha channel)."""


def _bits(mode: str) -> int:
    if mode == "1":
        return 1
    if mode in SIXTEEN_BIT_MODES:
        return 16
    if mode in ("I", "F"):
        return 32
    return 8


def scale_16_to_8(values: np.ndarray) -> np.ndarray:
    """``round(v * 255 / 65535)`` of 16-bit values (given as any integer array within 0..65535), as uint8."""
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _sixteen_bit_to_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    values = np.asarray(image)
    low, high = int(values.min()), int(values.max())
    if low < 0 or high > 65535:
        raise ValueError(f"{image.mode} image with values {low}..{high}: no defined conversion to 8 bits; expected "
                         "8-bit or 16-bit (0..65535) pixels")
    scaled = scale_16_to_8(values)
    levels_in = int(np.count_nonzero(np.bincount(values.ravel().astype(np.int64), minlength=1)))
    levels_out = int(np.count_nonzero(np.bincount(scaled.ravel(), minlength=1)))
    description = (f"16-bit image with values {low}..{high} only ({levels_in} distinct): scaling to 8 bits "
                   f"(value * 255 / 65535)")
    if levels_out <= FLAT_GREY_LEVELS < levels_in:
        raise ValueError(f"{description} leaves a flat image ({levels_out} grey level(s)); convert it to 8 bits "
                         "with a stretch suited to the camera")
    loss = None
    if levels_out < MIN_GREY_LEVELS <= levels_in:
        loss = f"{description} leaves {levels_out} grey levels; convert it with a stretch suited to the camera"
    return Image.fromarray(scaled, mode="L").convert("RGB"), loss


def _transparent_share(image: Image.Image) -> float:
    if image.mode not in ALPHA_MODES and not (image.mode == "P" and "transparency" in image.info):
        return 0.0
    alpha = np.asarray(image.convert("RGBA").getchannel("A"))
    return float(np.mean(alpha < 255))


def decode_image(path: str | Path) -> DecodedImage:
    """Decode ``path`` fully and convert it to 8-bit RGB by the module's policy.

    Raises ``FileNotFoundError`` when the file is absent, ``OSError`` / ``UnidentifiedImageError`` when it cannot
    be read or decoded (empty, truncated, symlink loop, not an image), ``ValueError`` when its pixels have no
    8-bit conversion (see the module docstring) and `OversizeImageError` (a ``ValueError``) when it has more pixels
    than Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, 89,478,485 by default; such a file is
    never decoded).
    """
    try:
        with Image.open(path) as image:
            image.load()
            return _converted(image)
    except Image.DecompressionBombError as error:  # Pillow refuses it before decoding; name it like any failure
        raise OversizeImageError(f"{error} (Pillow's decompression-bomb limit, Image.MAX_IMAGE_PIXELS = "
                                 f"{Image.MAX_IMAGE_PIXELS} pixels); resize the image or remove it") from None


def _converted(image: Image.Image) -> DecodedImage:
    mode, size = image.mode, image.size
    if mode in SIXTEEN_BIT_MODES or mode == "I":
        rgb, loss = _sixteen_bit_to_rgb(image)
    elif mode == "F":
        raise ValueError("32-bit floating-point image: no defined conversion to 8 bits; expected 8-bit or "
                         "16-bit pixels")
    else:
        rgb, loss = image.convert("RGB"), None
    return DecodedImage(rgb=rgb, mode=mode, bits=_bits(mode), size=size, loss=loss,
                        transparent=_transparent_share(image))


def describe_decode_failure(path: str | Path, error: BaseException) -> str:
    """A one-line reason for a failed `decode_image` (empty file, symlink loop, truncated, ...)."""
    if isinstance(error, FileNotFoundError):
        return "image file is missing" + (" (dangling symlink)" if os.path.islink(path) else "")
    if isinstance(error, OSError) and error.errno == errno.ELOOP:
        return "cannot open image: symlink loop"
    try:
        if os.path.getsize(path) == 0:
            return "cannot decode image: the file is empty (0 bytes)"
    except OSError:
        pass
    if isinstance(error, OversizeImageError):
        return f"image too large to decode: {error}"
    if isinstance(error, ValueError) and not isinstance(error, UnidentifiedImageError):
        return f"cannot convert image to 8-bit RGB: {error}"
    if "truncated" in str(error).lower():
        return f"cannot decode image: the file is truncated ({error})"
    return f"cannot decode image ({error})"


_warned_datasets: set[str] = set()
_warned_lock = threading.Lock()


def load_image(path: str, *, dataset: str) -> Image.Image:
    """Open ``path`` as an 8-bit RGB PIL image; raise `ImageDecodeError` naming the file when it cannot be used.

    A lossy 16-bit conversion issues one `ImageConversionWarning` per dataset (naming the first file);
    ``ckda data check ROOT --deep`` lists every such file.
    """
    try:
        decoded = decode_image(path)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ImageDecodeError(dataset, path, describe_decode_failure(path, error)) from error
    if decoded.loss is not None:
        with _warned_lock:
            first = dataset not in _warned_datasets
            _warned_datasets.add(dataset)
        if first:
            warnings.warn(f"{dataset}: {path}: {decoded.loss} (further such images of {dataset} are not reported "
                          "here; 'ckda data check ROOT --deep' lists them all)", ImageConversionWarning, stacklevel=2)
    return decoded.rgb
