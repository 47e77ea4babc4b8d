"""A variant run on the `test` preset with ``--keep-session-checkpoints``, then ``ckda eval``: its own folder, row and
config; re-scoring the paper protocol reproduces the training-time rows exactly; the full protocol adds its rows;
the CSV merge never duplicates and refuses to change a value silently."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ckda_avalanche.cli import main
from ckda_avalanche.evaluation import TIDY_COLUMNS
from ckda_avalanche.reporting import load_tidy
from ckda_avalanche.runner.overrides import ConfigError
from ckda_avalanche.runner.reevaluate import RescoreConflictError, eval_datasets, merge_rows, protocol_label
from ckda_avalanche.strategies import CKDAConfig

VARIANT = "ckda[no_cka+no_merge]"
KEY = ["train_exp", "eval_dataset", "protocol", "trial", "metric"]


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory, tiny_synthetic_root) -> Path:
    """OUT of `ckda run --methods ckda[no_merge+no_cka]` (written in non-canonical order) over RegDB -> SYSU-MM01."""
    base = tmp_path_factory.mktemp("variant")
    config = base / "two_sessions.json"
    config.write_text(json.dumps({"datasets": ["regdb", "sysu"], "synthetic_scale": 0.15}))
    out = base / "run"
    assert main(["run", "--preset", "test", "--methods", "ckda[no_merge+no_cka]", "--seeds", "0", "--data",
                 "synthetic", "--synthetic-dir", str(tiny_synthetic_root), "--config", str(config), "--out", str(out),
                 "--no-progress", "--keep-session-checkpoints", "--formats", "png"]) == 0
    return out


def _copy(variant_run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(variant_run / VARIANT, target / VARIANT)
    return target


def _eval(run: Path, root: Path, *extra: str) -> int:
    return main(["eval", str(run), "--synthetic-dir", str(root), *extra])


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEY).reset_index(drop=True)


def test_variant_run_has_its_own_folder_row_config_and_session_models(variant_run):
    run_dir = variant_run / VARIANT / "seed0"
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["method"] == VARIANT and saved["base_method"] == "ckda"
    expected = dataclasses.asdict(CKDAConfig(no_cka=True, no_merge=True))
    assert saved["method_config"] == expected and len(expected) > 20  # every field, resolved
    frame = pd.read_csv(run_dir / "metrics.csv")
    assert set(frame["method"]) == {VARIANT}
    assert list(pd.read_csv(variant_run / "leaderboard.csv")["method"]) == [VARIANT]
    assert [p.name for p in sorted((run_dir / "sessions").iterdir())] == ["session1.pt", "session2.pt"]
    model_bytes = frame[(frame.metric == "memory_bytes/strategy/model") & (frame.train_exp == 2)]["value"].item()
    assert model_bytes <= (run_dir / "sessions" / "session2.pt").stat().st_size < 2 * model_bytes


def test_eval_paper_reproduces_the_training_metrics_exactly(variant_run, tiny_synthetic_root, tmp_path, capsys):
    run = _copy(variant_run, tmp_path)
    csv = run / VARIANT / "seed0" / "metrics.csv"
    original = pd.read_csv(csv)
    # forget the scores of session 2: eval must write them again, identical, and not duplicate those of session 1
    dropped = (original.train_exp == 2) & (original.eval_dataset != "-")
    original[~dropped].to_csv(csv, index=False)
    capsys.readouterr()
    assert _eval(run, tiny_synthetic_root, "--protocol", "paper") == 0
    kept_scores = int(((original.train_exp == 1) & (original.eval_dataset != "-")).sum())
    assert f"{int(dropped.sum())} new row(s), {kept_scores} identical, 0 replaced" in capsys.readouterr().out
    restored = pd.read_csv(csv)
    pd.testing.assert_frame_equal(_sorted(restored), _sorted(original))  # exact values, same rows, no duplicates
    assert (restored.protocol == "paper").all()

    # another test-dataset set: its own protocol label; per-dataset rows equal the full set's
    assert _eval(run, tiny_synthetic_root, "--protocol", "paper", "--datasets", "regdb") == 0
    subset = pd.read_csv(csv)
    subset = subset[subset.protocol == "paper@regdb"]
    assert set(subset.eval_dataset) == {"regdb", "seen_avg"}
    per_dataset = subset[subset.eval_dataset == "regdb"].assign(protocol="paper")
    both = per_dataset.merge(original, on=KEY, suffixes=("", "_train"))
    assert len(both) == len(per_dataset) > 0 and (both.value == both.value_train).all()


def test_eval_full_adds_the_full_protocol_rows(variant_run, tiny_synthetic_root, tmp_path):
    run = _copy(variant_run, tmp_path)
    csv = run / VARIANT / "seed0" / "metrics.csv"
    before = pd.read_csv(csv)
    assert _eval(run, tiny_synthetic_root) == 0  # --protocol full is the default
    after = load_tidy(csv)  # raises on a row measured twice
    pd.testing.assert_frame_equal(_sorted(after[after.protocol == "paper"][list(before.columns)]).astype(before.dtypes),
                                  _sorted(before))  # the paper rows are untouched
    full = after[after.protocol == "full"]
    # docs/protocol.md: RegDB both directions of its trial; SYSU-MM01 10 trials x {all, indoor} x
    # {single, multi}-shot
    assert set(full[full.eval_dataset == "regdb"].trial) == {"mean", "vis2ir/trial1", "ir2vis/trial1"}
    assert set(full[full.eval_dataset == "sysu"].trial) == {"mean"} | {
        f"{search}/{shot}/trial{t}" for search in ("all", "indoor") for shot in ("single", "multi")
        for t in range(10)}
    # the paper trials are trials of the full protocol too: same features, same values
    paper_trials = before[(before.trial != "mean") & (before.trial != "-")]
    same = paper_trials.merge(full, on=["train_exp", "eval_dataset", "trial", "metric"], suffixes=("", "_full"))
    assert len(same) == len(paper_trials) > 0 and (same.value == same.value_full).all()
    # seen average after session 2 = mean of the two datasets' trial means (by hand)
    means = full[(full.trial == "mean") & (full.metric == "mAP") & (full.train_exp == 2)]
    seen = full[(full.eval_dataset == "seen_avg") & (full.metric == "mAP") & (full.train_exp == 2)]["value"].item()
    assert seen == pytest.approx(np.mean(means[means.eval_dataset.isin(["regdb", "sysu"])]["value"]), abs=1e-12)
    assert ((full.metric == "forgetting/mAP") & (full.eval_dataset == "seen_avg")).sum() == 1
    assert not (full.metric == "train_time_s").any()


def test_eval_refuses_a_run_without_every_kept_session(variant_run, tiny_synthetic_root, tmp_path, capsys):
    run = _copy(variant_run, tmp_path)
    (run / VARIANT / "seed0" / "sessions" / "session2.pt").unlink()
    before = (run / VARIANT / "seed0" / "metrics.csv").read_bytes()
    assert _eval(run, tiny_synthetic_root) == 2
    err = capsys.readouterr().err
    assert "session(s) [2]" in err and "--keep-session-checkpoints" in err
    assert (run / VARIANT / "seed0" / "metrics.csv").read_bytes() == before
    assert _eval(tmp_path / "nowhere", tiny_synthetic_root) == 2


def _tidy(path: Path, rows: list[tuple]) -> None:
    lines = [",".join(TIDY_COLUMNS)] + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def test_merge_rows_appends_skips_and_refuses_changes(tmp_path):
    csv = tmp_path / "metrics.csv"
    _tidy(csv, [("r", "m", 0, 1, "regdb", "paper", "mean", "mAP", 0.5),
                ("r", "m", 0, 1, "-", "paper", "-", "train_time_s", 3.0)])
    new = [["r", "m", "0", "1", "regdb", "full", "mean", "mAP", "0.25"]]
    same = [["r", "m", "0", "1", "regdb", "paper", "mean", "mAP", "0.5"]]
    counts = merge_rows(csv, new + same)
    assert (counts.new, counts.identical, counts.replaced) == (1, 1, 0)
    assert merge_rows(csv, new + same) == type(counts)(new=0, identical=2, replaced=0)
    frame = pd.read_csv(csv)
    assert len(frame) == 3 and list(frame.protocol) == ["paper", "paper", "full"]
    changed = [["r", "m", "0", "1", "regdb", "paper", "mean", "mAP", "0.75"]]
    before = csv.read_bytes()
    with pytest.raises(RescoreConflictError, match="0.5 in the CSV, 0.75 now"):
        merge_rows(csv, changed)
    assert csv.read_bytes() == before
    assert merge_rows(csv, changed, replace=True).replaced == 1
    assert pd.read_csv(csv)["value"].tolist() == [0.75, 3.0, 0.25]
    nan = [["r", "m", "0", "2", "regdb", "paper", "mean", "mAP", "nan"]]
    merge_rows(csv, nan)
    assert merge_rows(csv, nan).identical == 1  # NaN equals NaN


def test_test_dataset_sets_and_labels():
    trained = ["regdb", "sysu", "llcm"]
    assert eval_datasets(trained, None) == trained
    assert eval_datasets(trained, ["regdb", "sysu"]) == ["regdb", "sysu"]
    assert eval_datasets(["regdb"], ["regdb", "vcm", "llcm"]) == ["regdb", "vcm", "llcm"]  # untrained ones follow
    for bad in (["sysu"], ["regdb", "llcm"], ["vcm", "regdb"], ["regdb", "regdb"], ["mars"], []):
        with pytest.raises(ConfigError, match="--datasets"):
            eval_datasets(trained, bad)
    assert protocol_label("full", trained, trained) == "full"
    assert protocol_label("paper", trained, ["regdb", "sysu"]) == "paper@regdb+sysu"


@pytest.mark.parametrize("recorded, model_config, expected", [
    (None, {"use_msp": True, "use_mcp": True}, {"pixel_prompts": True}),  # old fine-tuning run: prompters on
    (None, None, {"pixel_prompts": True}),  # older still: no model record; every baseline but L2P had them
    ({"alpha": 1.0}, {"use_msp": False, "use_mcp": False}, {"alpha": 1.0, "pixel_prompts": False}),
    ({"pixel_prompts": False}, {"use_msp": True, "use_mcp": True}, {"pixel_prompts": False}),  # recorded wins
])
def test_runs_from_before_pixel_prompts_load_with_the_model_they_had(recorded, model_config, expected):
    from ckda_avalanche.runner.reevaluate import with_legacy_pixel_prompts
    from ckda_avalanche.strategies import CKDAConfig, LwFConfig

    saved = {"method_config": recorded, "model_config": model_config}
    assert with_legacy_pixel_prompts(LwFConfig, saved) == expected
    ckda = {"method_config": {"beta": 1.0}, "model_config": {"use_msp": False}}
    assert with_legacy_pixel_prompts(CKDAConfig, ckda) == {"beta": 1.0}  # CKDA has no such field: untouched


def test_show_draws_the_kept_models_and_ranks_as_the_metrics_do(variant_run, tiny_synthetic_root, tmp_path):
    from ckda_avalanche.evaluation.distance import cosine_distance
    from ckda_avalanche.evaluation.modality_gap import MODALITY_GAP_METRICS, modality_gap
    from ckda_avalanche.reporting.ranked_lists import ranked_rows
    from ckda_avalanche.runner.show import session_features

    run_dir = variant_run / VARIANT / "seed0"
    out = tmp_path / "pictures"
    assert main(["show", str(variant_run), "--dataset", "regdb", "--sessions", "1", "2", "--queries", "3",
                 "--top-k", "4", "--embedding", "pca", "--synthetic-dir", str(tiny_synthetic_root),
                 "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["features_regdb_ckda_no_cka_no_merge__seed0_pca.png",
                     "ranked_regdb_vis2ir_trial1_ckda_no_cka_no_merge__seed0_s1-2.png"]
    assert all((out / n).stat().st_size > 5_000 for n in names)

    # the features and ranks behind the picture are those of the training-time metrics (session 2, RegDB)
    found = session_features(run_dir, dataset="regdb", sessions=[2], data_root=tiny_synthetic_root)
    trial = found.protocol.trials(found.pool)[0]
    pids = np.array([s.pid for s in found.pool])
    cams = np.array([s.camid for s in found.pool])
    feats = found.features[2]
    dist = cosine_distance(feats[trial.query], feats[trial.gallery]).numpy()
    rows = [r for r in ranked_rows(dist, pids[trial.query], pids[trial.gallery], cams[trial.query],
                                   cams[trial.gallery], rule=trial.rule, top_k=1) if r.valid]
    csv = pd.read_csv(run_dir / "metrics.csv")
    at = csv[(csv.train_exp == 2) & (csv.eval_dataset == "regdb") & (csv.trial == trial.name)]
    assert np.mean([r.first_match_rank == 1 for r in rows]) == pytest.approx(
        at[at.metric == "Rank1"]["value"].item(), abs=1e-12)
    assert np.mean([r.ap for r in rows]) == pytest.approx(at[at.metric == "mAP"]["value"].item(), abs=1e-6)
    gap = modality_gap(feats, pids, [s.modality for s in found.pool])
    logged = csv[(csv.train_exp == 2) & (csv.eval_dataset == "regdb") & csv.metric.isin(MODALITY_GAP_METRICS)]
    assert dict(zip(logged.metric, logged.value)) == pytest.approx(gap, abs=1e-12)
