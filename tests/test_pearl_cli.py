"""PEARL from the command line: both configs train, resume exactly (replay and context buffers, encoder
and optimizers restored) and evaluate by posterior sampling next to SAC from scratch; bad input ends in
one sentence."""

import json
import math
from pathlib import Path

import pytest

from .conftest import assert_resume_is_exact, refused, run_script, tiny_run, train_tiny_config

CONFIGS = ("nav2d_pearl", "cheetah_vel_pearl")


@pytest.mark.parametrize("name", CONFIGS)
def test_every_pearl_config_trains_and_evaluates(name, tmp_path):
    run_dir = tmp_path / name
    checkpoint = train_tiny_config(name, run_dir)
    assert checkpoint["global_step"] == 3  # a step is an iteration
    assert {"replay_buffers", "context_buffers"} <= set(checkpoint)
    # four training tasks, each given its initial episode; the refreshed ones hold only their new context
    assert len(checkpoint["replay_buffers"]["tasks"]) == 4
    # every transition collected went to a task's RL buffer (none is full): the count of environment steps
    stored = sum(int(task["size"]) for task in checkpoint["replay_buffers"]["tasks"].values())
    assert checkpoint["environment_steps"] == stored > 0
    with open(next((run_dir / "csv").glob("version_*/metrics.csv"))) as file:
        header = file.readline()
    for metric in ("train/return_prior", "train/return_posterior", "train/kl", "train/encoder_loss",
                   "train/environment_steps",
                   "val/return", "val/return_prior", "val/return_posterior"):  # fmt: skip
        assert metric in header, metric
    evaluated = run_script(
        "evaluate.py", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--tasks", "2", "--steps", "2",
        "--episodes", "2",
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(next((run_dir / "evaluation").glob("*.json")).read_text())
    assert set(report["return"]) == {"PEARL", "SAC from scratch"}
    assert report["x_values"] == [1, 2]
    assert all(math.isfinite(r["mean"]) for curve in report["return"].values() for r in curve)
    assert Path(report["files"]["return_plot"]).read_bytes()[:4] == b"\x89PNG"


def test_resume_is_exact(tmp_path):
    """Stopped after 2 of 4 iterations and resumed, a run ends where an uninterrupted one does."""
    assert_resume_is_exact(lambda run: tiny_run("nav2d_pearl", run, 4), tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--model.init_args.kl_weight", "-0.1"], "kl_weight must not be negative"),
        (["--model.init_args.context_size", "0"], "context_size must be positive"),
        (["--model.init_args.posterior_episodes", "-1"], "posterior_episodes must not be negative"),
        (["--data.init_args.train_tasks", "null"], "set data.train_tasks"),
        (["--trainer.accelerator", "gpu"], "the trainer settings cannot run here"),
    ],
)
def test_bad_input_ends_in_one_sentence(override, message, tmp_path, capsys):
    assert message in refused([*tiny_run("nav2d_pearl", tmp_path / "run", 1), *override], capsys)
