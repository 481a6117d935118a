"""PEARL from the command line: both configs train, resume exactly (replay and context buffers, encoder
and optimizers restored) and evaluate by posterior sampling next to SAC from scratch; bad input ends in
one sentence."""

import math
import re
from pathlib import Path

import pytest
import torch

from lit_meta.errors import ConfigError
from lit_meta.modules import PEARLModule
from lit_meta.registry import rebuild

from .conftest import (
    assert_resume_is_exact,
    evaluate_last_checkpoint,
    refused,
    tiny_run,
    train_tiny_config,
)

FULL = ["--model.init_args.posterior_covariance", "full"]
REWARD_DECODER = ["--model.init_args.encoder_objective", "critic_and_reward"]
DEVIATIONS = ["--model.init_args.context_deviations", "true"]

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
    report = evaluate_last_checkpoint(run_dir, "--tasks", "2", "--steps", "2", "--episodes", "2")
    assert set(report["return"]) == {"PEARL", "SAC from scratch"}
    assert report["environment_steps"] == checkpoint["environment_steps"]
    assert report["x_values"] == [1, 2]
    assert all(math.isfinite(r["mean"]) for curve in report["return"].values() for r in curve)
    assert Path(report["files"]["return_plot"]).read_bytes()[:4] == b"\x89PNG"


def test_resume_is_exact(tmp_path):
    """Stopped after 2 of 4 iterations and resumed, a run ends where an uninterrupted one does."""
    assert_resume_is_exact(lambda run: tiny_run("nav2d_pearl", run, 4), tmp_path)


def test_posterior_context_episodes_sampled_adaptation_and_a_target_entropy_resume_exactly_and_evaluate(
    tmp_path,
):
    extra = [
        "--model.init_args.posterior_context_episodes",
        "1",
        "--model.init_args.adaptation_actions",
        "sampled",
        "--model.init_args.target_entropy",
        "0.0",
    ]
    straight, _ = assert_resume_is_exact(lambda run: [*tiny_run("nav2d_pearl", run, 4), *extra], tmp_path)
    report = evaluate_last_checkpoint(straight, "--tasks", "2", "--steps", "2", "--episodes", "2")
    assert all(math.isfinite(r["mean"]) for curve in report["return"].values() for r in curve)
    checkpoint = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    module, _ = rebuild(checkpoint, "the run")  # the agent and SAC from scratch aim at 0 nats per dimension
    assert module.agent.sac.target_entropy == pytest.approx(2 * math.log(0.1))
    # evaluate.py may play the same checkpoint's held-out episodes with mean actions instead; the report
    # says so, and its curve is the module's own when rebuilt with that option
    options = ["--model_options", "{adaptation_actions: deterministic}"]
    mean_actions = evaluate_last_checkpoint(
        straight, "--tasks", "2", "--steps", "2", "--episodes", "2", *options
    )
    assert mean_actions["model_options"] == {"adaptation_actions": "deterministic"}
    assert mean_actions["adaptation_actions"] == "deterministic" and report["adaptation_actions"] == "sampled"
    assert report["model_options"] == {}
    rebuilt, data = rebuild(checkpoint, "the run", options={"adaptation_actions": "deterministic"})
    tasks = data.eval_tasks("test", 2)
    expected = rebuilt.adaptation_curves(tasks, 2, 2, "test")["PEARL"].mean(0)
    assert [r["mean"] for r in mean_actions["return"]["PEARL"]] == pytest.approx(expected.tolist())
    assert [r["mean"] for r in report["return"]["PEARL"]] != pytest.approx(expected.tolist())
    with pytest.raises(ConfigError, match="the PEARLModule option adaptation_actions cannot be 'mean'"):
        rebuild(checkpoint, "the run", options={"adaptation_actions": "mean"})
    with pytest.raises(ConfigError, match="adaptation_actions must be deterministic or sampled, got 'mean'"):
        PEARLModule(adaptation_actions="mean")


def test_an_unknown_covariance_or_encoder_objective_is_refused_when_the_module_is_built():
    """From Python too, not only through the CLI's choices, and before any data is bound."""
    message = "posterior_covariance must be one of ('diagonal', 'full'), got 'dense'"
    with pytest.raises(ConfigError, match=re.escape(message)):
        PEARLModule(posterior_covariance="dense")
    message = "encoder_objective must be one of ('critic', 'reward', 'critic_and_reward'), got 'value'"
    with pytest.raises(ConfigError, match=re.escape(message)):
        PEARLModule(encoder_objective="value")


