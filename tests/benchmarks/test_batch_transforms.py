"""Batched train / test transforms against the per-image torchvision pipeline (transforms.py).

Exactness: with every probability at 0 or 1, or with the per-sample parameters fixed, each image of the batched
output equals the per-image torchvision transform of that image (blur: within one grey level). Statistics: the
per-sample random draws follow the per-image transform's distributions (torchvision's own parameter samplers are the
reference), and a Monte-Carlo mean/std image of the two pipelines agree. Every random choice is per sample."""
import math

import numpy as np
import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ckda_avalanche.benchmarks.batch_transforms import ERASE_ATTEMPTS, BatchTrainAugment
from ckda_avalanche.benchmarks.sample import INFRARED, VISIBLE
from ckda_avalanche.benchmarks.transforms import AugmentConfig, build_eval_transform, build_train_transform

SIZE = (32, 16)
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _batch(n=8, size=SIZE, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, *size), dtype=torch.uint8, generator=g)
    modality = torch.tensor([VISIBLE, INFRARED] * (n // 2))
    return images, modality


def _normalised(image_uint8):
    return TF.normalize(TF.to_dtype(image_uint8, torch.float32, scale=True), MEAN, STD)


def test_eval_batched_equals_the_per_image_eval_transform():
    images, modality = _batch()
    per_image = build_eval_transform(SIZE)
    batched = per_image.batched(images, modality)
    for b in range(len(images)):
        assert torch.equal(batched[b], per_image(images[b], int(modality[b])))


@pytest.mark.parametrize("flip_p", [0.0, 1.0])
def test_deterministic_settings_equal_the_per_image_train_transform(flip_p):
    images, modality = _batch()
    train = build_train_transform(SIZE, config=AugmentConfig(flip_p=flip_p, erase_p=0.0, infrared_aug_p=0.0))
    batched = train.batched(images, modality)
    for b in range(len(images)):
        assert torch.equal(batched[b], train(images[b], int(modality[b])))


def _fixed(augment, images, modality, **fields):
    params = augment.sample(modality, generator=torch.Generator().manual_seed(0))
    return params._replace(**fields)


def test_jitter_with_fixed_parameters_equals_torchvision_on_infrared_images_only():
    images, modality = _batch(n=8)
    augment = build_train_transform(SIZE).batched
    n = len(images)
    brightness = torch.linspace(0.7, 1.3, n, dtype=torch.float64)
    contrast = torch.linspace(1.25, 0.75, n, dtype=torch.float64)
    first = torch.tensor([True, True, False, False] * 2)
    params = _fixed(augment, images, modality, infrared_aug=modality == INFRARED, jitter=torch.ones(n, dtype=bool),
                    brightness=brightness, contrast=contrast, brightness_first=first,
                    flip=torch.zeros(n, dtype=bool), erase=torch.zeros(n, dtype=bool))
    out = augment.apply(images, params)
    for b in range(n):
        x = images[b]
        if modality[b] == INFRARED:
            steps = [(TF.adjust_brightness, brightness[b]), (TF.adjust_contrast, contrast[b])]
            for fn, factor in (steps if first[b] else steps[::-1]):
                x = fn(x, float(factor))
        assert torch.equal(out[b], _normalised(x))


def test_blur_flip_and_erase_with_fixed_parameters_equal_torchvision():
    images, modality = _batch(n=8, size=(64, 32))
    augment = build_train_transform((64, 32)).batched
    assert augment.blur_kernel == 5  # kernel 21 at height 256 scales to 5 at 64
    n = len(images)
    sigma = torch.linspace(0.03, 0.7, n, dtype=torch.float64)
    flips = torch.tensor([True, False, False, True] * 2)
    boxes = torch.tensor([[3, 2, 10, 6], [0, 0, 1, 1], [50, 20, 14, 12], [7, 7, 30, 3]] * 2)
    erase = torch.tensor([True, True, False, True] * 2)
    params = _fixed(augment, images, modality, infrared_aug=modality == INFRARED, jitter=torch.zeros(n, dtype=bool),
                    sigma=sigma, flip=flips, erase=erase, boxes=boxes)
    out = augment.apply(images, params)
    for b in range(n):
        x = images[b]
        if modality[b] == INFRARED:
            x = TF.gaussian_blur(x, [5, 5], [float(sigma[b])] * 2)
        if flips[b]:
            x = TF.horizontal_flip(x)
        expected = _normalised(x)
        if erase[b]:
            i, j, h, w = boxes[b].tolist()
            expected = TF.erase(expected, i, j, h, w, torch.tensor([0.0]))
        torch.testing.assert_close(out[b], expected, atol=1.01 / 255 / min(STD), rtol=0)  # blur: <= 1 grey level


def test_every_random_choice_is_per_sample():
    image = _batch(n=2)[0][1]
    images = image.expand(64, *image.shape).contiguous()
    modality = torch.full((64,), INFRARED)
    torch.manual_seed(0)
    out = build_train_transform(SIZE).batched(images, modality)
    distinct = {out[b].numpy().tobytes() for b in range(64)}
    assert len(distinct) > 40  # one set for the whole batch would give 1 (small blurs at 32x16 may coincide)
    params = build_train_transform(SIZE).batched.sample(modality, generator=torch.Generator().manual_seed(1))
    for field in ("flip", "erase", "jitter", "brightness_first"):
        values = getattr(params, field)
        assert 0 < int(values.sum()) < 64, field
    assert len(set(params.brightness.tolist())) == 64 and len(set(params.sigma.tolist())) == 64


def test_same_generator_state_gives_the_same_batch_and_visible_images_are_never_jittered():
    images, modality = _batch(n=16)
    augment = build_train_transform(SIZE).batched
    a = augment(images, modality, generator=torch.Generator().manual_seed(5))
    b = augment(images, modality, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    torch.manual_seed(3)
    c = augment(images, modality)
    torch.manual_seed(3)
    assert torch.equal(c, augment(images, modality))  # default: torch's global generator
    params = augment.sample(torch.zeros(1000, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    assert not bool(params.infrared_aug.any())


def _proportion_close(count, n, p):
    return abs(count / n - p) < 5 * math.sqrt(p * (1 - p) / n) + 1e-9


def test_parameter_distributions_match_the_per_image_transforms():
    n = 4000
    config = AugmentConfig(infrared_aug_p=0.8)
    augment = build_train_transform((256, 128), config=config).batched
    p = augment.sample(torch.full((n,), INFRARED), generator=torch.Generator().manual_seed(0))
    assert _proportion_close(int(p.infrared_aug.sum()), n, 0.8)
    assert _proportion_close(int((p.infrared_aug & p.jitter).sum()), n, 0.4)
    assert _proportion_close(int(p.flip.sum()), n, 0.5)
    assert _proportion_close(int(p.brightness_first.sum()), n, 0.5)
    # ColorJitter(brightness=.3, contrast=.3) and GaussianBlur(21, (.1, 3)) draw uniformly on these ranges
    jitter = v2.ColorJitter(brightness=0.3, contrast=0.3)
    for values, (low, high) in ((p.brightness, jitter.brightness), (p.contrast, jitter.contrast),
                                (p.sigma, (0.1, 3.0))):
        assert low <= float(values.min()) and float(values.max()) <= high
        assert abs(float(values.mean()) - (low + high) / 2) < 5 * (high - low) / math.sqrt(12 * n)


@pytest.mark.parametrize("size", [(32, 16), (256, 128)])
def test_erasing_rectangles_follow_torchvision_random_erasing(size):
    """Reference: torchvision's own RandomErasing.make_params, drawn per image."""
    n = 3000
    torch.manual_seed(0)
    erasing = v2.RandomErasing(p=1.0)
    image = torch.zeros(3, *size)
    ref = [erasing.make_params([image]) for _ in range(n)]
    ref_erased = np.array([r["v"] is not None for r in ref])
    ref_hw = np.array([(r["h"], r["w"]) for r in ref if r["v"] is not None], dtype=float)
    ref_ij = np.array([(r["i"] / (size[0] - r["h"] + 1), r["j"] / (size[1] - r["w"] + 1)) for r in ref
                       if r["v"] is not None])
    augment = build_train_transform(size, config=AugmentConfig(erase_p=1.0)).batched
    p = augment.sample(torch.zeros(n, dtype=torch.long), generator=torch.Generator().manual_seed(1))
    erased = p.erase.numpy()
    assert _proportion_close(int(erased.sum()), n, float(ref_erased.mean()) if ref_erased.mean() < 1 else 1.0)
    hw = p.boxes[p.erase][:, 2:].numpy().astype(float)
    ij = p.boxes[p.erase][:, :2].numpy() / (np.array(size) - hw + 1)
    for ours, theirs in ((hw, ref_hw), (ij, ref_ij)):
        tolerance = 5 * np.sqrt(ours.var(axis=0) / len(ours) + theirs.var(axis=0) / len(theirs))
        assert np.all(np.abs(ours.mean(axis=0) - theirs.mean(axis=0)) <= tolerance + 1e-9)
    boxes = p.boxes[p.erase]
    assert bool(((boxes[:, 0] + boxes[:, 2] <= size[0]) & (boxes[:, 1] + boxes[:, 3] <= size[1])).all())
    assert bool((boxes[:, 2] < size[0]).all()) and bool((boxes[:, 3] < size[1]).all())
    assert ERASE_ATTEMPTS == 10


def test_monte_carlo_mean_and_spread_match_the_per_image_pipeline():
    """Whole pipeline, default (published) setting: per-pixel mean and std over many augmentations of one infrared
    and one visible image agree between the per-image torchvision transform and the batched one."""
    images, modality = _batch(n=2, seed=4)
    train = build_train_transform(SIZE)
    n = 1500
    torch.manual_seed(0)
    for b in range(2):
        per_image = torch.stack([train(images[b], int(modality[b])) for _ in range(n)])
        batched = train.batched(images[b].expand(n, *images[b].shape).contiguous(), modality[b].repeat(n))
        for stat in (lambda t: t.mean(dim=0), lambda t: t.std(dim=0)):
            gap = (stat(per_image) - stat(batched)).abs()
            assert float(gap.mean()) < 0.03 and float(gap.max()) < 0.25


def test_batched_transform_needs_resized_uint8_images():
    augment = build_train_transform(SIZE).batched
    images, modality = _batch()
    with pytest.raises(ValueError, match="already resized"):
        augment(torch.zeros(2, 3, 64, 32, dtype=torch.uint8), modality[:2])
    with pytest.raises(TypeError, match="uint8"):
        augment(images.float(), modality)
    with pytest.raises(TypeError, match="uint8"):
        build_eval_transform(SIZE).batched(images.float(), modality)
    assert isinstance(augment, BatchTrainAugment)
