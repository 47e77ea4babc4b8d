"""ReIDLoader: batches equal the per-item pipeline where it is deterministic, the training batches do not depend on
workers or the cache, the minibatch layout is kept, and the worker count follows the image source."""
import numpy as np
import pytest
import torch
from avalanche.benchmarks.utils import concat_datasets
from PIL import Image

from ckda_avalanche.benchmarks import batch_loader
from ckda_avalanche.benchmarks.batch_loader import (
    DeferredImage,
    PendingBatch,
    ReIDCollate,
    deferring,
    make_reid_loader,
    resolve_num_workers,
)
from ckda_avalanche.benchmarks.reid_dataset import make_reid_dataset
from ckda_avalanche.benchmarks.sample import INFRARED, VISIBLE, ReIDSample
from ckda_avalanche.benchmarks.sampler import make_identity_batch_loader
from ckda_avalanche.benchmarks.transforms import AugmentConfig, build_eval_transform, build_train_transform

SIZE = (32, 16)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader_images")
    rng = np.random.default_rng(0)
    out = []
    for pid in range(4):
        for modality in (VISIBLE, INFRARED):
            for k in range(3):
                path = root / f"{pid}_{modality}_{k}.png"
                Image.fromarray(rng.integers(0, 256, size=(40, 20, 3), dtype=np.uint8)).save(path)
                out.append(ReIDSample(path=str(path), pid=pid, camid=1 + modality, modality=modality))
    return out


def _dataset(samples, *, cache="auto", train=None, group="train", modalities=None):
    return make_reid_dataset(samples, labels=[10 + s.pid for s in samples], dataset="SYSU-MM01",
                             train_transform=train or build_train_transform(SIZE),
                             eval_transform=build_eval_transform(SIZE), initial_group=group, modalities=modalities,
                             cache=cache)


def _per_item(dataset, indices):
    """The per-item path: index the dataset one item at a time (per-image transforms) and stack."""
    items = [dataset[i] for i in indices]
    fields = [torch.tensor([item[k] for item in items]) for k in (1, 2, 3, 4)]
    return [torch.stack([item[0] for item in items]), *fields]


@pytest.mark.parametrize("cache", ["memory", "off"])
def test_eval_batches_equal_the_per_item_pipeline_and_keep_the_layout(samples, cache):
    dataset = _dataset(samples, cache=cache, group="eval")
    batches = list(make_reid_loader(dataset, batch_size=5, num_workers=0))
    assert [len(b[0]) for b in batches] == [5, 5, 5, 5, 4]
    got = [torch.cat(column) for column in zip(*batches)]
    expected = _per_item(dataset, range(len(samples)))
    assert len(got) == 5 and got[0].dtype == torch.float32 and got[0].shape == (24, 3, *SIZE)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    assert got[4].tolist() == [0] * 24  # task label last
    assert not deferring()
    assert torch.is_tensor(dataset[0][0])  # outside the loader items are transformed one by one


def test_eval_loader_leaves_the_global_random_stream_alone(samples):
    dataset = _dataset(samples, group="eval")
    torch.manual_seed(7)
    before = torch.get_rng_state()
    for _ in make_reid_loader(dataset, batch_size=4, num_workers=0):
        pass
    assert torch.equal(before, torch.get_rng_state())


def _train_batches(samples, *, cache, workers, seed=0):
    loader = make_identity_batch_loader(_dataset(samples, cache=cache), num_identities=2, num_instances=2, seed=3,
                                        batches_per_epoch=4, num_workers=workers)
    torch.manual_seed(seed)
    return [b for _ in range(2) for b in loader], loader


def test_training_batches_do_not_depend_on_workers_or_the_cache(samples):
    reference, loader = _train_batches(samples, cache="memory", workers=0)
    assert loader.num_workers == 0
    for cache, workers in (("off", 0), ("off", 1), ("memory", 2)):
        batches, loader = _train_batches(samples, cache=cache, workers=workers)
        assert loader.num_workers == workers
        assert len(batches) == len(reference) == 8
        for a, b in zip(batches, reference):
            for x, y in zip(a, b):
                assert torch.equal(x, y)
    other, _ = _train_batches(samples, cache="memory", workers=0, seed=1)
    assert not torch.equal(other[0][0], reference[0][0])  # the augmentation is random
    assert torch.equal(other[0][1], reference[0][1])  # the sampler has its own seed