def test_full_factors_context_deviations_and_a_reward_decoder_train_resume_exactly_and_evaluate(tmp_path):
    straight, _ = assert_resume_is_exact(
        lambda run: [*tiny_run("nav2d_pearl", run, 4), *FULL, *REWARD_DECODER, *DEVIATIONS], tmp_path
    )
    checkpoint = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["posterior_covariance"] == "full"
    assert checkpoint["hyper_parameters"]["encoder_objective"] == "critic_and_reward"
    assert checkpoint["hyper_parameters"]["context_deviations"] is True
    encoder = [v for k, v in checkpoint["state_dict"].items() if k.startswith("agent.encoder")]
    # the encoder reads each (s, a, r, s') of navigation (2 + 2 + 1 + 2) and its deviation from the mean
    assert encoder[0].shape[1] == 2 * 7
    # the encoder's last layer: a mean and a diagonal entry per latent dimension, and the 10 entries below
    assert encoder[-1].shape == (2 * 5 + 10,)
    # the decoder reads (s, a, s', z) of navigation (2 + 2 + 2 + 5) and predicts one reward
    decoder = [v for k, v in checkpoint["state_dict"].items() if k.startswith("agent.reward_decoder")]
    assert decoder[0].shape[1] == 11 and decoder[-1].shape == (1,)
    with open(next((straight / "csv").glob("version_*/metrics.csv"))) as file:
        assert "train/reward_decoder_loss" in file.readline()
    report = evaluate_last_checkpoint(straight, "--tasks", "2", "--steps", "2", "--episodes", "2")
    assert all(math.isfinite(r["mean"]) for curve in report["return"].values() for r in curve)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--model.init_args.kl_weight", "-0.1"], "kl_weight must not be negative"),
        (["--model.init_args.context_size", "0"], "context_size must be positive"),
        (["--model.init_args.posterior_episodes", "-1"], "posterior_episodes must not be negative"),
        (
            ["--model.init_args.posterior_context_episodes", "-1"],
            "posterior_context_episodes must not be negative",
        ),
        (["--model.init_args.target_entropy", "0.7"], "target_entropy must be below log 2 = 0.693 nats"),
        (["--model.init_args.encoder_objective", "value"], "encoder_objective"),
        (["--data.init_args.train_tasks", "null"], "set data.train_tasks"),
        (["--trainer.accelerator", "gpu"], "the trainer settings cannot run here"),
    ],
)
def test_bad_input_ends_in_one_sentence(override, message, tmp_path, capsys):
    assert message in refused([*tiny_run("nav2d_pearl", tmp_path / "run", 1), *override], capsys)


def test_short_pearl_run_on_navigation_learns_to_use_its_context():
    """Thirty iterations on 2D navigation with three training goals: episodes 2 and 3 of posterior
    sampling, played with z from the posterior of the episodes before, score far above episode 1, played
    with z from the prior (the goal unknown): the encoder tells the goals apart from one episode of
    context and the policy goes where z says. (Seeds 0, 1 and 2 gain 24, 22 and 11; the prior's
    episode stays where an agent that does not know the goal belongs, near the start.) Three goals do not
    cover the plane: generalising to held-out goals takes the configs' 40 and a longer run
    (docs/benchmarks.md)."""
    import pytorch_lightning as pl
    import torch

    from lit_meta.datamodules import RLTaskDataModule
    from lit_meta.modules import PEARLModule

    data = RLTaskDataModule(
        env="lit_meta/Navigation2D-v0", train_tasks=3, meta_batch_size=1, epoch_length=30, val_tasks=1, seed=0
    )
    module = PEARLModule(
        hidden_sizes=[32, 32], encoder_hidden_sizes=[32, 32], tasks_per_iteration=3, prior_episodes=1,
        posterior_episodes=1, gradient_steps=40, task_batch_size=3, context_size=64, batch_size=64, seed=0,
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-3),
    )  # fmt: skip
    trainer = pl.Trainer(
        max_steps=30, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module, data)
    curve = module.adaptation_curves(module.train_tasks, 3, 4, "test", ("PEARL",))["PEARL"]
    prior, posterior = curve[:, 0].mean().item(), curve[:, 1:].mean().item()
    assert posterior > prior + 8, (prior, posterior)


