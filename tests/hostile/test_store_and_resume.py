"""Hostile probes of the decoded-image store, the tidy CSV, checkpoints and --resume (docs/hostile_probes.md,
section "store and resume"): every case ends with the numbers of a clean run or one line saying what to do.

Images expected from the store are decoded independently (a cache with no store); CSV rows expected after a resume
are the rows the CSV held before it (nothing re-computed by the code under test)."""
from __future__ import annotations

import gc
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import ckda_avalanche.runner.run_folder as run_folder
from ckda_avalanche.benchmarks.byte_sizes import parse_bytes
from ckda_avalanche.benchmarks.decoded_store import DecodedStoreWarning
from ckda_avalanche.benchmarks.image_store import MemoryImageCache, default_cache_limit, shared_memory_cache
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.cli import main
from ckda_avalanche.runner.lock import RunLock

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = (32, 16)
METHOD = "finetune"
KEY = ["train_exp", "eval_dataset", "protocol", "trial", "metric"]
SCORES = {"mAP", "Rank1", "Rank5", "Rank10", "mINP", "forgetting/mAP", "forgetting/Rank1", "bwt/mAP", "bwt/Rank1"}


# ----------------------------------------------------------------------------------------------------------- store
def _bmp_images(folder: Path, n: int = 6, seed: int = 0) -> list[str]:
    """``n`` BMP files of one size (as RegDB's are) in two identity folders, all with one modification time."""
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n):
        path = folder / f"id{k % 2}" / f"img{k}.bmp"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(40, 20, 3), dtype=np.uint8)).save(path)
        os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        paths.append(str(path))
    assert len({os.path.getsize(p) for p in paths}) == 1
    return paths


