"""Per-sample batch kernels against torchvision's per-image kernels with the same parameters.

The reference is torchvision.transforms.v2.functional applied image by image (the per-image pipeline of
transforms.py uses exactly these kernels), never the code under test."""
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from ckda_avalanche.benchmarks import batch_ops

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _images(n=12, size=(32, 16), seed=0):
    """Random images plus smooth ones (natural-image-like gradients), uint8 (n, 3, H, W)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 256, (n // 2, 3, *size), dtype=torch.uint8, generator=g)
    ramp = torch.linspace(0, 1, size[0]).view(1, 1, -1, 1) * torch.linspace(0.3, 1, size[1]).view(1, 1, 1, -1)
    smooth = (ramp * torch.randint(60, 256, (n - n // 2, 3, 1, 1), generator=g)).to(torch.uint8)
    return torch.cat([noise, smooth])


def _factors(n, low, high, seed=1):
    return torch.from_numpy(np.random.default_rng(seed).uniform(low, high, size=n))


@pytest.mark.parametrize("size", [(32, 16), (64, 32)])
def test_normalize_is_bit_identical_to_todtype_and_normalize(size):
    x = _images(size=size)
    got = batch_ops.normalize(x, torch.tensor(MEAN), torch.tensor(STD))
    for b in range(len(x)):
        expected = TF.normalize(TF.to_dtype(x[b], torch.float32, scale=True), MEAN, STD)
        assert torch.equal(got[b], expected)


def test_flip_mirrors_exactly_the_masked_images():
    x = _images()
    mask = torch.tensor([True, False] * 6)
    got = batch_ops.flip(x, mask)
    for b in range(len(x)):
        assert torch.equal(got[b], TF.horizontal_flip(x[b]) if mask[b] else x[b])


@pytest.mark.parametrize("size", [(32, 16), (256, 128)])
def test_brightness_and_contrast_equal_torchvision_per_image(size):
    x = _images(size=size)
    factors = _factors(len(x), 0.7, 1.3)
    bright = batch_ops.adjust_brightness(x, factors)
    contrast = batch_ops.adjust_contrast(x, factors)
    for b in range(len(x)):
        assert torch.equal(bright[b], TF.adjust_brightness(x[b], float(factors[b])))
        assert torch.equal(contrast[b], TF.adjust_contrast(x[b], float(factors[b])))


@pytest.mark.parametrize(("size", "kernel"), [((32, 16), 3), ((64, 32), 5), ((256, 128), 21)])
def test_separable_blur_matches_torchvision_within_one_grey_level(size, kernel):
    x = _images(size=size)
    sigma = _factors(len(x), 0.1 * size[0] / 256, 3.0 * size[0] / 256, seed=2)
    got = batch_ops.gaussian_blur(x, kernel, sigma)
    reference = torch.stack([TF.gaussian_blur(x[b], [kernel, kernel], [float(sigma[b])] * 2) for b in range(len(x))])
    diff = (got.int() - reference.int()).abs()
    assert int(diff.max()) <= 1  # float rounding of a separable vs a 2-D convolution
    assert float((diff > 0).float().mean()) < 1e-3
    # each sample used its own sigma: a wider sigma blurs the noise images more
    spread = [float(got[b].float().std()) for b in range(len(x) // 2)]
    order = np.argsort(sigma[: len(x) // 2].numpy())
    assert spread[order[0]] > spread[order[-1]]


def test_blur_with_kernel_one_is_the_identity():
    x = _images()
    assert torch.equal(batch_ops.gaussian_blur(x, 1, torch.ones(len(x))), x)


def test_erase_sets_each_samples_rectangle_to_zero():
    x = batch_ops.normalize(_images(n=4), torch.tensor(MEAN), torch.tensor(STD))
    boxes = torch.tensor([[0, 0, 5, 3], [10, 4, 7, 12], [31, 15, 1, 1], [2, 2, 4, 4]])
    mask = torch.tensor([True, True, True, False])
    got = batch_ops.erase(x, boxes, mask)
    for b in range(4):
        i, j, h, w = boxes[b].tolist()
        expected = TF.erase(x[b], i, j, h, w, torch.tensor([0.0])) if mask[b] else x[b]
        assert torch.equal(got[b], expected)


def test_kernels_reject_wrong_inputs():
    x = _images()
    with pytest.raises(TypeError, match="uint8"):
        batch_ops.adjust_brightness(x.float(), torch.ones(len(x)))
    with pytest.raises(ValueError, match="one value per image"):
        batch_ops.adjust_contrast(x, torch.ones(3))
    with pytest.raises(ValueError, match="odd"):
        batch_ops.gaussian_blur(x, 4, torch.ones(len(x)))
    with pytest.raises(ValueError, match="boxes"):
        batch_ops.erase(x.float(), torch.zeros(len(x), 3), torch.ones(len(x), dtype=torch.bool))


def test_grayscale_equals_torchvision_on_exactly_the_masked_images():
    images = torch.randint(0, 256, (12, 3, 9, 5), dtype=torch.uint8)
    mask = torch.tensor([i % 3 == 0 for i in range(12)])
    out = batch_ops.grayscale(images, mask)
    for i in range(12):
        expected = TF.rgb_to_grayscale(images[i], num_output_channels=3) if mask[i] else images[i]
        assert torch.equal(out[i], expected), i
    assert batch_ops.grayscale(images, torch.zeros(12, dtype=torch.bool)) is images
    with pytest.raises(ValueError, match="one value per image"):
        batch_ops.grayscale(images, mask[:5])
