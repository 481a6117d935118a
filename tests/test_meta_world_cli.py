"""Meta-World's ML1 reach from the command line: PEARL, MAML-RL and RL² train on its training goals with
their success rate logged next to the return, and evaluate.py scores the test goals with the success rate
per step and its confidence interval."""

import math
from pathlib import Path

import pytest

from lit_meta.envs import UNAVAILABLE_TASK_ENVS

from .conftest import evaluate_last_checkpoint, train_tiny_config

ML1 = "lit_meta/MetaWorldML1-v0"
pytestmark = pytest.mark.skipif(ML1 in UNAVAILABLE_TASK_ENVS, reason=UNAVAILABLE_TASK_ENVS.get(ML1, ""))
CONFIGS = {
    "ml1_reach_pearl": ("PEARL", "success_rate_prior"),
    "ml1_reach_maml_rl": ("meta-learned init", "success_rate_before"),
    "ml1_reach_rl2": ("RL²", "success_rate_last"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_ml1_config_trains_logs_success_and_evaluates_on_the_test_goals(name, tmp_path):
    learner, extra_metric = CONFIGS[name]
    run_dir = tmp_path / name
    train_tiny_config(name, run_dir)
    with open(next((run_dir / "csv").glob("version_*/metrics.csv"))) as file:
        header = file.readline().strip().split(",")
    for metric in ("train/success_rate", "val/success_rate", f"val/{extra_metric}", "val/return"):
        assert metric in header, metric
    report = evaluate_last_checkpoint(run_dir, "--tasks", "2", "--steps", "2", "--episodes", "2")
    assert report["split"] == "test" and report["data"]["env"] == ML1
    final = report["final_success_rate"][learner]
    assert 0.0 <= final["mean"] <= 1.0 and math.isfinite(final["ci"])
    assert len(report["success_rate"][learner]) == len(report["return"][learner])
    assert Path(report["files"]["success_plot"]).read_bytes()[:4] == b"\x89PNG"
