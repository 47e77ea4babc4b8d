"""The on-disk decoded-image store: a complete memory cache is saved once and a later cache of the same files loads
it without decoding, byte for byte what decoding gives (expected images come from PIL + the per-image torchvision
transforms, not from the store); rewritten files, other decoders, broken or foreign store files and unwritable
folders decode again, with a warning where something was ignored."""
import gc
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ckda_avalanche.benchmarks import decoded_store
from ckda_avalanche.benchmarks.decoded_store import DecodedStoreWarning, default_store_dir, store_for
from ckda_avalanche.benchmarks.file_integrity import content_digest
from ckda_avalanche.benchmarks.image_store import MemoryImageCache, shared_memory_cache
from ckda_avalanche.benchmarks.transforms import build_eval_transform

SIZE = (32, 16)


def _write(folder, n=5, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n):
        path = folder / f"img{k}.png"
        Image.fromarray(rng.integers(0, 256, size=(40, 20, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _reference(path):
    return build_eval_transform(SIZE).common_pre(Image.open(path).convert("RGB")).as_subclass(torch.Tensor)


def _signatures(paths):
    return [(p, content_digest(p)) for p in paths]


def _cache(paths, folder):
    cache = MemoryImageCache(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic")
    return cache.attach_store(store_for(_signatures(paths), dataset="RegDB", img_size=SIZE,
                                        interpolation="bicubic", folder=folder))


def test_a_complete_cache_is_saved_once_and_loaded_without_decoding(tmp_path):
    paths, store_dir = _write(tmp_path), tmp_path / "store"
    first = _cache(paths, store_dir)
    assert not store_dir.exists() and first.decodes == 0
    first.get(3)  # the first read decodes the whole list (a run need not read every image) and saves it
    assert first.decodes == 5 and all(first.filled)
    stored = list(store_dir.glob("*.pt"))
    assert len(stored) == 1 and stored[0].name.startswith("RegDB-32x16-bicubic-") and first.store is None
    second = _cache(paths, store_dir)
    assert second.decodes == 0 and all(second.filled)
    for k, path in enumerate(paths):
        assert torch.equal(second.get(k), _reference(path))
    assert second.decodes == 0 and not list(store_dir.glob(".tmp-*"))


def test_the_key_follows_files_resize_and_decoder_versions(tmp_path, monkeypatch):
    paths = _write(tmp_path)
    store = store_for(_signatures(paths), dataset="RegDB", img_size=SIZE, interpolation="bicubic", folder=tmp_path)
    same = store_for(_signatures(list(paths)), dataset="RegDB", img_size=SIZE, interpolation="bicubic",
                     folder=tmp_path)
    assert same.path == store.path and same.key == store.key and store.shape == (5, 3, 32, 16)
    others = [
        store_for(_signatures(paths), dataset="RegDB", img_size=(64, 32), interpolation="bicubic", folder=tmp_path),
        store_for(_signatures(paths), dataset="RegDB", img_size=SIZE, interpolation="bilinear", folder=tmp_path),
        store_for(_signatures(paths), dataset="SYSU-MM01", img_size=SIZE, interpolation="bicubic", folder=tmp_path),
        store_for(_signatures(paths[:4]), dataset="RegDB", img_size=SIZE, interpolation="bicubic", folder=tmp_path),
    ]
    Image.new("RGB", (20, 40), (9, 9, 9)).save(paths[2])  # rewritten
    others.append(store_for(_signatures(paths), dataset="RegDB", img_size=SIZE, interpolation="bicubic",
                            folder=tmp_path))
    monkeypatch.setattr(decoded_store, "STORE_VERSION", decoded_store.STORE_VERSION + 1)
    others.append(store_for(_signatures(paths), dataset="RegDB", img_size=SIZE,
                            interpolation="bicubic", folder=tmp_path))
    assert len({o.path for o in others} | {store.path}) == len(others) + 1
    missing = _signatures(paths)[:4] + [(str(tmp_path / "gone.png"), content_digest(tmp_path / "gone.png"))]
    assert store_for(missing, dataset="RegDB", img_size=SIZE, interpolation="bicubic", folder=tmp_path) is None


def test_a_rewritten_file_is_decoded_again(tmp_path):
    paths, store_dir = _write(tmp_path), tmp_path / "store"
    _cache(paths, store_dir).fill(threads=1)
    Image.new("RGB", (20, 40), (200, 10, 30)).save(paths[1])
    again = _cache(paths, store_dir)
    assert not any(again.filled)
    assert torch.equal(again.get(1), _reference(paths[1])) and again.decodes == 5


@pytest.mark.parametrize("damage", ["garbage", "foreign_key", "wrong_shape", "not_a_dict"])
def test_a_broken_or_foreign_store_file_warns_names_it_and_is_replaced(tmp_path, damage):
    paths, store_dir = _write(tmp_path), tmp_path / "store"
    _cache(paths, store_dir).fill(threads=1)
    (path,) = store_dir.glob("*.pt")
    key = torch.load(path, weights_only=True)["key"]
    if damage == "garbage":
        path.write_bytes(b"not a torch file")
    elif damage == "foreign_key":
        torch.save({"key": key + " ", "images": torch.zeros(5, 3, 32, 16, dtype=torch.uint8)}, path)
    elif damage == "wrong_shape":
        torch.save({"key": key, "images": torch.zeros(4, 3, 32, 16, dtype=torch.uint8)}, path)
    else:
        torch.save(torch.zeros(5, 3, 32, 16, dtype=torch.uint8), path)
    with pytest.warns(DecodedStoreWarning, match=str(path)):
        cache = _cache(paths, store_dir)
    assert not any(cache.filled)
    cache.fill(threads=1)
    for k, image_path in enumerate(paths):
        assert torch.equal(cache.get(k), _reference(image_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _cache(paths, store_dir).decodes == 0  # rewritten, valid again


def test_size_limit_and_unwritable_folder_skip_the_store(tmp_path, monkeypatch):
    paths = _write(tmp_path)
    monkeypatch.setenv("CKDA_DECODED_CACHE_MAX", str(5 * 3 * 32 * 16 - 1))
    _cache(paths, tmp_path / "small").fill(threads=1)
    assert not (tmp_path / "small").exists()
    monkeypatch.setenv("CKDA_DECODED_CACHE_MAX", "lots")
    with pytest.raises(ValueError, match="CKDA_DECODED_CACHE_MAX.*'lots'"):
        _cache(paths, tmp_path / "bad").fill(threads=1)
    monkeypatch.delenv("CKDA_DECODED_CACHE_MAX")
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the store folder should be")
    with pytest.warns(DecodedStoreWarning, match="cannot be written"):
        cache = _cache(paths, blocker / "store")
        cache.fill(threads=1)
    assert all(cache.filled) and torch.equal(cache.get(4), _reference(paths[4]))


def test_store_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CKDA_DECODED_CACHE", "off")
    assert default_store_dir() is None
    assert store_for([("a.png", "0" * 32)], dataset="RegDB", img_size=SIZE, interpolation="bicubic") is None
    monkeypatch.setenv("CKDA_DECODED_CACHE", str(tmp_path / "mine"))
    assert default_store_dir() == tmp_path / "mine"
    monkeypatch.delenv("CKDA_DECODED_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_store_dir() == tmp_path / "xdg" / "ckda_avalanche" / "decoded"


def test_the_process_cache_of_a_later_process_loads_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CKDA_DECODED_CACHE", str(tmp_path / "store"))
    paths = _write(tmp_path)
    cache = shared_memory_cache(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic")
    cache.fill(threads=2)
    assert cache.decodes == 5 and len(list((tmp_path / "store").glob("*.pt"))) == 1
    del cache
    gc.collect()  # the process cache is gone, as in a new process
    loaded = shared_memory_cache(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic")
    assert loaded.decodes == 0 and all(loaded.filled)
    assert all(torch.equal(loaded.get(k), _reference(p)) for k, p in enumerate(paths))
