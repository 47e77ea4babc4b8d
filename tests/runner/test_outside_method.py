"""A method from outside the package, installed through the ``ckda_avalanche.methods`` entry point.

The method is the complete example of docs/adding_a_method.md, taken from that page as written: the test installs it
in a throw-away folder (a module plus a ``*.dist-info`` with the entry point, which is what ``pip install`` leaves)
and drives the real ``ckda`` command in fresh processes, as a user would.
"""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "adding_a_method.md"
CLI = "import sys; from ckda_avalanche.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def installed_outside_method(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = DOC.read_text(encoding="utf-8")
    module = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    toml = re.findall(r"```toml\n(.*?)```", text, flags=re.S)[0]
    # the page's pyproject table is what the test installs: group, name and object as written there
    group = re.search(r'\[project\.entry-points\."([^"]+)"\]', toml).group(1)
    name, target = re.search(r'^(\w+) = "([\w.:]+)"$', toml, flags=re.M).groups()
    assert (group, name, target) == ("ckda_avalanche.methods", "anchor", "anchor_method:Anchor")
    site = tmp_path_factory.mktemp("site")
    (site / "anchor_method.py").write_text(module, encoding="utf-8")
    dist = site / "anchor_method-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: anchor-method\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(f"[{group}]\n{name} = {target}\n", encoding="utf-8")
    return site


def _ckda(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
               CKDA_DECODED_CACHE="off", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", CLI, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_outside_method_is_listed_by_run_help(installed_outside_method, tmp_path):
    done = _ckda(installed_outside_method, "run", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = " ".join(done.stdout.split()).split("methods:")[-1]
    assert re.search(r"\banchor\b", listed), listed


@pytest.mark.slow
def test_outside_method_runs_to_a_leaderboard_row(installed_outside_method, tiny_synthetic_root,
                                                  two_session_config, tmp_path):
    out = tmp_path / "out"
    done = _ckda(installed_outside_method, "run", "--preset", "test", "--data", str(tiny_synthetic_root),
                 "--config", str(two_session_config), "--methods", "finetune,anchor,anchor[weight=100]",
                 "--seeds", "0", "--executor", "local", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "leaderboard.csv", newline="") as fh:
        methods = {row["method"] for row in csv.DictReader(fh)}
    assert {"finetune", "anchor", "anchor[weight=100]"} <= methods
    with open(out / "anchor" / "seed0" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_session = {(r["metric"], r["train_exp"]): float(r["value"]) for r in rows if r["eval_dataset"] == "-"}
    # session 1 has no anchor yet; session 2 pulls towards session 1's weights (a positive squared distance)
    assert by_session[("loss/anchor", "1")] == 0.0 and by_session[("loss/anchor", "2")] > 0.0
    assert by_session[("memory_bytes/AnchorPlugin/parameters", "2")] > 0
    assert (out / "anchor[weight=100]" / "seed0" / "config.json").exists()
