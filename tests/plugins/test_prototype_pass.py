"""The end-of-session prototype pass of CKDA (docs/method.md §5), run through the `CKDA` strategy's own plugins.

Two sessions are simulated (no optimisation: the "trained" weights are set by hand) on a real Avalanche ReID dataset
of PNG files with the package's train and test transforms. The expected prototypes are computed here, independently:
the merged model is built by hand (0.7 previous + 0.3 trained), the images are decoded and ImageNet-normalised by
hand (the test transform at the file's own size), the model runs in eval mode, BNNeck uses its running statistics
(written out) and the per-identity per-modality mean of L2norm(BN(f)) is a Python loop. Each wrong variant (train-mode
teacher, train transform, unmerged model) is shown to give clearly different prototypes, so the test fails on it.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from ckda_avalanche.benchmarks.reid_dataset import make_reid_dataset
from ckda_avalanche.benchmarks.sample import ReIDSample
from ckda_avalanche.benchmarks.transforms import build_eval_transform, build_train_transform
from ckda_avalanche.models import create_model
from ckda_avalanche.strategies import CKDA, CKDA_PAPER, CKDAConfig, TrainConfig

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:No loggers specified")]
SIZE = (32, 16)

_spec = importlib.util.spec_from_file_location("ckda_reference", Path(__file__).parents[1] / "ckda_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


# ---------------------------------------------------------------------------------------------- data
def _write_images(root, seed: int):
    """3 identities x 2 modalities x 2 images at the model's size; returns (samples, labels)."""
    rng = np.random.default_rng(seed)
    samples, labels = [], []
    for pid in range(3):
        for modality in (0, 1):
            for k in range(2):
                base = rng.integers(0, 256, size=(1, 1, 3)) if modality == 0 else rng.integers(0, 256, size=(1, 1, 1))
                noise = rng.integers(-60, 61, size=(*SIZE, 3))
                array = np.clip(base + noise, 0, 255).astype(np.uint8)
                path = root / f"s{seed}_{pid}_{modality}_{k}.png"
                Image.fromarray(array).save(path)
                samples.append(ReIDSample(path=str(path), pid=100 + pid, camid=1 + modality, modality=modality))
                labels.append(pid)
    return samples, labels


def _experience(root, seed: int, name: str):
    samples, labels = _write_images(root, seed)
    dataset = make_reid_dataset(samples, labels=labels, dataset=name, train_transform=build_train_transform(SIZE),
                                eval_transform=build_eval_transform(SIZE), initial_group="train")
    experience = SimpleNamespace(dataset=dataset, reid=SimpleNamespace(dataset=name), current_experience=0)
    x = torch.stack([ref.eval_image(sample.path, SIZE) for sample in samples])
    truth = SimpleNamespace(x=x, labels=torch.tensor(labels), modality=torch.tensor([s.modality for s in samples]))
    return experience, truth


# ---------------------------------------------------------------------------------------------- reference
def ref_prototypes(model, x, labels, modality, *, train_mode: bool = False):
    """Spec §5.2: per identity and modality, the mean of L2norm(BN(f)) of the model in eval mode."""
    return ref.prototypes(ref.bnneck_feature(model, x, modality, train_mode=train_mode), labels, modality)


def _weights(seed: int, classes: int) -> dict:
    """State of a test-preset model with non-trivial BNNeck / prompt running statistics."""
    torch.manual_seed(seed)
    model = create_model("test", num_classes=classes, img_size=SIZE)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_mean"):
                t.copy_(0.5 * torch.randn(t.shape, generator=g))
            elif name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
    return {k: v.clone() for k, v in model.state_dict().items()}


def _model_with(state: dict):
    model = create_model("test", num_classes=0, img_size=SIZE)
    classifier = state.get("head.classifier.weight")
    model.reset_classifier(0 if classifier is None else int(classifier.shape[0]))
    model.load_state_dict(state)
    return model


