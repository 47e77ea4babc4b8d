"""Train/eval transforms: shapes, ImageNet normalisation, and the infrared-only augmentation (docs/method.md §6)."""
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from ckda_avalanche.benchmarks.sample import INFRARED, VISIBLE
from ckda_avalanche.benchmarks.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    ModalityAwareTransform,
    build_eval_transform,
    build_train_transform,
    scaled_blur,
)

SIZE = (32, 16)


def _textured(seed: int = 0, shape=(48, 24)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8))


def test_eval_transform_shape_dtype_and_imagenet_normalisation():
    colour = (200, 100, 50)
    image = Image.new("RGB", (24, 48), colour)
    out = build_eval_transform(SIZE)(image, VISIBLE)
    assert type(out) is torch.Tensor  # a plain tensor, not a tv_tensors.Image
    assert out.shape == (3, *SIZE) and out.dtype == torch.float32
    for channel in range(3):
        expected = (colour[channel] / 255 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
        torch.testing.assert_close(out[channel], torch.full(SIZE, expected), atol=1e-5, rtol=0)


def test_eval_transform_is_deterministic_and_ignores_modality():
    image = _textured()
    transform = build_eval_transform(SIZE)
    a = transform(image, VISIBLE)
    assert torch.equal(a, transform(image, VISIBLE))
    assert torch.equal(a, transform(image, INFRARED))


def test_transforms_accept_uint8_tensors_like_pil_images():
    image = _textured()
    as_tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()
    transform = build_eval_transform(SIZE)
    torch.testing.assert_close(transform(as_tensor, VISIBLE), transform(image, VISIBLE))


def test_train_transform_flips_then_matches_eval_pipeline():
    image = _textured()
    config = AugmentConfig(flip_p=1.0, erase_p=0.0, infrared_aug_p=0.0)
    train = build_train_transform(SIZE, config=config)
    reference = build_eval_transform(SIZE)(image, VISIBLE)
    for modality in (VISIBLE, INFRARED):
        out = train(image, modality)
        assert out.shape == (3, *SIZE)
        torch.testing.assert_close(out, reference.flip(-1))


def test_default_train_transform_is_random_and_erases_with_zero():
    image = Image.new("RGB", (24, 48), (200, 100, 50))  # normalised value is never 0 for this colour
    train = build_train_transform(SIZE, config=AugmentConfig(erase_p=1.0))
    torch.manual_seed(0)
    out = train(image, VISIBLE)
    erased = (out == 0).all(dim=0)
    assert 0 < erased.sum() < SIZE[0] * SIZE[1]
    torch.manual_seed(0)
    assert torch.equal(out, train(image, VISIBLE))  # randomness comes from torch's generator
    outs = [build_train_transform(SIZE)(_textured(), VISIBLE) for _ in range(8)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_infrared_augmentation_only_touches_infrared_images():
    image = _textured(1)
    config = AugmentConfig(flip_p=0.0, erase_p=0.0, infrared_aug_p=1.0, blur_reference_height=None)
    train = build_train_transform(SIZE, config=config)
    reference = build_eval_transform(SIZE)(image, VISIBLE)
    torch.manual_seed(0)
    for _ in range(6):
        assert torch.equal(train(image, VISIBLE), reference)
        assert not torch.equal(train(image, INFRARED), reference)


def test_infrared_branch_is_jitter_or_blur_with_published_parameters():
    train = build_train_transform((256, 128))
    apply = train.infrared_only
    assert isinstance(apply, v2.RandomApply) and apply.p == 1.0
    (choice,) = apply.transforms
    assert isinstance(choice, v2.RandomChoice)
    jitter, blur = choice.transforms
    assert isinstance(jitter, v2.ColorJitter) and isinstance(blur, v2.GaussianBlur)
    assert jitter.brightness == pytest.approx((0.7, 1.3)) and jitter.contrast == pytest.approx((0.7, 1.3))
    assert jitter.saturation is None and jitter.hue is None
    assert list(blur.kernel_size) == [21, 21] and list(blur.sigma) == pytest.approx([0.1, 3.0])
    assert choice.p == [0.5, 0.5]


def _infrared_blur(train: ModalityAwareTransform) -> v2.GaussianBlur:
    (choice,) = train.infrared_only.transforms
    return choice.transforms[1]


def test_modality_aware_transform_rejects_unknown_modality():
    transform = ModalityAwareTransform(common_pre=lambda x: x, common_post=lambda x: x)
    with pytest.raises(ValueError, match="modality"):
        transform(torch.zeros(3, 2, 2), 2)


@pytest.mark.parametrize(
    ("field", "value"),
    [("erase_p", 1.5), ("flip_p", -0.1), ("blur_kernel", 20), ("blur_sigma", (2.0, 1.0)),
     ("jitter_contrast", -1.0), ("interpolation", "lanczos")],
)
def test_augment_config_validates_fields(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_blur_kernel_too_large_for_image_size_is_an_error():
    with pytest.raises(ValueError, match="blur_kernel"):
        build_train_transform((16, 8), config=AugmentConfig(blur_reference_height=None))
    small = build_train_transform((16, 8), config=AugmentConfig(blur_kernel=5, blur_reference_height=None))
    assert small(_textured(), INFRARED).shape == (3, 16, 8)


@pytest.mark.parametrize(("height", "kernel", "sigma"), [(256, 21, (0.1, 3.0)), (128, 11, (0.05, 1.5)),
                                                         (64, 5, (0.025, 0.75)), (32, 3, (0.0125, 0.375)),
                                                         (16, 1, (0.00625, 0.1875))])
def test_blur_scales_with_image_height(height, kernel, sigma):
    assert scaled_blur(AugmentConfig(), height) == (kernel, pytest.approx(sigma))
    assert scaled_blur(AugmentConfig(blur_reference_height=None), height) == (21, (0.1, 3.0))
    blur = _infrared_blur(build_train_transform((height, height // 2)))
    assert list(blur.kernel_size) == [kernel, kernel] and list(blur.sigma) == pytest.approx(list(sigma))


def test_img_size_must_be_two_positive_ints():
    with pytest.raises(ValueError, match="img_size"):
        build_eval_transform((32,))
    with pytest.raises(ValueError, match="img_size"):
        build_train_transform((0, 16))