def test_training_batches_are_the_batched_augmentation_of_the_resized_images(samples):
    dataset = _dataset(samples)
    loader = make_identity_batch_loader(dataset, num_identities=2, num_instances=2, seed=1, num_workers=0)
    indices = next(iter(loader.batch_sampler))
    loader.batch_sampler.set_epoch(0)
    torch.manual_seed(4)
    images, pids, camids, modality, task = next(iter(loader))
    resized = torch.stack([build_eval_transform(SIZE).common_pre(Image.open(samples[i].path).convert("RGB"))
                           for i in indices]).as_subclass(torch.Tensor)
    torch.manual_seed(4)
    expected = build_train_transform(SIZE).batched(resized, torch.tensor([samples[i].modality for i in indices]))
    assert torch.equal(images, expected)
    assert modality.tolist() == [VISIBLE] * 4 + [INFRARED] * 4 and task.tolist() == [0] * 8


def test_the_transform_gets_the_fed_modality(samples):
    """LLCM quirk (b) feeds the opposite modality flag; the infrared-only augmentation must follow the fed flag."""
    strong_blur = dict(blur_kernel=5, blur_sigma=(2.0, 3.0), blur_reference_height=None)
    only_ir = build_train_transform(SIZE, config=AugmentConfig(flip_p=0, erase_p=0, infrared_aug_p=1.0, **strong_blur))
    flipped = [1 - s.modality for s in samples]
    dataset = _dataset(samples, train=only_ir, modalities=flipped)
    images, _, _, fed, _ = next(iter(make_reid_loader(dataset, batch_size=len(samples), num_workers=0)))
    assert fed.tolist() == flipped
    plain = _per_item(_dataset(samples, group="eval"), range(len(samples)))[0]
    changed = [not torch.equal(images[i], plain[i]) for i in range(len(samples))]
    assert [c for c, m in zip(changed, flipped) if m == VISIBLE] == [False] * 12
    assert [c for c, m in zip(changed, flipped) if m == INFRARED] == [True] * 12


def test_batches_mixing_own_and_custom_transforms(samples):
    ours = _dataset(samples[:6], group="eval")
    custom = make_reid_dataset(samples[6:12], labels=[0] * 6, dataset="x", initial_group="eval",
                               train_transform=lambda img: img, eval_transform=lambda img: torch.zeros(3, *SIZE))
    mixed = concat_datasets([ours, custom])
    images = next(iter(make_reid_loader(mixed, batch_size=12, num_workers=0)))[0]
    assert torch.equal(images[:6], _per_item(ours, range(6))[0])
    assert torch.equal(images[6:], torch.zeros(6, 3, *SIZE))


def test_collate_groups_rows_by_transform():
    eval_tf, train_tf = build_eval_transform(SIZE), build_train_transform(SIZE)
    image = torch.zeros(3, *SIZE, dtype=torch.uint8)
    items = [(DeferredImage(image, 0, t), 1, 2, 0) for t in (eval_tf, train_tf, eval_tf)]
    batch = ReIDCollate()(items)
    assert isinstance(batch[0], PendingBatch) and [t.tolist() for t in batch[1:]] == [[1] * 3, [2] * 3, [0] * 3]
    groups = {type(fn).__name__: rows.tolist() for fn, rows in batch[0].groups}
    assert groups == {"BatchEvalTransform": [0, 2], "BatchTrainAugment": [1]}
    out = batch[0].materialise()
    assert torch.equal(out[0], eval_tf(image, 0)) and torch.equal(out[2], out[0])
    with pytest.raises(ValueError, match="different sizes"):
        ReIDCollate()([(DeferredImage(image, 0, eval_tf), 0), (DeferredImage(image[:, :8], 0, eval_tf), 0)])


def test_worker_count_follows_the_image_source(samples, monkeypatch):
    assert resolve_num_workers("auto", _dataset(samples, cache="memory")) == 0
    monkeypatch.setattr(batch_loader.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert resolve_num_workers("auto", _dataset(samples, cache="off")) == 8
    monkeypatch.setattr(batch_loader.os, "sched_getaffinity", lambda pid: {0, 1})
    assert resolve_num_workers("auto", _dataset(samples, cache="off")) == 1
    monkeypatch.setattr(batch_loader.os, "sched_getaffinity", lambda pid: {0})
    assert resolve_num_workers("auto", _dataset(samples, cache="off")) == 1
    assert resolve_num_workers(3, _dataset(samples)) == 3
    for bad in (-1, "two", 1.5, True):
        with pytest.raises(ValueError, match="num_workers"):
            resolve_num_workers(bad, _dataset(samples))
    with pytest.raises(ValueError, match="exactly one"):
        make_reid_loader(_dataset(samples), num_workers=0)
