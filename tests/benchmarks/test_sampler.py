"""CrossModalityIdentitySampler invariants and the identity-batch DataLoader."""
import math
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from ckda_avalanche.benchmarks.reid_dataset import make_reid_dataset
from ckda_avalanche.benchmarks.sample import INFRARED, VISIBLE, ReIDSample
from ckda_avalanche.benchmarks.sampler import CrossModalityIdentitySampler, make_identity_batch_loader
from ckda_avalanche.benchmarks.transforms import build_eval_transform


def _layout(counts: dict[int, tuple[int, int]], seed: int = 0):
    """pids/modalities for ``{pid: (n_visible, n_infrared)}``, shuffled so indices are not grouped."""
    pids, mods = [], []
    for pid, (n_vis, n_ir) in counts.items():
        pids += [pid] * (n_vis + n_ir)
        mods += [VISIBLE] * n_vis + [INFRARED] * n_ir
    order = np.random.default_rng(seed).permutation(len(pids))
    return np.asarray(pids)[order], np.asarray(mods)[order]


COUNTS = {pid: (3 + pid % 4, 2 + pid % 5) for pid in range(100, 111)}  # 11 ids, 2..6 images per modality


def test_batches_are_p_ids_by_k_visible_then_same_ids_by_k_infrared():
    pids, mods = _layout(COUNTS)
    p, k = 4, 3
    sampler = CrossModalityIdentitySampler(pids=pids, modalities=mods, num_identities=p, num_instances=k)
    batches = list(sampler)
    assert len(batches) == len(sampler) == math.ceil(11 / p)
    for batch in batches:
        assert len(batch) == 2 * p * k == sampler.batch_size
        vis, ir = np.asarray(batch[: p * k]), np.asarray(batch[p * k:])
        assert (mods[vis] == VISIBLE).all() and (mods[ir] == INFRARED).all()
        assert np.array_equal(pids[vis], pids[ir])  # batch[j] and batch[P*K + j] share the identity
        blocks = pids[vis].reshape(p, k)
        assert (blocks == blocks[:, :1]).all()  # K consecutive images per identity
        assert len(set(blocks[:, 0])) == p  # P distinct identities
        for half in (vis, ir):
            for pid, idx in _by_pid(pids, half).items():
                available = COUNTS[pid][0 if half is vis else 1]
                if available >= k:
                    assert len(set(idx)) == k  # without replacement
                else:
                    assert set(idx) <= set(np.flatnonzero((pids == pid) & (mods == mods[half[0]])))


def _by_pid(pids, indices):
    out: dict[int, list[int]] = {}
    for i in indices:
        out.setdefault(int(pids[i]), []).append(int(i))
    return out


def test_identities_with_fewer_than_k_images_are_drawn_with_replacement():
    pids, mods = _layout({1: (1, 5), 2: (5, 2)})
    sampler = CrossModalityIdentitySampler(pids=pids, modalities=mods, num_identities=2, num_instances=4)
    (batch,) = list(sampler)
    vis = np.asarray(batch[:8])
    only_visible_of_1 = np.flatnonzero((pids == 1) & (mods == VISIBLE))
    assert Counter(vis.tolist())[int(only_visible_of_1[0])] == 4


def test_every_identity_is_used_each_epoch_and_last_batch_is_topped_up():
    pids, mods = _layout(COUNTS)
    sampler = CrossModalityIdentitySampler(pids=pids, modalities=mods, num_identities=4, num_instances=2)
    used = Counter()
    for batch in sampler:
        used.update(set(pids[batch].tolist()))
    assert set(used) == set(COUNTS)
    assert sum(used.values()) == len(sampler) * 4  # 12 identity slots for 11 identities: one repeats
    two_passes = CrossModalityIdentitySampler(pids=pids, modalities=mods, num_identities=5, num_instances=2,
                                              passes_per_epoch=2)
    assert len(two_passes) == 2 * math.ceil(11 / 5)
    used = Counter()
    for batch in two_passes:
        ids = pids[batch[:10]].reshape(5, 2)[:, 0].tolist()
        assert len(set(ids)) == 5  # identities of a batch stay distinct across pass boundaries
        used.update(ids)
    assert min(used.values()) >= 2 and sum(used.values()) == 6 * 5


def test_batches_per_epoch_fixes_the_epoch_length_whatever_the_identity_count():
    pids, mods = _layout(COUNTS)  # 11 identities
    short = CrossModalityIdentitySampler(pids=pids, modalities=mods, num_identities=4, num_instances=2,
                                         batches_per_epoch=2)
    batches = list(short)
    assert len(short) == 2 and len(batches) == 2
    full = CrossModalityIdentitySampler(pids=pids, modalities=mods, num_identities=4, num_instances=2)
    assert batches == list(full)[:2]  # the same random stream, cut short
    long = CrossModalityIdentitySampler(pids=pids, modalities=mods, num_identities=4, num_instances=2,
                                        batches_per_epoch=7)  # 3 batches a pass: two full passes and one batch
    used = Counter()
    batches = list(long)
    assert len(long) == 7 and len(batches) == 7
    for batch in batches:
        ids = pids[batch[:8]].reshape(4, 2)[:, 0].tolist()
        assert len(set(ids)) == 4
        used.update(ids)
    assert set(used) == set(COUNTS) and min(used.values()) >= 2