def tiny_navigation_pearl(**overrides):
    """A PEARL module on two navigation goals, one refreshed per iteration, small enough for a test."""
    from lit_meta.datamodules import RLTaskDataModule
    from lit_meta.modules import PEARLModule

    data = RLTaskDataModule(
        env="lit_meta/Navigation2D-v0", train_tasks=2, meta_batch_size=1, epoch_length=2, val_tasks=1, seed=0
    )
    settings = dict(
        hidden_sizes=[16], encoder_hidden_sizes=[16], initial_episodes=1, tasks_per_iteration=1,
        prior_episodes=1, posterior_episodes=0, gradient_steps=2, task_batch_size=2, context_size=8,
        batch_size=8, seed=0,
    )  # fmt: skip
    return PEARLModule(**{**settings, **overrides}), data


def fit_iterations(module, data, iterations: int) -> None:
    import pytorch_lightning as pl

    pl.Trainer(
        max_steps=iterations, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    ).fit(module, data)  # fmt: skip


def test_posterior_context_episodes_fill_the_context_buffer_with_posterior_episodes():
    """The paper code's ``num_steps_posterior``: a refreshed task's context buffer holds its prior episode
    and then an episode played with z from the posterior of that context, in its RL buffer too; without
    them (the default) it holds the prior episode alone, the same one."""
    sizes = {}
    for extra in (0, 1):
        module, data = tiny_navigation_pearl(posterior_context_episodes=extra)
        calls, collect = [], module.collect
        module.collect = lambda *args, log=calls, play=collect: log.append(args) or play(*args)
        fit_iterations(module, data, 1)
        refreshed = calls[-1][0] if extra == 0 else calls[-2][0]
        sizes[extra] = (module.context_replay.size(refreshed), module.rl_replay.size(refreshed))
        flags = [(posterior, into_context) for _, _, _, posterior, into_context in calls]
        # the initial episodes of both goals, then the prior episode, then (with extra) the posterior one
        assert flags == [(False, True)] * 3 + [(True, True)] * extra, flags
    (context_alone, rl_alone), (context, rl) = sizes[0], sizes[1]
    assert context > context_alone > 0 and rl - rl_alone == context - context_alone


@pytest.mark.parametrize("actions", ["deterministic", "sampled"])
def test_adaptation_plays_mean_or_sampled_actions_as_configured(actions):
    """``adaptation_actions`` decides how every episode of posterior sampling on a new task is played, and
    it matters: mean and sampled actions score differently on the same task and seeds."""
    module, data = tiny_navigation_pearl(adaptation_actions=actions)
    fit_iterations(module, data, 1)
    played, policy = [], module.agent.policy
    module.agent.policy = lambda latent, deterministic=False: (
        played.append(deterministic) or policy(latent, deterministic)
    )
    torch.manual_seed(0)
    returns = module.posterior_sampling(module.train_tasks[0], seed=5, steps=3, trials=2)
    assert played == [actions == "deterministic"] * 3
    module.agent.policy = policy
    module.hparams.adaptation_actions = "sampled" if actions == "deterministic" else "deterministic"
    torch.manual_seed(0)
    assert module.posterior_sampling(module.train_tasks[0], seed=5, steps=3, trials=2) != returns


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--model.init_args.latent_size", "3"], "trained with latent_size=5"),
        (FULL, "trained with posterior_covariance='diagonal'"),
        (REWARD_DECODER, "trained with encoder_objective='critic'"),
        (
            ["--data.init_args.env", "lit_meta/PendulumTask-v0"],
            "trained on other observation or action spaces",
        ),
    ],
)
def test_a_checkpoint_of_another_size_is_refused(override, message, tmp_path, capsys):
    from lit_meta.cli import main as train_main

    assert train_main(tiny_run("nav2d_pearl", tmp_path / "run", 1)) == 0
    capsys.readouterr()
    args = [*tiny_run("nav2d_pearl", tmp_path / "run", 2), *override, "--ckpt_path", "last"]
    assert message in refused(args, capsys)
