"""MAML for RL from the command line: every MAML-RL config trains, resumes exactly and evaluates; a short
run on 2D navigation learns; bad input ends in one sentence."""

import json
import math
from pathlib import Path

import gymnasium as gym
import pytest
import pytorch_lightning as pl
import torch

from lit_meta.cli import main as train_main
from lit_meta.datamodules import RLTaskDataModule
from lit_meta.evaluate import main as evaluate_main
from lit_meta.modules import MAMLRLModule

from .conftest import assert_resume_is_exact, refused, run_script, tiny_run, train_tiny_config

CONFIGS = {
    "nav2d_maml_rl": "meta-learned init",
    "nav2d_pretrained_rl": "pretrained init",
    "cheetah_vel_maml_rl": "meta-learned init",
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_maml_rl_config_trains_and_evaluates(name, tmp_path):
    run_dir = tmp_path / name
    checkpoint = train_tiny_config(name, run_dir)
    assert checkpoint["global_step"] == 2
    # iterations x tasks x episodes per batch x batches (one per inner step, one after), each at most the
    # horizon long (2D navigation ends early at the goal, HalfCheetah never does)
    inner_steps = 0 if CONFIGS[name] == "pretrained init" else checkpoint["hyper_parameters"]["inner_steps"]
    env_id = checkpoint["datamodule_hyper_parameters"]["env"]
    most = 2 * 2 * 2 * (inner_steps + 1) * gym.spec(env_id).max_episode_steps
    assert 0 < checkpoint["environment_steps"] <= most
    assert checkpoint["environment_steps"] == most or "Navigation" in env_id
    with open(next((run_dir / "csv").glob("version_*/metrics.csv"))) as file:
        header = file.readline()
    assert "val/return" in header and "train/return_before" in header
    assert "train/environment_steps" in header
    assert ("train/return_after" in header) == (CONFIGS[name] == "meta-learned init")

    evaluated = run_script(
        "evaluate.py", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"),
        "--tasks", "2", "--steps", "2", "--episodes", "2",
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(next((run_dir / "evaluation").glob("*.json")).read_text())
    assert set(report["return"]) == {CONFIGS[name], "random init"}
    assert report["x_values"] == [0, 1, 2] and [r["step"] for r in report["return"]["random init"]] == [
        0,
        1,
        2,
    ]
    assert all(math.isfinite(r["mean"]) for curve in report["return"].values() for r in curve)
    assert Path(report["files"]["return_plot"]).read_bytes()[:4] == b"\x89PNG"
    assert f"{CONFIGS[name]}:" in evaluated.stdout and "random init:" in evaluated.stdout


@pytest.mark.parametrize(
    ("name", "extra"),
    [(name, []) for name in sorted(CONFIGS)] + [("nav2d_maml_rl", ["--model.init_args.outer_epochs", "2"])],
)
def test_resume_is_exact(name, extra, tmp_path):
    """Stopped after 2 of 4 meta-iterations and resumed, a run ends where an uninterrupted one does
    (with several outer epochs too: a global step is a meta-iteration, not an optimizer step)."""
    assert_resume_is_exact(lambda run: tiny_run(name, run, 4, *extra), tmp_path)


def test_short_maml_rl_run_on_navigation_improves_post_adaptation_return():
    """Thirty meta-iterations of MAML on 2D navigation: the return after one adaptation step on held-out
    goals beats the same measure of the initial policy by a wide margin (a random policy wanders
    around −45 per episode; moving towards the goal after one step earns far more)."""
    pl.seed_everything(0)
    data = RLTaskDataModule(env="lit_meta/Navigation2D-v0", meta_batch_size=10, epoch_length=30, seed=0)
    module = MAMLRLModule(episodes_per_task=10, hidden_sizes=[32, 32], seed=0, eval_episodes=10)
    module.check_data(data)
    held_out = data.eval_tasks("test", 10)
    start = module.adaptation_curves(held_out, 1, None, "test", ("meta-learned init",))["meta-learned init"]
    trainer = pl.Trainer(
        max_steps=30, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module, data)
    end = module.adaptation_curves(held_out, 1, None, "test", ("meta-learned init",))["meta-learned init"]
    gain = (end[:, 1] - start[:, 1]).numpy()
    assert gain.mean() > 10, (start[:, 1].mean(), end[:, 1].mean())
    assert (gain > 0).mean() >= 0.8
    # (whether the one adaptation step itself adds return is measured by bench/nav2d_maml_rl.py: after
    # 30 meta-iterations it is still within the noise of 10 episodes per task)


def test_every_initialisation_is_scored_on_the_same_episodes():
    """The random-init curve is the same whether asked alone or next to the learned one, and the same
    for two checkpoints of the same task family trained with different seeds."""
    data = RLTaskDataModule(env="lit_meta/Navigation2D-v0", meta_batch_size=2, seed=0)
    first, second = MAMLRLModule(hidden_sizes=[8], seed=1), MAMLRLModule(hidden_sizes=[8], seed=2)
    first.check_data(data)
    second.check_data(data)
    tasks = data.eval_tasks("test", 3)
    both = first.adaptation_curves(tasks, 1, 4, "test")
    alone = first.adaptation_curves(tasks, 1, 4, "test", ("random init",))
    other = second.adaptation_curves(tasks, 1, 4, "test")
    assert torch.equal(both["random init"], alone["random init"])
    assert torch.equal(both["random init"], other["random init"])
    assert not torch.equal(both["meta-learned init"], other["meta-learned init"])  # different policies


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--data.init_args.env", "lit_meta/Nope-v0"], "unknown task environment 'lit_meta/Nope-v0'"),
        (["--model.init_args.algorithm", "trpo"], "unknown algorithm 'trpo'"),
        (["--model.init_args.inner_steps", "0"], "inner_steps must be positive"),
        (["--model.init_args.clip_range", "1.5"], "clip_range must be in (0, 1)"),
        (
            ["--model.init_args.algorithm", "pretrained", "--model.init_args.inner_steps", "2"],
            "the pretrained baseline trains without adaptation",
        ),
        (["--trainer.accelerator", "gpu"], "the trainer settings cannot run here"),
        (["--data.init_args.ranges", "{goal_z: [0.0, 0.1]}"], "has no task parameter 'goal_z'"),
        (["--data.init_args.ranges", "{goal_x: [0.5, 0.1]}"], "must have low <= high"),
    ],
)
def test_bad_input_ends_in_one_sentence(override, message, tmp_path, capsys):
    assert message in refused([*tiny_run("nav2d_maml_rl", tmp_path / "run", 1), *override], capsys)


def test_module_and_data_seeds_may_differ(tmp_path):
    assert train_main([*tiny_run("nav2d_maml_rl", tmp_path / "run", 1), "--seed_everything", "1"]) == 0
    checkpoint = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    assert (
        checkpoint["hyper_parameters"]["seed"] == 1 and checkpoint["datamodule_hyper_parameters"]["seed"] == 0
    )


def test_a_task_outside_the_family_bounds_is_refused(tmp_path, capsys):
    override = ["--data.init_args.ranges", "{velocity: [2.0, 3.0]}"]
    assert "must lie within [0.0, 2.0]" in refused(
        [*tiny_run("cheetah_vel_maml_rl", tmp_path / "run", 1), *override], capsys
    )


def test_evaluate_refuses_zero_adaptation_steps(tmp_path, capsys):
    assert train_main(tiny_run("nav2d_maml_rl", tmp_path / "run", 1)) == 0
    capsys.readouterr()
    assert evaluate_main(["--ckpt", str(tmp_path / "run/checkpoints/last.ckpt"), "--steps", "0"]) == 2
    assert "steps must be positive" in capsys.readouterr().err