def test_num_identities_larger_than_dataset_uses_all_identities():
    pids, mods = _layout({1: (2, 2), 2: (2, 2), 3: (2, 2)})
    sampler = CrossModalityIdentitySampler(pids=pids, modalities=mods, num_identities=8, num_instances=2)
    assert sampler.identities_per_batch == 3 and len(sampler) == 1
    (batch,) = list(sampler)
    assert len(batch) == 12 and set(pids[batch]) == {1, 2, 3}


def test_seeded_determinism_and_epoch_progression():
    pids, mods = _layout(COUNTS)

    def make(seed):
        return CrossModalityIdentitySampler(pids=pids, modalities=mods, num_identities=4, num_instances=2, seed=seed)

    a, b = make(7), make(7)
    torch.manual_seed(0)
    first = list(a)
    torch.manual_seed(123)  # torch's global RNG plays no role
    assert first == list(b)
    second = list(a)
    assert second != first and a.epoch == 2
    a.set_epoch(0)
    assert list(a) == first
    a.set_epoch(1)
    assert list(a) == second
    assert list(make(8)) != first


def test_unpaired_identities_raise_with_their_ids():
    counts = dict(COUNTS)
    counts[900] = (3, 0)
    counts[901] = (0, 2)
    pids, mods = _layout(counts)
    with pytest.raises(ValueError, match=r"900 \(no infrared\).*901 \(no visible\)"):
        CrossModalityIdentitySampler(pids=pids, modalities=mods)
    sampler = CrossModalityIdentitySampler(pids=pids, modalities=mods, num_identities=4, num_instances=2,
                                           allow_unpaired=True)
    assert sampler.num_unpaired_identities == 2 and sampler.unpaired_identities == [900, 901]
    assert set(sampler.identities.tolist()) == set(COUNTS)
    for batch in sampler:
        assert not {900, 901} & set(pids[batch].tolist())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_identities": 0}, "num_identities"), ({"num_instances": 0}, "num_instances"),
     ({"passes_per_epoch": 0}, "passes_per_epoch"), ({"batches_per_epoch": 0}, "batches_per_epoch")],
)
def test_invalid_arguments(kwargs, message):
    pids, mods = _layout(COUNTS)
    with pytest.raises(ValueError, match=message):
        CrossModalityIdentitySampler(pids=pids, modalities=mods, **kwargs)


def test_invalid_modalities_and_lengths():
    with pytest.raises(ValueError, match="modalities"):
        CrossModalityIdentitySampler(pids=[1, 1], modalities=[0, 2])
    with pytest.raises(ValueError, match="length"):
        CrossModalityIdentitySampler(pids=[1, 1, 1], modalities=[0, 1])


def _image_dataset(tmp_path):
    samples, labels = [], []
    for pid in range(5):
        for modality in (VISIBLE, INFRARED):
            for j in range(3):
                path = tmp_path / f"{pid}_{modality}_{j}.png"
                Image.new("RGB", (8, 16), (pid * 40, modality * 200, j * 60)).save(path)
                samples.append(ReIDSample(path=str(path), pid=50 + pid, camid=1 + modality, modality=modality))
                labels.append(10 + pid)
    transform = build_eval_transform((16, 8))
    return make_reid_dataset(samples, labels=labels, dataset="fake", train_transform=transform,
                             eval_transform=transform), samples


def test_identity_batch_loader_over_avalanche_dataset(tmp_path):
    dataset, samples = _image_dataset(tmp_path)
    loader = make_identity_batch_loader(dataset, num_identities=2, num_instances=2, seed=3)
    assert isinstance(loader.batch_sampler, CrossModalityIdentitySampler)
    assert len(loader) == 3
    batches = list(loader)
    for images, pids, camids, modality, task in batches:
        assert images.shape == (8, 3, 16, 8)
        assert torch.equal(modality, torch.tensor([0] * 4 + [1] * 4))
        assert torch.equal(camids, modality + 1)
        assert torch.equal(pids[:4], pids[4:]) and set(pids.tolist()) <= set(range(10, 15))
        assert torch.equal(task, torch.zeros(8, dtype=torch.long))
    # the sampler read the labels from `targets`: the first batch's ids are the sampler's choice
    again = make_identity_batch_loader(dataset, num_identities=2, num_instances=2, seed=3)
    expected = next(iter(again.batch_sampler))
    assert batches[0][1].tolist() == [10 + (samples[i].pid - 50) for i in expected]


def test_identity_batch_loader_works_on_subsets_and_needs_attributes(tmp_path):
    dataset, samples = _image_dataset(tmp_path)
    keep = [i for i, s in enumerate(samples) if s.pid != 52]
    subset = dataset.subset(keep).eval()
    loader = make_identity_batch_loader(subset, num_identities=8, num_instances=1)
    (batch,) = list(loader)
    assert sorted(set(batch[1].tolist())) == [10, 11, 13, 14]
    with pytest.raises(ValueError, match="'targets'"):
        make_identity_batch_loader(torch.utils.data.TensorDataset(torch.zeros(4)))