def _decoded_without_store(paths: list[str]) -> list[torch.Tensor]:
    """What decoding gives now (the reference: a cache that never saw a store)."""
    cache = MemoryImageCache(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic").fill(threads=1)
    return [cache.get(k) for k in range(len(paths))]


def _process_cache(paths: list[str]) -> MemoryImageCache:
    gc.collect()  # no cache of an earlier "process" is alive
    return shared_memory_cache(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic")


def _swap(a: str, b: str) -> None:
    """``mv a tmp; mv b a; mv tmp b``, then the same modification time on both (an archive unpacked again)."""
    stamp = os.stat(a).st_mtime_ns
    os.rename(a, a + ".tmp")
    os.rename(b, a)
    os.rename(a + ".tmp", b)
    for path in (a, b):
        os.utime(path, ns=(stamp, stamp))


@pytest.fixture()
def store(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "store"
    monkeypatch.setenv("CKDA_DECODED_CACHE", str(folder))
    return folder


def test_images_swapped_between_identities_with_the_same_size_and_time_are_decoded_again(tmp_path, store):
    paths = _bmp_images(tmp_path / "data")
    _process_cache(paths).fill(threads=1)  # first run: fills the store
    assert len(list(store.glob("*.pt"))) == 1
    _swap(paths[0], paths[1])  # two identities exchange an image: same paths, sizes and times
    loaded = _process_cache(paths)
    expected = _decoded_without_store(paths)
    assert all(torch.equal(loaded.get(k), expected[k]) for k in range(len(paths)))
    assert not torch.equal(expected[0], _decoded_without_store([paths[1]])[0])  # the swap did change image 0


def test_a_store_file_with_overwritten_bytes_warns_once_and_is_rebuilt(tmp_path, store):
    paths = _bmp_images(tmp_path / "data")
    _process_cache(paths).fill(threads=1)
    (stored,) = store.glob("*.pt")
    data = bytearray(stored.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 2048] = b"\xff" * 2048  # inside the images' record
    stored.write_bytes(bytes(data))
    with pytest.warns(DecodedStoreWarning) as caught:
        cache = _process_cache(paths)
        cache.get(0)
    assert len(caught) == 1 and str(stored) in str(caught[0].message) and "\n" not in str(caught[0].message)
    assert "checksum" in str(caught[0].message)
    expected = _decoded_without_store(paths)
    assert all(torch.equal(cache.get(k), expected[k]) for k in range(len(paths)))
    del cache  # as in a new process
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = _process_cache(paths)  # rewritten: loads without a warning and without decoding
        assert again.decodes == 0 and all(torch.equal(again.get(k), expected[k]) for k in range(len(paths)))


def test_probe_a_file_swapped_inside_one_process_is_decoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("CKDA_DECODED_CACHE", "off")
    paths = _bmp_images(tmp_path / "data")
    first = shared_memory_cache(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic")
    first.fill(threads=1)  # still alive: a second dataset over the same files would share it
    _swap(paths[2], paths[3])
    second = shared_memory_cache(paths, dataset="RegDB", img_size=SIZE, interpolation="bicubic")
    expected = _decoded_without_store(paths)
    assert second is not first and torch.equal(second.get(2), expected[2]) and torch.equal(second.get(3), expected[3])


def test_probe_an_image_edited_in_place_with_its_time_set_back_is_decoded_again(tmp_path, store):
    paths = _bmp_images(tmp_path / "data")
    _process_cache(paths).fill(threads=1)
    stamp = os.stat(paths[4]).st_mtime_ns
    with open(paths[4], "r+b") as handle:  # same size, new pixels (the BMP pixel array ends the file)
        handle.seek(-600, os.SEEK_END)
        handle.write(bytes(range(256)) * 2 + bytes(88))
    os.utime(paths[4], ns=(stamp, stamp))
    expected = _decoded_without_store(paths)
    assert torch.equal(_process_cache(paths).get(4), expected[4])


@pytest.mark.parametrize("damage", ["truncated", "other_file_list"])
def test_probe_a_truncated_or_foreign_store_file_warns_and_is_rebuilt(tmp_path, store, damage):
    paths = _bmp_images(tmp_path / "data")
    _process_cache(paths).fill(threads=1)
    (stored,) = store.glob("*.pt")
    if damage == "truncated":
        stored.write_bytes(stored.read_bytes()[: stored.stat().st_size // 2])
    else:  # the store of other images copied under this file's name
        others = _bmp_images(tmp_path / "other", seed=1)
        shutil.rmtree(store)
        _process_cache(others).fill(threads=1)
        (other,) = store.glob("*.pt")
        os.replace(other, stored)
    with pytest.warns(DecodedStoreWarning, match=str(stored)):
        cache = _process_cache(paths)
    expected = _decoded_without_store(paths)
    assert all(torch.equal(cache.get(k), expected[k]) for k in range(len(paths)))


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "-1", "lots", "1e999"])
@pytest.mark.parametrize("variable", ["CKDA_DECODED_CACHE_MAX", "CKDA_DATA_CACHE_LIMIT"])
def test_probe_odd_byte_sizes_in_the_environment_name_the_variable(tmp_path, store, monkeypatch, variable, text):
    monkeypatch.setenv(variable, text)
    with pytest.raises(ValueError, match=rf"\${variable}: expected a number of bytes .*{text!r}"):
        if variable == "CKDA_DATA_CACHE_LIMIT":
            default_cache_limit()
        else:
            _process_cache(_bmp_images(tmp_path / "data"))


def test_probe_byte_sizes_people_write_are_read():
    assert [parse_bytes(t, "x") for t in ("1e3", "2G", "500M", "1.5KiB", " 7 ", "0")] == [
        1000, 2 * 1024**3, 500 * 1024**2, 1536, 7, 0]


@pytest.mark.parametrize("setting", ["OFF", " off ", "max0", "file"])
def test_probe_store_switched_off_limited_to_nothing_or_unwritable_gives_the_same_images(tmp_path, monkeypatch,
                                                                                       setting):
    paths = _bmp_images(tmp_path / "data")
    folder = tmp_path / "store"
    if setting == "max0":
        monkeypatch.setenv("CKDA_DECODED_CACHE", str(folder))
        monkeypatch.setenv("CKDA_DECODED_CACHE_MAX", "0")
    elif setting == "file":  # the store's folder is a regular file: one warning, the run goes on
        folder.write_text("not a folder")
        monkeypatch.setenv("CKDA_DECODED_CACHE", str(folder / "decoded"))
    else:
        monkeypatch.setenv("CKDA_DECODED_CACHE", setting)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = _process_cache(paths).fill(threads=1)
    expected = _decoded_without_store(paths)
    assert all(torch.equal(cache.get(k), expected[k]) for k in range(len(paths)))
    store_warnings = [w for w in caught if issubclass(w.category, DecodedStoreWarning)]
    assert len(store_warnings) == (1 if setting == "file" else 0)
    assert not (folder.is_dir() and list(folder.glob("*.pt")))


# ---------------------------------------------------------------------------------------------- runs and resume
@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synthetic")
    generate_synthetic(path, seed=0, scale=0.15)
    return path


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "two_sessions.json"
    path.write_text(json.dumps({"datasets": ["regdb", "sysu"], "synthetic_scale": 0.15}))
    return path


def _run(out: Path, root: Path, config: Path, *extra: str, seed: int = 0) -> int:
    return main(["run", "--preset", "test", "--methods", METHOD, "--seeds", str(seed), "--data", str(root),
                 "--config", str(config), "--out", str(out), "--no-progress", "--keep-session-checkpoints",
                 "--formats", "png", *extra])


def _eval(out: Path, root: Path, *extra: str) -> int:
    return main(["eval", str(out), "--data", str(root), *extra])


def _copy(source: Path, to: Path) -> Path:
    shutil.copytree(source, to)
    return to


def _frame(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    return frame[frame.metric.isin(SCORES)].sort_values(KEY).reset_index(drop=True)


def _one_error_line(err: str, *parts: str) -> None:
    assert err.count("\n") == 1 and err.startswith("ckda: error: "), err
    for part in parts:
        assert part in err, err


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, root, config) -> Path:
    """OUT of a run whose process stopped right after session 1 of 2 was saved."""
    out = tmp_path_factory.mktemp("interrupted") / "run"

    def stop_after_session_1(instant: str) -> None:
        if instant == "session1:state":
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_folder, "kill_point", stop_after_session_1)
        assert _run(out, root, config) == 130
    return out


@pytest.fixture(scope="module")
def finished(tmp_path_factory, interrupted, root, config) -> Path:
    """The interrupted run, resumed to the end."""
    out = _copy(interrupted, tmp_path_factory.mktemp("finished") / "run")
    assert _run(out, root, config, "--resume") == 0
    return out


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, finished, root) -> Path:
    """The finished run re-scored by `ckda eval --protocol full`."""
    out = _copy(finished, tmp_path_factory.mktemp("evaluated") / "run")
    assert _eval(out, root, "--protocol", "full") == 0
    return out


def _csv(out: Path) -> Path:
    return out / METHOD / "seed0" / "metrics.csv"


def test_resume_keeps_the_rows_ckda_eval_added(evaluated, root, config, tmp_path, caplog):
    out = _copy(evaluated, tmp_path / "run")
    before = pd.read_csv(_csv(out))
    assert (before.protocol == "full").sum() > 0
    assert _run(out, root, config, "--resume") == 0
    after = pd.read_csv(_csv(out))
    pd.testing.assert_frame_equal(after.sort_values(KEY).reset_index(drop=True),
                                  before.sort_values(KEY).reset_index(drop=True))
    assert "differed from the copy" not in caplog.text and not list(_csv(out).parent.glob("metrics.csv.bak*"))


@pytest.mark.parametrize("damage", ["deleted", "edited"])
def test_a_csv_rebuilt_from_the_checkpoint_keeps_the_rows_ckda_eval_added(evaluated, root, config, tmp_path,
                                                                         damage):
    out = _copy(evaluated, tmp_path / "run")
    csv = _csv(out)
    before = pd.read_csv(csv)
    if damage == "deleted":
        csv.unlink()
    else:  # a training row edited by hand: the checkpoint's copy of the training rows comes back
        frame = before.copy()
        frame.loc[(frame.protocol == "paper") & (frame.metric == "mAP"), "value"] = 0.999
        frame.to_csv(csv, index=False)
    assert _run(out, root, config, "--resume") == 0
    after = pd.read_csv(csv)
    pd.testing.assert_frame_equal(after.sort_values(KEY).reset_index(drop=True),
                                  before.sort_values(KEY).reset_index(drop=True))


def test_probe_ckda_eval_twice_then_resume_loses_and_repeats_nothing(evaluated, root, config, tmp_path):
    out = _copy(evaluated, tmp_path / "run")
    before = pd.read_csv(_csv(out))
    assert _eval(out, root, "--protocol", "full") == 0
    assert _run(out, root, config, "--resume") == 0
    after = pd.read_csv(_csv(out))
    assert len(after) == len(before) and not after.duplicated(KEY).any()


def test_resume_on_other_data_is_refused_with_a_one_line_diff(interrupted, root, config, tmp_path, capsys):
    out = _copy(interrupted, tmp_path / "run")
    other = _copy(root, tmp_path / "other_data")
    # one RegDB training image of another size (session 1 trained on RegDB)
    train_list = (other / "RegDB" / "idx" / "train_visible_1.txt").read_text().split()[0]
    Image.new("RGB", (40, 100), (5, 6, 7)).save(other / "RegDB" / train_list)
    run_dir = out / METHOD / "seed0"

    def files() -> dict[str, bytes]:  # attempts.jsonl records the (refused) start
        return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name != "attempts.jsonl"}

    before = files()
    capsys.readouterr()
    assert _run(out, other, config, "--resume") == 2
    _one_error_line(capsys.readouterr().err, f"{run_dir / 'data.json'}: --resume with other data",
                    "regdb.train_fingerprint", "--resume-override")
    assert files() == before  # nothing touched


def test_probe_resume_on_data_of_another_synthetic_seed_is_refused(interrupted, root, config, tmp_path, capsys):
    out = _copy(interrupted, tmp_path / "run")
    other = _copy(root, tmp_path / "other_data")
    marker = json.loads((other / "SYNTHETIC.json").read_text())
    (other / "SYNTHETIC.json").write_text(json.dumps({**marker, "seed": 5}))
    capsys.readouterr()
    assert _run(out, other, config, "--resume") == 2
    _one_error_line(capsys.readouterr().err, "synthetic.seed 0 -> 5")


def test_probe_resume_override_on_other_data_continues_and_records_it(interrupted, root, config, tmp_path):
    out = _copy(interrupted, tmp_path / "run")
    other = _copy(root, tmp_path / "other_data")
    marker = json.loads((other / "SYNTHETIC.json").read_text())
    (other / "SYNTHETIC.json").write_text(json.dumps({**marker, "seed": 5}))
    assert _run(out, other, config, "--resume", "--resume-override") == 0
    record = json.loads((out / METHOD / "seed0" / "data.json").read_text())
    assert record["overrides"][0]["after_session"] == 1
    assert record["overrides"][0]["changed"] == {"synthetic.seed": [0, 5]}


def test_probe_a_moved_data_root_resumes_to_the_clean_runs_numbers(interrupted, finished, root, config, tmp_path):
    out = _copy(interrupted, tmp_path / "run")
    moved = _copy(root, tmp_path / "moved")
    assert _run(out, moved, config, "--resume") == 0
    pd.testing.assert_frame_equal(_frame(_csv(out)), _frame(_csv(finished)))
    record = json.loads((out / METHOD / "seed0" / "data.json").read_text())
    assert record["root"] == str(moved) and record["moved_from"] == [str(root)]


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_probe_a_missing_or_unreadable_data_record(finished, root, config, tmp_path, capsys, damage):
    out = _copy(finished, tmp_path / "run")
    record = out / METHOD / "seed0" / "data.json"
    expected = json.loads(record.read_text())
    if damage == "deleted":
        record.unlink()
        assert _run(out, root, config, "--resume") == 0  # recorded now, from the data this resume reads
        assert json.loads(record.read_text())["datasets"] == expected["datasets"]
    else:
        record.write_text("{not json")
        capsys.readouterr()
        assert _run(out, root, config, "--resume") == 2
        _one_error_line(capsys.readouterr().err, f"{record}: unreadable")


def test_a_damaged_checkpoint_is_refused_with_one_line(interrupted, root, config, tmp_path, capsys):
    out = _copy(interrupted, tmp_path / "run")
    checkpoint = out / METHOD / "seed0" / "checkpoint.pt"
    data = bytearray(checkpoint.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = b"\xff" * 4096
    checkpoint.write_bytes(bytes(data))
    capsys.readouterr()
    assert _run(out, root, config, "--resume") == 2
    _one_error_line(capsys.readouterr().err, f"{checkpoint}: damaged checkpoint", "delete it")


def test_probe_a_truncated_checkpoint_is_refused_with_one_line(interrupted, root, config, tmp_path, capsys):
    out = _copy(interrupted, tmp_path / "run")
    checkpoint = out / METHOD / "seed0" / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    capsys.readouterr()
    assert _run(out, root, config, "--resume") == 2
    _one_error_line(capsys.readouterr().err, str(checkpoint))


def test_probe_a_checkpoint_copied_from_another_seed_is_refused(interrupted, root, config, tmp_path, capsys):
    out = _copy(interrupted, tmp_path / "run")
    seed1 = out / METHOD / "seed1"
    shutil.copytree(out / METHOD / "seed0", seed1)  # as if seed 1 had been interrupted after session 1 ...
    record = json.loads((seed1 / "config.json").read_text())
    (seed1 / "config.json").write_text(json.dumps({**record, "seed": 1}))  # ... with seed 0's checkpoint
    capsys.readouterr()
    assert _run(out, root, config, "--resume", seed=1) == 2
    _one_error_line(capsys.readouterr().err, f"{seed1 / 'checkpoint.pt'}: holds the state of finetune seed 0")


def test_probe_a_damaged_kept_session_model_stops_ckda_eval_with_one_line(finished, root, tmp_path, capsys):
    out = _copy(finished, tmp_path / "run")
    kept = out / METHOD / "seed0" / "sessions" / "session2.pt"
    data = bytearray(kept.read_bytes())
    data[len(data) // 2: len(data) // 2 + 4096] = b"\xff" * 4096
    kept.write_bytes(bytes(data))
    before = _csv(out).read_bytes()
    capsys.readouterr()
    assert _eval(out, root, "--protocol", "full") == 2
    _one_error_line(capsys.readouterr().err, f"{kept}: damaged kept session model")
    assert _csv(out).read_bytes() == before


def test_probe_ckda_eval_on_a_folder_in_use_is_refused(finished, root, tmp_path, capsys):
    out = _copy(finished, tmp_path / "run")
    before = _csv(out).read_bytes()
    with RunLock(out, command="ckda run ... (test)"):
        capsys.readouterr()
        assert _eval(out, root, "--protocol", "full") == 2
    _one_error_line(capsys.readouterr().err, f"{out}: in use by PID {os.getpid()}")
    assert _csv(out).read_bytes() == before


def test_probe_ckda_eval_on_other_data_is_refused(finished, root, tmp_path, capsys):
    out = _copy(finished, tmp_path / "run")
    other = _copy(root, tmp_path / "other_data")
    test_ids = [int(t) for t in (other / "SYSU-MM01" / "exp" / "test_id.txt").read_text().replace("\n", ",").split(",")
                if t.strip()]
    image = sorted((other / "SYSU-MM01").glob(f"cam*/{test_ids[0]:04d}/*.jpg"))[0]
    Image.new("RGB", (30, 90), (1, 2, 3)).save(image)  # one SYSU-MM01 test image of another size
    before = _csv(out).read_bytes()
    capsys.readouterr()
    assert _eval(out, other, "--protocol", "full") == 2
    _one_error_line(capsys.readouterr().err, "is not the data this run trained on", "sysu.test_fingerprint")
    assert _csv(out).read_bytes() == before


def test_a_run_after_images_were_swapped_scores_like_a_run_without_the_store(root, tmp_path, monkeypatch):
    """The reported case end to end: run, swap same-size RegDB test images between identities (one time
    everywhere), run again with the store: the scores equal a run with CKDA_DECODED_CACHE=off."""
    data = _copy(root, tmp_path / "data")
    config = tmp_path / "regdb.json"
    config.write_text(json.dumps({"datasets": ["regdb"], "synthetic_scale": 0.15}))
    store = tmp_path / "store"
    for image in (data / "RegDB").rglob("*.bmp"):  # unpacked from an archive: one time everywhere
        os.utime(image, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))

    def run(name: str, cache: str) -> pd.DataFrame:
        monkeypatch.setenv("CKDA_DECODED_CACHE", cache)
        gc.collect()  # no process cache of the previous run is alive
        assert _run(tmp_path / name, data, config) == 0
        return _frame(_csv(tmp_path / name)).drop(columns=["run"])

    first = run("first", str(store))
    lines = (data / "RegDB" / "idx" / "test_visible_1.txt").read_text().split("\n")
    by_id: dict[str, list[str]] = {}
    for line in filter(None, lines):
        path = line.split()[0]  # Visible/<identity>/<file>.bmp
        by_id.setdefault(path.split("/")[1], []).append(str(data / "RegDB" / path))
    ids = sorted(by_id)
    for a, b in zip(ids[0::2], ids[1::2]):  # one image of each identity pair trades places
        _swap(by_id[a][0], by_id[b][0])
    with_store = run("second", str(store))
    without = run("off", "off")
    pd.testing.assert_frame_equal(with_store, without)
    assert not first.value.equals(without.value)  # the swap did change the scores


def test_data_record_compares_sessions_by_the_stream_order_not_the_file_order():
    """``data.json`` is written with sorted keys, so a stream whose session order is not alphabetical (sysu before
    regdb) reads back in another order. A resume of that same data must see no change, and "not trained yet" must
    mean the later session of the stream (regdb), not the later key of the file."""
    import json as _json

    from ckda_avalanche.runner.data_record import data_changes

    def fields(tag):
        return {"train_images": 10, "train_fingerprint": f"tr-{tag}", "test_images": 4, "test_fingerprint": f"te-{tag}"}

    record = {"root": "/d", "synthetic": None, "datasets": {"sysu": fields("s"), "regdb": fields("r")}}
    stored = _json.loads(_json.dumps(record, sort_keys=True))
    assert list(stored["datasets"]) == ["regdb", "sysu"]
    assert data_changes(stored, record, trained=1) == []
    repaired = {**record, "datasets": {"sysu": fields("s"), "regdb": {**fields("r"), "train_fingerprint": "new"}}}
    assert data_changes(stored, repaired, trained=1) == []  # regdb (session 2) not trained yet: may be repaired
    edited = {**record, "datasets": {"sysu": {**fields("s"), "train_fingerprint": "new"}, "regdb": fields("r")}}
    assert data_changes(stored, edited, trained=1) == [("sysu.train_fingerprint", "tr-s", "new")]
