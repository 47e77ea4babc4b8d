"""Session-1 parity (issue "Correct numerics"): in its first session no method has anything to protect, so every
method whose first session is plain training must give bit-identical metrics for the same seed and model: the
baselines those of fine-tuning (the plain ViT), CKDA those of fine-tuning with CKDA's pixel prompters.

Joint and Replay used to differ: they reset the classifier a second time (to span every identity seen so far), which
drew new random weights and shifted the random stream of the whole session.
"""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.runner.config import TEST
from ckda_avalanche.runner.session_runner import run_single
from ckda_avalanche.runner.task import RunTask

PLAIN_FIRST_SESSION = {"finetune": "finetune", "ewc": "finetune", "lwf": "finetune", "lstkc": "finetune",
                       "dkp": "finetune", "joint": "finetune", "replay": "finetune",
                       "finetune[pixel_prompts]": "finetune[pixel_prompts]", "ckda": "finetune[pixel_prompts]"}
"""Method -> the fine-tuning run whose first session it must reproduce."""


@pytest.fixture(scope="module")
def session1_scores(tiny_synthetic_root, tmp_path_factory):
    config = dataclasses.replace(TEST, datasets=("regdb",), train=dataclasses.replace(TEST.train, amp="off"))
    benchmark = vi_lreid_benchmark(tiny_synthetic_root, datasets=config.datasets, img_size=(64, 32))
    out = tmp_path_factory.mktemp("parity")
    scores = {}
    for method in PLAIN_FIRST_SESSION:
        task = RunTask.create(method, 3, out / method / "seed3", config, run_name="parity", device="cpu")
        frame = pd.read_csv(run_single(task, benchmark))
        frame = frame[(frame.eval_dataset != "-") & ~frame.metric.str.contains("forgetting|bwt", regex=True)]
        scores[method] = frame.set_index(["eval_dataset", "trial", "metric"])["value"].sort_index()
    return scores


@pytest.mark.parametrize("method", [m for m, ref in PLAIN_FIRST_SESSION.items() if m != ref])
def test_session1_metrics_are_bit_identical_to_finetune(session1_scores, method):
    reference = session1_scores[PLAIN_FIRST_SESSION[method]]
    assert len(reference) > 0 and reference.index.get_level_values("metric").str.contains("mAP").any()
    got = session1_scores[method]
    assert list(got.index) == list(reference.index)
    assert got.tolist() == reference.tolist(), f"{method}: {got[got != reference]} vs {reference[got != reference]}"


def test_the_pixel_prompters_change_the_first_session(session1_scores):
    """The two reference groups are different models, so their scores differ (else the grouping proves nothing)."""
    plain, prompted = session1_scores["finetune"], session1_scores["finetune[pixel_prompts]"]
    assert list(plain.index) == list(prompted.index) and plain.tolist() != prompted.tolist()
