"""Own hostile probes of the `ckda` command beyond the listed faults: odd arguments, configs with wrong types or
unknown keys, environment variables, report sources named twice or unreadable, a held run lock, Ctrl-C. Each ends
in one ``ckda: error:`` line (nothing trained, nothing written) or in the numbers of a clean run. The table of these
probes is in docs/hostile_probes_cli.md.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from ckda_avalanche.cli import main

CONFIGS = {
    "yaml_wrong_type": ("train:\n  epochs: three\n", "train.epochs: expected an integer, got 'three'"),
    "yaml_unknown_key": ("trian:\n  epochs: 1\n", "unknown field 'trian'"),
    "yaml_top_level_list": ("- 1\n- 2\n", "expected a mapping of field names to values at the top level"),
    "yaml_syntax_error": ("train: {epochs: 1\n", "not valid YAML"),
    "json_trailing_comma": ('{"train": {"epochs": 1,},}', "not valid JSON"),
    "train_not_a_mapping": ("train: 5\n", "train: expected a mapping for TrainConfig, got 5"),
    "dataset_twice": ("datasets: [regdb, regdb]\n", "'regdb' listed twice"),
    "no_dataset": ("datasets: []\n", "datasets: expected at least one of"),
    "unknown_dataset": ("datasets: [regdb, market]\n", "unknown dataset 'market'"),
    "zero_epochs": ("train:\n  epochs: 0\n", "train.epochs: expected >= 1, got 0"),
    "nan_lr": ("train:\n  lr: .nan\n", "train.lr: expected a finite number, got nan"),
    "negative_scale": ("synthetic_scale: -1\n", "synthetic_scale: expected a finite number > 0"),
    "fractional_seed": ("synthetic_seed: 1.5\n", "synthetic_seed: expected an integer, got 1.5"),
    "bool_as_text": ("train:\n  equal_iterations: maybe\n", "expected true/false, got 'maybe'"),
    "unknown_protocol": ("protocol: fancy\n", "protocol: expected one of ['paper', 'full'], got 'fancy'"),
    "unknown_model": ("model: nosuch\n", "model: unknown model 'nosuch'"),
    "zero_eval_batch": ("eval_mb_size: 0\n", "eval_mb_size: expected an integer >= 1, got 0"),
    "unknown_amp": ("train:\n  amp: fp8\n", "train.amp: expected one of"),
    "zero_identities_per_batch": ("train:\n  num_identities: 0\n", "train.num_identities: expected >= 1, got 0"),
    "override_of_unknown_method": ("method_overrides:\n  nosuch: {a: 1}\n", "method_overrides.nosuch: unknown method"),
    "override_wrong_type": ("method_overrides:\n  finetune: {}\n  ewc:\n    ewc_lambda: high\n",
                            "method_overrides.ewc.ewc_lambda: expected a number, got 'high'"),
}

ARGUMENTS = {
    "seed_twice": (["--seeds", "0", "0"], "--seeds: seed 0 given twice"),
    "negative_seed": (["--seeds", "-1"], "--seeds: expected integers in [0, 4294967295], got -1"),
    "seed_over_32_bits": (["--seeds", str(2**32)], "got 4294967296"),
    "unknown_method": (["--methods", "finetune,nosuch"], "--methods: unknown method 'nosuch'"),
    "unknown_variant_flag": (["--methods", "ckda[bogus]"], "bogus"),
    "unknown_preset": (["--preset", "nosuch"], "unknown preset 'nosuch'"),
    "missing_config_file": (["--config", "nofile.yaml"], "config file does not exist"),
    "unknown_plot_format": (["--formats", "bmp"], "--formats: unknown plot format 'bmp'"),
    "unknown_device": (["--device", "tpu"], "--device tpu: expected auto, cpu, cuda or cuda:N"),
    "zero_cpus_per_run": (["--executor", "ray", "--cpus-per-run", "0"], "--cpus-per-run: expected a number > 0"),
    "negative_retries": (["--executor", "ray", "--max-retries", "-1"], "--max-retries: expected >= 0, got -1"),
    "gpu_fraction_over_one": (["--executor", "ray", "--gpus-per-run", "1.5"], "--gpus-per-run: a fraction"),
    "ray_address_without_ray": (["--ray-address", "auto"], "--ray-address needs --executor ray"),
    "override_without_resume": (["--resume-override"], "--resume-override: only meaningful with --resume"),
}


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("ckda: error: "), err
    return lines[0]


def _run(tmp_path: Path, *extra: str) -> int:
    args = ["run", "--preset", "test", "--methods", "finetune", "--synthetic-dir", str(tmp_path / "never"),
            "--out", str(tmp_path / "out"), "--no-progress"]
    for flag in ("--methods", "--preset", "--seeds"):  # a probe's own value replaces the default one
        if flag in extra and flag in args:
            del args[args.index(flag): args.index(flag) + 2]
    return main([*args, *extra])


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_a_bad_config_file_is_one_line_naming_the_field(tmp_path, capsys, monkeypatch, case):
    text, expected = CONFIGS[case]
    monkeypatch.chdir(tmp_path)
    path = tmp_path / ("config.json" if case.startswith("json") else "config.yaml")
    path.write_text(text)
    methods = "finetune,ewc" if "override" in case else "finetune"
    assert _run(tmp_path, "--config", str(path), "--methods", methods) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert path.name in line and expected in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "never").exists()


@pytest.mark.parametrize("case", sorted(ARGUMENTS))
def test_a_bad_argument_is_one_line(tmp_path, capsys, monkeypatch, case):
    extra, expected = ARGUMENTS[case]
    monkeypatch.chdir(tmp_path)
    assert _run(tmp_path, *extra) == 2
    assert expected in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "never").exists()


@pytest.mark.parametrize(("target", "expected"), [("file", "--out {path}: is a file"),
                                                   ("data", "--data {path}: not a folder")])
def test_out_or_data_naming_a_file_is_one_line(tmp_path, capsys, target, expected):
    path = tmp_path / "a_file"
    path.write_text("x")
    extra = ["--out", str(path)] if target == "file" else ["--data", str(path)]
    assert _run(tmp_path, *extra) == 2
    assert expected.format(path=path) in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(("args", "expected"), [
    (["--scale", "0"], "--scale: expected a finite number > 0, got 0.0"),
    (["--scale", "nan"], "--scale: expected a finite number > 0, got nan"),
    (["--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
])
def test_data_synth_with_bad_numbers_is_one_line(tmp_path, capsys, args, expected):
    assert main(["data", "synth", "--out", str(tmp_path / "syn"), *args]) == 2
    assert expected in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "syn").exists()


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("CKDA_DECODED_CACHE", "{file}", "is a file; expected a folder for the decoded-image store, or 'off'"),
    ("CKDA_KILL_AT", "whenever", "expected an instant such as session1:trained"),
])
def test_more_malformed_environment_variables_are_one_line(tmp_path, capsys, monkeypatch, variable, value,
                                                           expected):
    (tmp_path / "a_file").write_text("x")
    monkeypatch.setenv(variable, value.format(file=tmp_path / "a_file"))
    assert _run(tmp_path) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert variable in line and expected in line


def test_a_held_run_lock_refuses_a_second_command_in_one_line(tmp_path, capsys):
    from ckda_avalanche.runner.lock import RunLock

    with RunLock(tmp_path / "out"):
        assert _run(tmp_path) == 2
        line = _one_error_line(capsys.readouterr().err)
    assert str(os.getpid()) in line


# --- report sources: hand-made run folders (two sessions, two datasets) -----------------------------------------

def _hand_run(folder: Path, *, method: str, seed: int, shift: float) -> Path:
    rows = []
    for t in (1, 2):
        for d, dataset in enumerate(("regdb", "sysu")):
            for metric, extra in (("mAP", 0.0), ("Rank1", 0.1)):
                rows.append(dict(run="board", method=method, seed=seed, train_exp=t, eval_dataset=dataset,
                                 protocol="paper", trial="mean", metric=metric,
                                 value=round(0.3 + 0.1 * d + 0.05 * t + shift + extra, 4)))
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)
    train = {"epochs": 1, "epoch_length": "identities", "equal_iterations": True, "num_identities": 4,
             "num_instances": 2}
    (folder / "config.json").write_text(json.dumps({"method": method, "seed": seed, "run_config": {
        "model": "test", "pretrained": None, "train": train, "synthetic_scale": 0.15, "synthetic_seed": 0}}))
    return folder / "metrics.csv"


@pytest.fixture()
def hand_board(tmp_path: Path) -> Path:
    out = tmp_path / "board"
    for seed in (0, 1):
        _hand_run(out / "finetune" / f"seed{seed}", method="finetune", seed=seed, shift=0.01 * seed)
        _hand_run(out / "ewc" / f"seed{seed}", method="ewc", seed=seed, shift=0.05 + 0.01 * seed)
    return out


def test_a_folder_named_twice_is_ranked_once(hand_board, capsys):
    assert main(["leaderboard", str(hand_board), str(hand_board)]) == 0
    board = pd.read_csv(hand_board / "leaderboard.csv")
    assert sorted(board["method"]) == ["ewc", "finetune"] and set(board["seeds"]) == {2}
    assert "left out" not in capsys.readouterr().err


def test_a_csv_that_is_not_utf8_is_named(hand_board, capsys):
    damaged = hand_board / "ewc" / "seed1" / "metrics.csv"
    damaged.write_bytes(b"\xff\xfe" + damaged.read_bytes())
    assert main(["leaderboard", str(hand_board)]) == 0
    err = capsys.readouterr().err
    assert f"ckda: warning: {damaged} left out: not UTF-8 text" in err
    board = pd.read_csv(hand_board / "leaderboard.csv").set_index("method")
    assert board.loc["ewc", "seeds"] == 1 and board.loc["finetune", "seeds"] == 2


def test_a_run_without_its_config_is_not_ranked_with_run_folders(hand_board, capsys):
    (hand_board / "ewc" / "seed1" / "config.json").write_text("{not json")
    assert main(["leaderboard", str(hand_board)]) == 0
    err = capsys.readouterr().err
    # left out, once, by name: its draw (run_config.synthetic_seed) cannot be read from the broken config.json
    lines = [line for line in err.splitlines() if "ewc" in line and "seed1" in line]
    assert len(lines) == 1 and "left out" in lines[0] and "config.json" in lines[0], err


def test_board_out_naming_a_file_is_one_line(hand_board, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    assert main(["leaderboard", str(hand_board), "--out", str(tmp_path / "a_file")]) == 2
    assert str(tmp_path / "a_file") in _one_error_line(capsys.readouterr().err)


def test_a_board_of_only_damaged_csvs_is_one_line(tmp_path, capsys):
    (tmp_path / "r" / "finetune" / "seed0").mkdir(parents=True)
    (tmp_path / "r" / "finetune" / "seed0" / "metrics.csv").write_text("")
    assert main(["leaderboard", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "left out: empty file" in err and err.strip().splitlines()[-1].startswith("ckda: error: no run left")