def _run_session(strategy, experience, trained: dict) -> None:
    """The session hooks of CKDA's plugins, in the strategy's order, with "training" replaced by loading ``trained``."""
    own = [p for p in strategy.plugins if type(p).__module__.startswith("ckda_avalanche.plugins")]
    assert [type(p).__name__ for p in own] == ["WeightMergePlugin", "TeacherPlugin", "PromptConsistencyPlugin",
                                               "CKAPlugin"]
    strategy.experience = experience
    for plugin in own:
        plugin.before_training_exp(strategy)
    strategy.model.reset_classifier(int(trained["head.classifier.weight"].shape[0]))
    strategy.model.load_state_dict(trained)
    for plugin in own:
        plugin.after_training_exp(strategy)


def _strategy(method: CKDAConfig):
    model = create_model("test", num_classes=0, img_size=SIZE, config_overrides=method.model_overrides())
    config = TrainConfig(lr=1e-3, epochs=1, num_identities=2, num_instances=2, amp="off", warmup_epochs=0)
    return CKDA(model=model, method=method, config=config, device="cpu")


def _assert_protos(actual, expected) -> None:
    for a, e in zip(actual, expected):
        if e.is_floating_point():
            torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-4)
        else:
            assert a.tolist() == e.tolist()


def _far(a, b) -> bool:
    return (a[0] - b[0]).abs().max().item() > 1e-2 or (a[2] - b[2]).abs().max().item() > 1e-2


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    root = tmp_path_factory.mktemp("prototype_pass")
    return _experience(root, 1, "regdb"), _experience(root, 2, "sysu")


# ---------------------------------------------------------------------------------------------- tests
def test_prototypes_come_from_the_merged_teacher_in_eval_mode_with_the_test_transform(sessions):
    (exp1, truth1), (exp2, truth2) = sessions
    strategy = _strategy(CKDA_PAPER)
    first, second = _weights(1, classes=3), _weights(2, classes=5)
    torch.manual_seed(0)  # the train transform is random; any draw differs from the test transform
    _run_session(strategy, exp1, first)
    # session 1: nothing to merge, the prototypes are those of the trained model
    expected1 = ref_prototypes(_model_with(first), truth1.x, truth1.labels, truth1.modality)
    _assert_protos(strategy.cka.prototypes, expected1)
    _run_session(strategy, exp2, second)
    merged = _model_with(ref.merge(first, second))
    expected2 = ref_prototypes(merged, truth2.x, truth2.labels, truth2.modality)
    _assert_protos(strategy.cka.prototypes, expected2)
    assert strategy.cka.prototypes.visible.shape == (3, strategy.model.embed_dim)

    # each way of getting it wrong gives clearly different prototypes, so the assertions above would fail:
    unmerged = ref_prototypes(_model_with(second), truth2.x, truth2.labels, truth2.modality)
    assert _far(unmerged, expected2)
    train_mode = ref_prototypes(merged, truth2.x, truth2.labels, truth2.modality, train_mode=True)
    assert _far(train_mode, expected2)
    train_x = torch.stack([item[0] for item in exp2.dataset.train()])
    train_transform = ref_prototypes(merged, train_x, truth2.labels, truth2.modality)
    assert _far(train_transform, expected2)


@pytest.mark.parametrize("quirk", [False, True])
def test_quirk_a_regdb_thermal_prototypes_from_visible_images_through_ckda_config(sessions, quirk):
    (exp1, truth1), (exp2, truth2) = sessions
    strategy = _strategy(CKDAConfig(quirk_regdb_thermal_from_visible=quirk))
    first, second = _weights(1, classes=3), _weights(2, classes=5)
    _run_session(strategy, exp1, first)  # RegDB
    vis, vis_ids, ir, ir_ids = ref_prototypes(_model_with(first), truth1.x, truth1.labels, truth1.modality)
    if quirk:  # the "thermal" prototypes are the visible images' prototypes
        _assert_protos(strategy.cka.prototypes, (vis, vis_ids, vis, vis_ids))
    else:
        _assert_protos(strategy.cka.prototypes, (vis, vis_ids, ir, ir_ids))
    assert (vis - ir).abs().max().item() > 1e-2  # the two readings really differ on this data
    _run_session(strategy, exp2, second)  # SYSU-MM01: the quirk is RegDB-only
    expected = ref_prototypes(_model_with(ref.merge(first, second)), truth2.x, truth2.labels, truth2.modality)
    _assert_protos(strategy.cka.prototypes, expected)
