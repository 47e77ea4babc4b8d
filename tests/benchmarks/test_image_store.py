"""Image sources: the decode stage, the per-process memory cache (one decode per image), its size guard and the
cache options of make_reid_dataset. Expected images come from PIL + the per-image torchvision transforms."""
import gc

import numpy as np
import pytest
import torch
from avalanche.benchmarks.utils import concat_datasets
from PIL import Image

from ckda_avalanche.benchmarks import image_store
from ckda_avalanche.benchmarks.datasets.images import ImageDecodeError
from ckda_avalanche.benchmarks.image_store import (
    RESUME_HINT,
    CacheLimitError,
    FileImageSource,
    MemoryImageCache,
    decode_resized,
    shared_memory_cache,
)
from ckda_avalanche.benchmarks.reid_dataset import ReIDImageDataset, make_reid_dataset
from ckda_avalanche.benchmarks.sample import INFRARED, VISIBLE, ReIDSample
from ckda_avalanche.benchmarks.transforms import build_eval_transform, build_train_transform

SIZE = (32, 16)


def _write(tmp_path, n=6, shape=(40, 20), seed=0):
    rng = np.random.default_rng(seed)
    samples = []
    for k in range(n):
        path = tmp_path / f"img{seed}_{k}.png"
        Image.fromarray(rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)).save(path)
        samples.append(ReIDSample(path=str(path), pid=k // 2, camid=1, modality=(VISIBLE, INFRARED)[k % 2]))
    return samples


def _reference(path, size=SIZE):
    """The per-image pipeline's resize stage on the PIL image (uint8)."""
    return build_eval_transform(size).common_pre(Image.open(path).convert("RGB")).as_subclass(torch.Tensor)


def _dataset(samples, **kwargs):
    return make_reid_dataset(samples, labels=[s.pid for s in samples], dataset="RegDB",
                             train_transform=build_train_transform(SIZE), eval_transform=build_eval_transform(SIZE),
                             **kwargs)


def _base(dataset):
    """The ReIDImageDataset under an Avalanche dataset (walks Avalanche's flat-data tree)."""
    node = dataset._flat_data
    while not isinstance(node, ReIDImageDataset):
        node = node._datasets[0]
    return node


def test_decode_stage_equals_the_transforms_resize(tmp_path):
    for sample in _write(tmp_path, n=2):
        out = decode_resized(sample.path, dataset="RegDB", img_size=SIZE, interpolation="bicubic")
        assert type(out) is torch.Tensor and out.dtype == torch.uint8 and out.shape == (3, *SIZE)
        assert torch.equal(out, _reference(sample.path))


def test_memory_cache_decodes_each_image_once_and_hands_out_copies(tmp_path):
    samples = _write(tmp_path)
    cache = MemoryImageCache([s.path for s in samples], dataset="RegDB", img_size=SIZE, interpolation="bicubic")
    assert cache.images is None and cache.nbytes == 6 * 3 * 32 * 16
    first = cache.get(2)
    assert torch.equal(first, _reference(samples[2].path)) and cache.decodes == 1
    first.zero_()  # a copy: the cache is untouched
    assert torch.equal(cache.get(2), _reference(samples[2].path)) and cache.decodes == 1
    cache.fill(threads=2)
    assert cache.decodes == 6 and all(cache.filled)
    cache.fill()
    assert cache.decodes == 6
    for k, sample in enumerate(samples):
        assert torch.equal(cache.get(k), _reference(sample.path))


def test_decode_errors_name_the_file_with_the_resume_hint(tmp_path):
    samples = _write(tmp_path, n=3)
    with open(samples[1].path, "wb") as handle:
        handle.write(b"")
    paths = [s.path for s in samples]
    for source in (MemoryImageCache(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic"),
                   FileImageSource(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic")):
        source.get(0)
        with pytest.raises(ImageDecodeError) as error:
            source.get(1)
        assert error.value.path == samples[1].path and RESUME_HINT in str(error.value)
    with pytest.raises(ImageDecodeError, match="the file is empty"):
        MemoryImageCache(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic").fill(threads=1)


def test_shared_cache_is_one_per_files_and_size_and_follows_rewritten_files(tmp_path):
    samples = _write(tmp_path, n=2)
    paths = [s.path for s in samples]
    a = shared_memory_cache(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic")
    assert shared_memory_cache(list(paths), dataset="RegDB", img_size=SIZE, interpolation="bicubic") is a
    assert shared_memory_cache(paths, dataset="RegDB", img_size=(64, 32), interpolation="bicubic") is not a
    Image.new("RGB", (10, 30), (1, 2, 3)).save(paths[0])  # rewritten: other size
    assert shared_memory_cache(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic") is not a
    key_count = len(image_store._SHARED)
    del a
    gc.collect()
    assert len(image_store._SHARED) < key_count  # held weakly: freed with the last dataset using it


def test_train_eval_subset_concat_and_a_second_dataset_share_one_decode_per_image(tmp_path):
    samples = _write(tmp_path)
    data = _dataset(samples, cache="memory")
    cache = _base(data).source
    assert isinstance(cache, MemoryImageCache) and set(data.image_cached) == {True}
    again = _dataset(samples)  # default cache="auto": the same process-wide cache
    assert _base(again).source is cache
    views = [data, data.eval(), data.subset([1, 3]), concat_datasets([data.subset([0]), again]).eval()]
    for view in views:
        for i in range(len(view)):
            view[i]
    assert cache.decodes == len(samples)
    # per-item access applies the per-image transform to the cached (already resized) image
    expected = build_eval_transform(SIZE)(Image.open(samples[4].path).convert("RGB"), samples[4].modality)
    assert torch.equal(data.eval()[4][0], expected)


def test_size_guard_names_dataset_count_bytes_and_limit(tmp_path):
    samples = _write(tmp_path)
    needed = 6 * 3 * 32 * 16
    with pytest.raises(CacheLimitError) as error:
        _dataset(samples, cache="memory", cache_limit_bytes=needed - 1)
    message = str(error.value)
    for part in ("RegDB", "6 images", "32x16", f"{needed} bytes", f"{needed - 1} bytes", "cache='off'"):
        assert part in message
    auto = _dataset(samples, cache="auto", cache_limit_bytes=needed - 1)
    assert type(_base(auto).source) is FileImageSource and set(auto.image_cached) == {False}
    assert type(_base(_dataset(samples, cache="auto", cache_limit_bytes=needed)).source) is MemoryImageCache
    assert type(_base(_dataset(samples, cache="off")).source) is FileImageSource
    with pytest.raises(ValueError, match="cache: expected one of"):
        _dataset(samples, cache="disk")


def test_custom_transforms_keep_pil_images_and_refuse_the_memory_cache(tmp_path):
    samples = _write(tmp_path, n=2)
    custom = make_reid_dataset(samples, labels=[0, 0], dataset="RegDB", train_transform=lambda img: img,
                               eval_transform=build_eval_transform(SIZE))
    assert _base(custom).source is None and isinstance(custom[0][0], Image.Image)
    other_size = make_reid_dataset(samples, labels=[0, 0], dataset="RegDB", train_transform=build_train_transform(SIZE),
                                   eval_transform=build_eval_transform((64, 32)))
    assert _base(other_size).source is None
    with pytest.raises(ValueError, match="cache='memory' needs the package's transforms"):
        make_reid_dataset(samples, labels=[0, 0], dataset="RegDB", train_transform=lambda img: img,
                          eval_transform=lambda img: img, cache="memory")


def test_environment_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("CKDA_DATA_CACHE_LIMIT", "2G")
    assert image_store.default_cache_limit() == 2 * 1024**3
    monkeypatch.setenv("CKDA_DATA_CACHE_LIMIT", "1536")
    assert image_store.default_cache_limit() == 1536
    monkeypatch.setenv("CKDA_DATA_CACHE_LIMIT", "lots")
    with pytest.raises(ValueError, match="CKDA_DATA_CACHE_LIMIT"):
        image_store.default_cache_limit()
    monkeypatch.delenv("CKDA_DATA_CACHE_LIMIT")
    assert image_store.default_cache_limit() > 0
    monkeypatch.setenv("CKDA_DATA_CACHE", "off")
    assert type(_base(_dataset(_write(tmp_path, n=2))).source) is FileImageSource
    monkeypatch.setenv("CKDA_DATA_CACHE", "ram")
    with pytest.raises(ValueError, match="CKDA_DATA_CACHE"):
        image_store.default_cache_mode()
    assert image_store.format_bytes(1536) == "1.5 KiB" and image_store.format_bytes(3 * 1024**3) == "3.0 GiB"
