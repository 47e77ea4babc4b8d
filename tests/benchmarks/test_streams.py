"""vi_lreid_benchmark: experiences, minibatch layout, label offsets, experience.reid, transform groups, quirks."""
import numpy as np
import pytest
import torch
from avalanche.benchmarks.utils import TaskAwareSupervisedClassificationDataset
from PIL import Image
from torch.utils.data import DataLoader

from ckda_avalanche.benchmarks.errors import DatasetLayoutError
from ckda_avalanche.benchmarks.protocols import EvalProtocol, PoolSelector, TrialSpec
from ckda_avalanche.benchmarks.sample import INFRARED, VISIBLE, ReIDSample
from ckda_avalanche.benchmarks.streams import ReIDExperienceInfo, vi_lreid_benchmark
from ckda_avalanche.benchmarks.transforms import (
    AugmentConfig,
    ModalityAwareTransform,
    build_eval_transform,
)

SIZE = (32, 16)


class FakeReader:
    """Minimal reader: the attributes the stream contract names, over tiny images written to disk."""

    def __init__(self, tmp_path, name, *, train_ids, test_ids, per_modality=2, seed=0):
        self.name = name
        self.root = str(tmp_path / name)
        rng = np.random.default_rng(seed)
        self.train = self._write(tmp_path / name / "train", train_ids, per_modality, rng)
        self.test_pool = self._write(tmp_path / name / "test", test_ids, per_modality, rng)
        self.requested: list[str] = []

    @staticmethod
    def _write(folder, ids, per_modality, rng):
        folder.mkdir(parents=True)
        samples = []
        for pid in ids:
            for modality in (VISIBLE, INFRARED):
                for j in range(per_modality):
                    path = folder / f"{pid}_{modality}_{j}.png"
                    Image.fromarray(rng.integers(0, 256, size=(24, 12, 3), dtype=np.uint8)).save(path)
                    samples.append(ReIDSample(path=str(path), pid=pid, camid=1 + modality + 2 * j,
                                              modality=modality))
        return samples

    def protocol(self, kind="paper"):
        self.requested.append(kind)
        spec = TrialSpec(name=f"{kind}/v2i", rule="none", query=PoolSelector(modality=VISIBLE),
                         gallery=PoolSelector(modality=INFRARED))
        return EvalProtocol(name=kind, specs=[spec])


@pytest.fixture
def readers(tmp_path):
    return [
        FakeReader(tmp_path, "regdb", train_ids=[7, 3, 11], test_ids=[40, 41], seed=1),
        FakeReader(tmp_path, "sysu", train_ids=[5, 2], test_ids=[9, 1, 8], seed=2),
        FakeReader(tmp_path, "llcm", train_ids=[100, 200, 300, 400], test_ids=[1], seed=3),
    ]


def _batch(dataset, n=None):
    n = len(dataset) if n is None else n
    return next(iter(DataLoader(dataset, batch_size=n, shuffle=False, collate_fn=dataset.collate_fn)))


def test_experiences_follow_reader_order_with_reid_info(readers):
    bm = vi_lreid_benchmark(readers=readers, img_size=SIZE, protocol="full")
    assert bm.reid_datasets == ["regdb", "sysu", "llcm"]
    assert len(bm.train_stream) == len(bm.test_stream) == 3
    for i, (train_exp, test_exp, reader) in enumerate(zip(bm.train_stream, bm.test_stream, readers)):
        assert train_exp.current_experience == test_exp.current_experience == i
        assert isinstance(train_exp.dataset, TaskAwareSupervisedClassificationDataset)
        info, tinfo = train_exp.reid, test_exp.reid
        assert isinstance(info, ReIDExperienceInfo) and isinstance(tinfo, ReIDExperienceInfo)
        assert (info.dataset, info.split, tinfo.dataset, tinfo.split) == (reader.name, "train", reader.name, "test")
        assert info.samples == tuple(reader.train) and tinfo.samples == tuple(reader.test_pool)
        assert info.protocol is None
        assert isinstance(tinfo.protocol, EvalProtocol) and tinfo.protocol.name == "full"
        assert info.num_identities == len({s.pid for s in reader.train})
        assert tinfo.num_identities == len({s.pid for s in reader.test_pool})
        assert len(train_exp.dataset) == len(reader.train) and len(test_exp.dataset) == len(reader.test_pool)
        assert train_exp.task_label == 0 and test_exp.task_label == 0
        with pytest.raises(Exception):
            info.label_offset = 0  # frozen
    assert all(r.requested == ["full"] for r in readers)


