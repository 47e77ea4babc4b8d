"""Image decoding for training and the deep check: 16-bit scaling (never silent saturation), lossy conversions,
and files that cannot be decoded (empty, truncated, symlink loop, dangling symlink) named in one-line errors."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ckda_avalanche.benchmarks import DatasetLayoutError, ReIDSample
from ckda_avalanche.benchmarks.datasets import ImageConversionWarning, ImageDecodeError, load_image
from ckda_avalanche.benchmarks.datasets import images as images_module
from ckda_avalanche.benchmarks.reid_dataset import ReIDImageDataset


def _png16(path, values) -> None:
    Image.fromarray(np.asarray(values, dtype=np.uint16)).save(path, format="PNG")


def _reference_scale(v: int) -> int:
    """round(v * 255 / 65535) with round-half-up, written independently of the code under test."""
    exact = v * 255 / 65535
    return int(exact + 0.5)


@pytest.fixture(autouse=True)
def _fresh_warning_registry(monkeypatch):
    monkeypatch.setattr(images_module, "_warned_datasets", set())


def test_16bit_png_is_scaled_not_saturated(tmp_path):
    values = np.array([[0, 128, 129, 257, 385, 386], [1000, 32767, 32768, 65278, 65279, 65535]], dtype=np.uint16)
    path = tmp_path / "ir16.png"
    _png16(path, values)
    assert Image.open(path).mode == "I;16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a full-range image converts without a warning
        rgb = np.asarray(load_image(str(path), dataset="RegDB"))
    # by hand: v/257 rounded: 128 -> 0.498 -> 0, 129 -> 0.502 -> 1, 385 -> 1.498 -> 1, 386 -> 2,
    # 32767 -> 127.498 -> 127, 32768 -> 127.502 -> 128, 65278 -> 254, 65279 -> 254.0039 -> 254, 65535 -> 255
    expected = np.array([[0, 0, 1, 1, 1, 2], [4, 127, 128, 254, 254, 255]], dtype=np.uint8)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 6, 3)
    np.testing.assert_array_equal(rgb[..., 0], expected)
    np.testing.assert_array_equal(rgb[..., 0], np.vectorize(_reference_scale)(values))
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_full_range_16bit_infrared_keeps_its_histogram(tmp_path):
    """The issue's case: Pillow's own convert() turns a 16-bit ramp ~all white; the loader must not."""
    ramp = np.linspace(0, 65535, 64 * 32).reshape(64, 32)
    path = tmp_path / "ramp.png"
    _png16(path, ramp)
    assert (np.asarray(Image.open(path).convert("RGB")) == 255).mean() > 0.9  # what happened before
    rgb = np.asarray(load_image(str(path), dataset="RegDB"))[..., 0]
    assert (rgb == 255).mean() < 0.01
    assert abs(float(rgb.mean()) - 127.5) < 1.0


def test_low_range_16bit_warns_once_per_dataset_naming_the_file(tmp_path):
    rng = np.random.default_rng(0)
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    _png16(first, rng.integers(1000, 3000, size=(8, 4)))
    _png16(second, rng.integers(1000, 3000, size=(8, 4)))
    with pytest.warns(ImageConversionWarning, match=r"RegDB: .*a\.png: 16-bit image with values .* grey levels"):
        load_image(str(first), dataset="RegDB")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(str(second), dataset="RegDB")  # same dataset: already reported
    with pytest.warns(ImageConversionWarning, match="LLCM"):
        load_image(str(second), dataset="LLCM")


def test_8bit_values_in_16bit_file_is_an_error_not_a_black_image(tmp_path):
    path = tmp_path / "eight.png"
    _png16(path, np.arange(32).reshape(8, 4) * 8)  # 0..248: would scale to 0/1
    with pytest.raises(ImageDecodeError, match=r"RegDB: .*eight\.png: cannot convert image to 8-bit RGB: .*flat"):
        load_image(str(path), dataset="RegDB")


def test_float_and_out_of_range_int_images_are_errors(tmp_path):
    floats = tmp_path / "f.tiff"
    Image.fromarray(np.ones((8, 4), dtype=np.float32)).save(floats)
    with pytest.raises(ImageDecodeError, match=r"f\.tiff: .*floating-point"):
        load_image(str(floats), dataset="LLCM")
    wide = tmp_path / "i32.tiff"
    Image.fromarray(np.full((8, 4), 70000, dtype=np.int32)).save(wide)
    with pytest.raises(ImageDecodeError, match=r"i32\.tiff: .*70000\.\.70000"):
        load_image(str(wide), dataset="LLCM")


def _jpeg(path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(path, "JPEG")


def test_undecodable_files_name_the_file_and_the_cause(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.jpg"
    _jpeg(truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    loop = tmp_path / "loop.jpg"
    os.symlink("loop.jpg", loop)
    dangling = tmp_path / "dangling.jpg"
    os.symlink(tmp_path / "nowhere.jpg", dangling)
    cases = {empty: "the file is empty", truncated: "truncated", loop: "symlink loop", dangling: "dangling symlink"}
    for path, cause in cases.items():
        with pytest.raises(ImageDecodeError, match=cause) as error:
            load_image(str(path), dataset="SYSU-MM01")
        assert error.value.path == str(path) and str(error.value).startswith(f"SYSU-MM01: {path}: ")
        assert isinstance(error.value, DatasetLayoutError)


def _dataset(paths) -> ReIDImageDataset:
    samples = [ReIDSample(path=str(p), pid=i, camid=1, modality=0) for i, p in enumerate(paths)]
    return ReIDImageDataset(samples=samples, labels=list(range(len(samples))), dataset="RegDB")


@pytest.mark.parametrize("workers", [0, 1])
def test_training_image_that_cannot_be_decoded_stops_with_file_and_resume_hint(tmp_path, workers):
    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    _jpeg(good)
    bad.write_bytes(b"")
    dataset = _dataset([good, bad])
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=workers,
                                         collate_fn=lambda batch: batch)
    with pytest.raises(ImageDecodeError) as error:
        list(loader)
    message = str(error.value)
    assert "\n" not in message, "one line, also when re-raised from a DataLoader worker"
    assert f"{bad}: cannot decode image: the file is empty (0 bytes)" in message
    assert "--resume" in message and "ckda data check ROOT --deep" in message
