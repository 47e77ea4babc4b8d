"""Every ```python block of the README runs as written (in a fresh process, in an empty folder)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_a_python_example():
    assert BLOCKS, "README.md has no ```python block"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path):
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(BLOCKS[index], encoding="utf-8")
    env = dict(os.environ, CKDA_DECODED_CACHE="off", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    if "seen mAP" in BLOCKS[index]:
        # The example prints the seen-average mAP and forgetting after the last session: both finite fractions.
        line = next(l for l in done.stdout.splitlines() if l.startswith("seen mAP"))
        values = [float(v) for v in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", line)]
        assert len(values) == 2 and 0.0 < values[0] <= 1.0 and -1.0 <= values[1] <= 1.0, line
        assert (tmp_path / "metrics.csv").stat().st_size > 0