def test_label_offsets_are_contiguous_and_disjoint(readers):
    bm = vi_lreid_benchmark(readers=readers, img_size=SIZE)
    infos = [e.reid for e in bm.train_stream] + [e.reid for e in bm.test_stream]
    expected_offset = 0
    for exp, info in zip(list(bm.train_stream) + list(bm.test_stream), infos):
        assert info.label_offset == expected_offset
        labels = set(exp.dataset.targets)
        assert labels == set(range(info.label_offset, info.label_offset + info.num_identities))
        assert exp.classes_in_this_experience == labels
        expected_offset += info.num_identities
    assert [i.label_offset for i in infos] == [0, 3, 5, 9, 11, 14]
    # labels follow ascending dataset pids; identities maps them back
    regdb = bm.train_stream[0]
    assert regdb.reid.identities == (3, 7, 11)
    assert [regdb.reid.to_label(s.pid) for s in regdb.reid.samples] == list(regdb.dataset.targets)
    with pytest.raises(KeyError, match="pid 99"):
        regdb.reid.to_label(99)


def test_minibatch_is_image_pid_camid_modality_task_label_last(readers):
    bm = vi_lreid_benchmark(readers=readers, img_size=SIZE)
    for exp in list(bm.train_stream) + list(bm.test_stream):
        batch = _batch(exp.dataset)
        assert len(batch) == 5
        images, pids, camids, modality, task = batch
        assert images.shape == (len(exp.dataset), 3, *SIZE) and images.dtype == torch.float32
        samples = exp.reid.samples
        assert pids.tolist() == [exp.reid.to_label(s.pid) for s in samples]
        assert camids.tolist() == [s.camid for s in samples]
        assert modality.tolist() == [s.modality for s in samples]
        assert task.tolist() == [0] * len(samples)
        assert list(exp.dataset.modality) == modality.tolist() and list(exp.dataset.camid) == camids.tolist()


def test_eval_switches_a_train_dataset_to_the_eval_transform_and_back(readers):
    augment = AugmentConfig(flip_p=1.0, erase_p=0.0, infrared_aug_p=0.0)
    bm = vi_lreid_benchmark(readers=readers, img_size=SIZE, augment=augment)
    train_ds = bm.train_stream[1].dataset
    reference = build_eval_transform(SIZE)
    for i in (0, len(train_ds) - 1):
        sample = bm.train_stream[1].reid.samples[i]
        expected = reference(Image.open(sample.path).convert("RGB"), sample.modality)
        torch.testing.assert_close(train_ds.eval()[i][0], expected)
        torch.testing.assert_close(train_ds[i][0], expected.flip(-1))  # train transform: always flipped
        torch.testing.assert_close(train_ds.eval().train()[i][0], expected.flip(-1))
    test_ds = bm.test_stream[1].dataset
    sample = bm.test_stream[1].reid.samples[0]
    expected = reference(Image.open(sample.path).convert("RGB"), sample.modality)
    torch.testing.assert_close(test_ds[0][0], expected)  # test experiences start in the eval group


