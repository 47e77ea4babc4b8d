"""The `ckda` command end to end on the `test` preset: run, leaderboard, plots, refusal to overwrite, data check."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from ckda_avalanche.cli import main
from ckda_avalanche.evaluation import TIDY_COLUMNS
from ckda_avalanche.runner.env_info import precision_name
from ckda_avalanche.strategies.precision import cpu_supports_bf16, resolve_amp_dtype


def _run(out: Path, root: Path, config: Path, *extra: str) -> int:
    return main(["run", "--preset", "test", "--methods", "finetune,ckda", "--seeds", "0", "--data", "synthetic",
                 "--synthetic-dir", str(root), "--config", str(config), "--out", str(out), "--no-progress",
                 *extra])


def test_run_writes_metrics_leaderboard_and_plots(tmp_path, tiny_synthetic_root, two_session_config, capsys):
    out = tmp_path / "run"
    assert _run(out, tiny_synthetic_root, two_session_config) == 0
    printed = capsys.readouterr().out
    assert "| 1 |" in printed and "plots:" in printed
    for method in ("finetune", "ckda"):
        run_dir = out / method / "seed0"
        for name in ("metrics.csv", "config.json", "env.json", "checkpoint.pt", "state.json"):
            assert (run_dir / name).is_file(), name
        frame = pd.read_csv(run_dir / "metrics.csv")
        assert tuple(frame.columns) == TIDY_COLUMNS
        maps = frame[(frame.metric == "mAP") & (frame.trial == "mean")]
        # two sessions x two datasets evaluated after each session
        assert sorted(zip(maps.train_exp, maps.eval_dataset)) == [
            (1, "regdb"), (1, "sysu"), (2, "regdb"), (2, "sysu")]
        assert maps.value.between(0, 1).all()
        assert (frame.metric == "train_time_s").sum() == 2
        # the precision the strategy ran in, in env.json and as one run-level CSV row per session
        expected = precision_name(resolve_amp_dtype("auto", torch.device("cpu")))
        env = json.loads((run_dir / "env.json").read_text())
        assert env["precision"] == expected and env["cpu_bf16"] == cpu_supports_bf16() and env["cpu_model"]
        assert frame[frame.metric.str.startswith("precision/")].metric.tolist() == [f"precision/{expected}"] * 2
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["method"]) == {"finetune", "ckda"}
    assert set(board["precision"]) == {precision_name(resolve_amp_dtype("auto", torch.device("cpu")))}
    assert (out / "leaderboard.md").read_text().count("\n|") >= 3
    pngs = sorted((out / "plots").glob("*.png"))
    assert pngs and all(p.stat().st_size > 5000 for p in pngs)

    # a second run into the same folder is refused, not silently overwritten
    assert _run(out, tiny_synthetic_root, two_session_config) == 2
    assert "--resume" in capsys.readouterr().err
    # --resume on a finished run redoes nothing and leaves the metrics unchanged
    before = (out / "ckda" / "seed0" / "metrics.csv").read_bytes()
    assert _run(out, tiny_synthetic_root, two_session_config, "--resume") == 0
    assert (out / "ckda" / "seed0" / "metrics.csv").read_bytes() == before


def test_leaderboard_and_plot_commands_read_only_the_csv(tmp_path, tiny_synthetic_root, two_session_config, capsys):
    out = tmp_path / "run"
    assert main(["run", "--preset", "test", "--methods", "finetune", "--data", "synthetic", "--synthetic-dir",
                 str(tiny_synthetic_root), "--config", str(two_session_config), "--out", str(out),
                 "--no-progress"]) == 0
    only_csv = tmp_path / "copy" / "finetune" / "seed0"
    only_csv.mkdir(parents=True)
    (only_csv / "metrics.csv").write_bytes((out / "finetune" / "seed0" / "metrics.csv").read_bytes())
    capsys.readouterr()
    assert main(["leaderboard", str(tmp_path / "copy")]) == 0
    assert "finetune" in capsys.readouterr().out
    assert main(["plot", str(tmp_path / "copy"), "--formats", "png", "svg"]) == 0
    written = capsys.readouterr().out.split()
    assert any(p.endswith(".svg") for p in written) and any(p.endswith(".png") for p in written)


def test_data_check_reports_synthetic_root_and_errors(tmp_path, tiny_synthetic_root, capsys):
    assert main(["data", "check", str(tiny_synthetic_root)]) == 0
    report = capsys.readouterr().out
    for name in ("regdb", "sysu", "llcm", "vcm"):
        assert name in report
    broken = tmp_path / "broken"
    (broken / "RegDB" / "idx").mkdir(parents=True)
    assert main(["data", "check", str(broken)]) == 1
    assert "ERROR" in capsys.readouterr().out


def test_bad_config_and_method_are_clear_errors(tmp_path, tiny_synthetic_root, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": {"epochs": "many"}}')
    assert main(["run", "--preset", "test", "--methods", "finetune", "--synthetic-dir", str(tiny_synthetic_root),
                 "--config", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "train.epochs: expected an integer" in capsys.readouterr().err
    assert main(["run", "--preset", "test", "--methods", "nosuchmethod", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ckda: error: --methods: unknown method 'nosuchmethod'" in err


def test_run_help_lists_every_method(capsys):
    from ckda_avalanche.cli import main
    from ckda_avalanche.strategies import registered_methods

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert {"ckda", "finetune", "joint", "lwf", "ewc", "replay", "l2p", "lstkc", "dkp"} <= set(registered_methods())
    for method in registered_methods():
        assert method in text.split("shorthands")[1]


def test_ranking_functions_import_from_the_evaluation_package():
    from ckda_avalanche.evaluation import evaluate_features, evaluate_rank
    from ckda_avalanche.evaluation.ranking import evaluate_features as f, evaluate_rank as r

    assert (evaluate_rank, evaluate_features) == (r, f)


def test_progress_bar_reads_the_loss_without_a_warning():
    import types
    import warnings

    import torch

    from ckda_avalanche.runner.progress import EpochProgressPlugin

    plugin = EpochProgressPlugin(label="x")
    loss = (torch.ones(2, requires_grad=True) * 3).sum()
    strategy = types.SimpleNamespace(dataloader=[0, 1], clock=types.SimpleNamespace(train_exp_counter=0,
                                     train_exp_epochs=0), train_epochs=1, loss=loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plugin.before_training_epoch(strategy)
        plugin.after_training_iteration(strategy)
        plugin.after_training_epoch(strategy)