def test_default_train_transform_is_random_eval_is_deterministic(readers):
    bm = vi_lreid_benchmark(readers=readers, img_size=SIZE)
    ds = bm.train_stream[2].dataset
    torch.manual_seed(0)
    draws = [ds[0][0] for _ in range(6)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    evaluated = ds.eval()
    assert torch.equal(evaluated[0][0], evaluated[0][0])


def test_transforms_receive_each_samples_modality(readers):
    def mark_infrared(image):
        return torch.full_like(image, 255)

    marker = ModalityAwareTransform(
        common_pre=build_eval_transform(SIZE).common_pre, infrared_only=mark_infrared,
        common_post=lambda img: img.float(),
    )
    bm = vi_lreid_benchmark(readers=readers, img_size=SIZE, train_transform=marker)
    images, _, _, modality, _ = _batch(bm.train_stream[0].dataset)
    saturated = (images == 255).flatten(1).all(dim=1)
    assert saturated.tolist() == (modality == INFRARED).tolist()
    # plain one-argument transforms are accepted too
    bm = vi_lreid_benchmark(readers=readers, img_size=SIZE, eval_transform=lambda img: torch.zeros(1))
    assert _batch(bm.test_stream[0].dataset)[0].shape == (len(readers[0].test_pool), 1)


def test_llcm_test_modality_flip_changes_only_the_fed_flag(readers):
    bm = vi_lreid_benchmark(readers=readers, img_size=SIZE, llcm_flip_test_modality=True)
    llcm_test = bm.test_stream[2]
    assert llcm_test.reid.modality_flipped
    fed = _batch(llcm_test.dataset)[3].tolist()
    true = [s.modality for s in llcm_test.reid.samples]
    assert true == [s.modality for s in readers[2].test_pool]
    assert fed == [1 - m for m in true]
    assert list(llcm_test.dataset.modality) == fed
    # the LLCM training set and the other datasets are untouched
    assert _batch(bm.train_stream[2].dataset)[3].tolist() == [s.modality for s in readers[2].train]
    assert not bm.test_stream[0].reid.modality_flipped
    assert _batch(bm.test_stream[0].dataset)[3].tolist() == [s.modality for s in readers[0].test_pool]


def test_undecodable_image_names_the_file(tmp_path):
    reader = FakeReader(tmp_path, "regdb", train_ids=[1, 2], test_ids=[3])
    broken = reader.train[1].path
    with open(broken, "wb") as handle:
        handle.write(b"not an image")
    bm = vi_lreid_benchmark(readers=[reader], img_size=SIZE)
    bm.train_stream[0].dataset[0]  # other images still load
    with pytest.raises(DatasetLayoutError, match=broken.replace(".", r"\.")) as error:
        bm.train_stream[0].dataset[1]
    assert str(error.value).startswith("RegDB: ") and error.value.path == broken


def test_argument_errors(readers, tmp_path):
    with pytest.raises(ValueError, match=r"unknown dataset\(s\) \['market'\].*regdb.*sysu.*llcm.*vcm"):
        vi_lreid_benchmark(tmp_path, datasets=("regdb", "market"))
    with pytest.raises(ValueError, match="either readers"):
        vi_lreid_benchmark(tmp_path, readers=readers)
    with pytest.raises(ValueError, match="root folder or readers"):
        vi_lreid_benchmark()
    with pytest.raises(ValueError, match="'llcm' is not in the stream"):
        vi_lreid_benchmark(readers=readers[:2], llcm_flip_test_modality=True)
    with pytest.raises(ValueError, match="once"):
        vi_lreid_benchmark(readers=[readers[0], readers[0]])
    with pytest.raises(ValueError, match=r"reader_options names \['vcm'\]"):
        vi_lreid_benchmark(tmp_path, datasets=("regdb",), reader_options={"vcm": {}})
    with pytest.raises(FileNotFoundError, match="RegDB"):
        vi_lreid_benchmark(tmp_path / "missing", datasets=("regdb",))
    with pytest.raises(FileNotFoundError, match="expected one of SYSU-MM01"):
        vi_lreid_benchmark(tmp_path, datasets=("sysu",))
    with pytest.raises(TypeError, match="sequence of names"):
        vi_lreid_benchmark(tmp_path, datasets="regdb")
    with pytest.raises(TypeError, match="not a dataset reader"):
        vi_lreid_benchmark(readers=[object()])


@pytest.mark.filterwarnings("ignore:No loggers specified")
def test_a_plain_avalanche_naive_strategy_runs_on_the_stream(readers):
    """Avalanche reads the task label from mbatch[-1]; Naive must train and evaluate without touching extra fields."""
    from avalanche.core import SupervisedPlugin
    from avalanche.training import Naive

    class Record(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.seen = []

        def before_backward(self, strategy, **kwargs):
            self.seen.append(("train", len(strategy.mbatch), strategy.mb_task_id.tolist(), strategy.mb_y.tolist()))

        def after_eval_iteration(self, strategy, **kwargs):
            self.seen.append(("eval", len(strategy.mbatch), strategy.mb_task_id.tolist(), strategy.mb_y.tolist()))

    bm = vi_lreid_benchmark(readers=readers[:2], img_size=SIZE)
    num_labels = sum(e.reid.num_identities for e in list(bm.train_stream) + list(bm.test_stream))
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, num_labels))
    record = Record()
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     criterion=torch.nn.CrossEntropyLoss(), train_mb_size=4, train_epochs=1, eval_mb_size=8,
                     plugins=[record], evaluator=None)
    for exp in bm.train_stream:
        strategy.train(exp, num_workers=0)
    strategy.eval(bm.test_stream, num_workers=0)
    train_rows = [r for r in record.seen if r[0] == "train"]
    eval_rows = [r for r in record.seen if r[0] == "eval"]
    assert len(train_rows) == sum(-(-len(e.dataset) // 4) for e in bm.train_stream)
    assert len(eval_rows) == sum(-(-len(e.dataset) // 8) for e in bm.test_stream)
    assert all(n == 5 and set(tasks) == {0} for _, n, tasks, _ in record.seen)
    train_labels = {y for row in train_rows for y in row[3]}
    assert train_labels == set(range(bm.train_stream[1].reid.label_offset + bm.train_stream[1].reid.num_identities))


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    from ckda_avalanche.benchmarks.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic(root, seed=0, scale=0.07, img_size=(32, 16))  # 2 train + 2 test ids per dataset, < 1 s
    return root


def test_real_stream_from_a_synthetic_root(synthetic_root):
    from ckda_avalanche.benchmarks.datasets import HITSZVCM, LLCM, SYSUMM01, RegDB
    from ckda_avalanche.benchmarks.sampler import make_identity_batch_loader

    bm = vi_lreid_benchmark(synthetic_root, img_size=SIZE)
    assert bm.reid_datasets == ["regdb", "sysu", "llcm", "vcm"]
    reference = {"regdb": RegDB(synthetic_root / "RegDB"), "sysu": SYSUMM01(synthetic_root / "SYSU-MM01"),
                 "llcm": LLCM(synthetic_root / "LLCM"), "vcm": HITSZVCM(synthetic_root / "HITSZ-VCM")}
    offset = 0
    for exp in bm.train_stream:
        reader = reference[exp.reid.dataset]
        assert exp.reid.samples == tuple(reader.train) and exp.reid.label_offset == offset
        offset += exp.reid.num_identities
        images, pids, _, modality, task = next(iter(make_identity_batch_loader(exp.dataset, num_instances=2)))
        p = exp.reid.num_identities
        assert images.shape == (4 * p, 3, *SIZE) and task.tolist() == [0] * (4 * p)
        assert modality.tolist() == [VISIBLE] * (2 * p) + [INFRARED] * (2 * p)
        assert torch.equal(pids[: 2 * p], pids[2 * p:])
    for exp in bm.test_stream:
        reader = reference[exp.reid.dataset]
        assert exp.reid.samples == tuple(reader.test_pool) and exp.reid.protocol.name == "paper"
        assert exp.reid.protocol.group_by_tracklet == reader.protocol("paper").group_by_tracklet
        images = _batch(exp.dataset, 4)[0]
        assert images.shape == (min(4, len(exp.dataset)), 3, *SIZE)


def test_reader_options_reach_the_readers(synthetic_root):
    bm = vi_lreid_benchmark(synthetic_root, datasets=("llcm", "regdb"), img_size=SIZE,
                            reader_options={"llcm": {"max_train_label": 1}, "regdb": {"trial": 2}})
    assert bm.reid_datasets == ["llcm", "regdb"]
    assert bm.train_stream[0].reid.num_identities == 1  # published LLCM quirk (c): labels < max_train_label
    assert bm.train_stream[1].reid.label_offset == 1
    with pytest.raises(ValueError, match="trial"):
        vi_lreid_benchmark(synthetic_root, datasets=("regdb",), reader_options={"regdb": {"trial": 11}})


def test_image_cache_plan_takes_training_sets_first_and_guards_the_limit():
    from ckda_avalanche.benchmarks.image_store import CacheLimitError
    from ckda_avalanche.benchmarks.streams import plan_image_cache

    per_image = 3 * 32 * 16
    splits = [("RegDB", "train", 10), ("SYSU-MM01", "train", 20), ("RegDB", "test", 5), ("SYSU-MM01", "test", 30)]
    plan = plan_image_cache(splits, img_size=SIZE, cache="auto", limit=36 * per_image)
    assert plan == {("RegDB", "train"): "memory", ("SYSU-MM01", "train"): "memory", ("RegDB", "test"): "memory",
                    ("SYSU-MM01", "test"): "off"}
    assert set(plan_image_cache(splits, img_size=SIZE, cache="memory", limit=65 * per_image).values()) == {"memory"}
    assert set(plan_image_cache(splits, img_size=SIZE, cache="off", limit=10**12).values()) == {"off"}
    with pytest.raises(CacheLimitError) as error:
        plan_image_cache(splits, img_size=SIZE, cache="memory", limit=64 * per_image)
    message = str(error.value)
    for part in ("SYSU-MM01 test", "30 images", "32x16", f"{30 * per_image} bytes", f"{64 * per_image} bytes"):
        assert part in message
    with pytest.raises(ValueError, match="cache"):
        plan_image_cache(splits, img_size=SIZE, cache="ram", limit=1)


def test_stream_reports_where_images_come_from(readers):
    sizes = sum(len(r.train) + len(r.test_pool) for r in readers) * 3 * 32 * 16
    bm = vi_lreid_benchmark(readers=readers, img_size=SIZE, cache_limit_bytes=sizes)
    assert set(bm.reid_image_sources.values()) == {"memory"}
    train_only = sum(len(r.train) for r in readers) * 3 * 32 * 16
    bm = vi_lreid_benchmark(readers=readers, img_size=SIZE, cache="auto", cache_limit_bytes=train_only)
    assert bm.reid_image_sources == {f"{r.name}/{split}": "memory" if split == "train" else "file"
                                     for r in readers for split in ("train", "test")}
    assert list(bm.train_stream[0].dataset.image_cached) == [True] * len(readers[0].train)
    bm = vi_lreid_benchmark(readers=readers, img_size=SIZE, eval_transform=lambda img: torch.zeros(1))
    assert set(bm.reid_image_sources.values()) == {"pil"}
