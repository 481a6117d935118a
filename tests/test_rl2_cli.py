"""RL² from the command line: the bandit config trains, resumes exactly and evaluates against the bandit
baselines; checkpoints of other models are refused; a short training beats random play."""

import csv
import json
from pathlib import Path

import pytest
import torch

from lit_meta.checkpoints import load_checkpoint
from lit_meta.cli import main as train_main
from lit_meta.evaluation.bandit_baselines import BANDIT_BASELINES
from lit_meta.registry import rebuild

from .conftest import (
    QUIET,
    ROOT,
    assert_resume_is_exact,
    evaluate_last_checkpoint,
    refused,
    run_script,
    tiny_run,
)
from .reference_runs import assert_parameters_as_recorded, tiny_run_args

CONFIG = str(ROOT / "configs" / "bandits_rl2.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 2-step run of the config, trained in a subprocess exactly as a user would."""
    run_dir = tmp_path_factory.mktemp("rl2") / "run"
    result = run_script("train.py", *tiny_run_args("bandits_rl2", run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_parameters_as_recorded("bandits_rl2", run_dir / "checkpoints" / "last.ckpt")
    return run_dir


def test_the_config_trains_and_evaluates_against_the_bandit_baselines(trained):
    checkpoint = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2  # one trainer step per meta-iteration, not per PPO minibatch
    assert checkpoint["environment_steps"] == 2 * 8 * 10  # iterations x trials x pulls (one step each)
    with open(next((trained / "csv").glob("version_*/metrics.csv"))) as file:
        header = file.readline()
    for metric in (
        "train/trial_return",
        "train/episode_return_first",
        "train/episode_return_last",
        "train/environment_steps",
        "val/return",
    ):
        assert metric in header, metric

    evaluated = run_script(
        "evaluate.py", "--ckpt", str(trained / "checkpoints" / "last.ckpt"), "--tasks", "3", "--episodes", "2"
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(next((trained / "evaluation").glob("*.json")).read_text())
    assert set(report["return"]) == {"RL²", *BANDIT_BASELINES, "random"}
    assert set(report["tuned_baselines"]) == {
        "ε-greedy, 10 pulls",
        "UCB1 (tuned), 10 pulls",
        "Gittins index, 10 pulls",
    }
    assert report["learner"] == "RL²" and report["x_label"] == "episode of the trial"
    assert report["x_values"] == list(range(1, 11))  # the config's 10 pulls per trial
    for curve in report["return"].values():
        assert len(curve) == 10 and all(0.0 <= r["mean"] <= 1.0 for r in curve)
    assert Path(report["files"]["return_plot"]).read_bytes()[:4] == b"\x89PNG"
    assert "RL²:" in evaluated.stdout and "Thompson sampling:" in evaluated.stdout
    per_task_total = {name: sum(r["mean"] for r in curve) for name, curve in report["return"].items()}
    for name, total in report["total"].items():  # a trial's cumulative reward, printed for bandits
        assert total["mean"] == pytest.approx(per_task_total[name])
        assert f"cumulative return of a trial, {name}:" in evaluated.stdout


@pytest.mark.parametrize(
    ("name", "arms", "pulls"),
    [("bandits10x100_rl2", 10, 100), ("bandits10x10_rl2", 10, 10), ("bandits5x100_rl2", 5, 100)],
)
def test_the_other_table_1_bandit_configs_train(name, arms, pulls, tmp_path):
    assert train_main(tiny_run_args(name, tmp_path / "run")) == 0
    assert_parameters_as_recorded(name, tmp_path / "run" / "checkpoints" / "last.ckpt")
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2
    assert checkpoint["state_dict"]["policy.actor.weight"].shape == (arms, 16)
    assert checkpoint["hyper_parameters"]["eval_steps"] == pulls  # pulls per trial
    assert checkpoint["environment_steps"] == 2 * 8 * pulls  # iterations x trials x pulls


def test_the_navigation_config_trains_and_evaluates_on_held_out_goals(tmp_path):
    """RL² on 2D navigation (PEARL's sample-efficiency comparison): 2-episode trials of 100 steps."""
    assert train_main(tiny_run_args("nav2d_rl2", tmp_path / "run")) == 0
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert_parameters_as_recorded("nav2d_rl2", last)
    checkpoint = torch.load(last, weights_only=True)
    # 2 iterations x 4 trials x 2 episodes, each at most 100 steps (an episode ends early at the goal)
    assert 0 < checkpoint["environment_steps"] <= 2 * 4 * 2 * 100
    evaluated = run_script("evaluate.py", "--ckpt", str(last), "--tasks", "2", "--episodes", "2")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(next((tmp_path / "run" / "evaluation").glob("*.json")).read_text())
    assert set(report["return"]) == {"RL²"} and report["x_values"] == [1, 2]
    assert all(-100 <= r["mean"] <= 0 for r in report["return"]["RL²"])  # minus distances, 100 steps


def test_the_cheetah_velocity_config_trains_and_evaluates(tmp_path):
    """RL² on HalfCheetah velocity (PEARL's sample-efficiency comparison): 2-episode trials of 200 steps."""
    assert train_main(tiny_run_args("cheetah_vel_rl2", tmp_path / "run")) == 0
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert_parameters_as_recorded("cheetah_vel_rl2", last)
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["environment_steps"] == 2 * 4 * 2 * 200  # iterations x trials x episodes x horizon
    assert checkpoint["state_dict"]["policy.actor.weight"].shape == (6, 16)  # HalfCheetah's 6 joints
    evaluated = run_script("evaluate.py", "--ckpt", str(last), "--tasks", "2", "--episodes", "1")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(next((tmp_path / "run" / "evaluation").glob("*.json")).read_text())
    assert set(report["return"]) == {"RL²"} and report["x_values"] == [1, 2]


@pytest.mark.parametrize("name", ["tabular10_rl2", "tabular25_rl2"])
def test_the_tabular_mdp_configs_train_and_evaluate(name, tmp_path):
    """RL² on random tabular MDPs (the paper's Table 2): trials of episodes of 10 steps."""
    assert train_main(tiny_run_args(name, tmp_path / "run")) == 0
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert_parameters_as_recorded(name, last)
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["environment_steps"] == 2 * 8 * 3 * 10  # iterations x trials x episodes x 10 steps
    assert checkpoint["state_dict"]["policy.actor.weight"].shape == (5, 16)  # 5 actions
    evaluated = run_script("evaluate.py", "--ckpt", str(last), "--tasks", "2", "--episodes", "2")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(next((tmp_path / "run" / "evaluation").glob("*.json")).read_text())
    assert set(report["return"]) == {"RL²", "random", "PSRL", "optimistic PSRL", "greedy", "ε-greedy"}
    assert report["x_values"] == [1, 2, 3]
    # every player's episode returns are sums of 10 rewards of mean ~1: random play earns about 10
    assert 5 < report["return"]["random"][0]["mean"] < 15


@pytest.mark.parametrize(
    "extra",
    [[], ["--model.init_args.trial_progress", "true"], ["--model.init_args.separate_critic", "true"]],
)
def test_resume_is_exact(extra, tmp_path):
    """Stopped after 2 of 4 meta-iterations and resumed, a run ends where an uninterrupted one does (also
    with a policy that reads the trial's progress, and with a critic of its own)."""
    straight, _ = assert_resume_is_exact(lambda run: [*tiny_run("bandits_rl2", run, 4), *extra], tmp_path)
    if "--model.init_args.separate_critic" in extra:
        module, _ = rebuild(load_checkpoint(straight / "checkpoints" / "last.ckpt"), "the run")
        assert module.policy.critic_gru is not None
        assert module.policy.state_size == 2 * module.hparams.hidden_size
        report = evaluate_last_checkpoint(straight, "--tasks", "2", "--episodes", "1")
        assert report["separate_critic"] is True
    elif extra:  # the policy reads the progress: one more input, scaled by the training trial's length
        module, _ = rebuild(load_checkpoint(straight / "checkpoints" / "last.ckpt"), "the run")
        assert module.policy.trial_episodes == module.hparams.episodes_per_trial == 10
        assert module.policy.gru.input_size == 1 + 5 + 2 + 1  # bandit observation, arms, reward, done
        report = evaluate_last_checkpoint(straight, "--tasks", "2", "--episodes", "1")
        assert report["trial_progress"] is True and report["model_options"] == {}
        changed = run_script(
            "evaluate.py", "--ckpt", str(straight / "checkpoints" / "last.ckpt"),
            "--model_options", "{episodes_per_trial: 20}",
        )  # fmt: skip
        assert changed.returncode == 2
        assert "episodes_per_trial fixes what the weights in checkpoint" in changed.stderr


LINEAR_DECAY = [
    "--model.init_args.lr_scheduler",
    '{"class_path": "torch.optim.lr_scheduler.LinearLR", '
    '"init_args": {"start_factor": 1.0, "end_factor": 0.25, "total_iters": 4}}',
]


def test_a_learning_rate_schedule_anneals_ppo_once_per_iteration_and_resumes_exactly(tmp_path):
    straight, _ = assert_resume_is_exact(
        lambda run: [*tiny_run("bandits_rl2", run, 4), *LINEAR_DECAY], tmp_path
    )
    checkpoint = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["lr_schedulers"][0]["last_epoch"] == 4  # one step per meta-iteration, not per minibatch
    lr = 0.001  # the config's; after 4 of 4 iterations LinearLR is at its end factor
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.25 * lr)
    with open(next((straight / "csv").glob("version_*/metrics.csv"))) as file:
        logged = [float(row["train/lr"]) for row in csv.DictReader(file) if row.get("train/lr")]
    assert logged == pytest.approx([lr * (1 - 0.75 * step / 4) for step in range(4)])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--model.init_args.hidden_size", "32"], "trained with hidden_size=16"),
        (["--model.init_args.trial_progress", "true"], "trained with trial_progress=False"),
        (["--model.init_args.separate_critic", "true"], "trained with separate_critic=False"),
        (["--data.init_args.env_kwargs", "{arms: 3}"], "trained on other observation or action spaces"),
    ],
)
def test_a_checkpoint_of_another_size_is_refused(trained, override, message, capsys):
    args = [*tiny_run("bandits_rl2", trained, 4), *override, "--ckpt_path", "last"]
    assert message in refused(args, capsys)


def test_a_checkpoint_of_another_module_is_refused(trained, tmp_path, capsys):
    checkpoint = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["lit_meta"]["module"] = "FewShotModule"
    foreign = tmp_path / "foreign.ckpt"
    torch.save(checkpoint, foreign)
    assert "holds a FewShotModule, but this run is configured for a RL2Module" in refused(
        [*tiny_run("bandits_rl2", tmp_path / "run", 4), "--ckpt_path", str(foreign)], capsys
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--model.init_args.minibatches", "9"], "minibatches (9) cannot exceed data.meta_batch_size (8)"),
        (["--model.init_args.gae_lambda", "1.5"], "gae_lambda must be in [0, 1]"),
        (["--model.init_args.episodes_per_trial", "0"], "episodes_per_trial must be positive"),
        (
            [
                "--model.init_args.lr_scheduler",
                '{"class_path": "torch.optim.lr_scheduler.LinearLR", "init_args": {"start_factor": 0.0}}',
            ],
            "the meta-optimizer or its schedule is misconfigured",
        ),
        (["--trainer.devices", "2", "--trainer.strategy", "ddp_spawn"], "trains in a single process"),
    ],
)
def test_bad_input_ends_in_one_sentence(override, message, tmp_path, capsys):
    assert message in refused([*tiny_run("bandits_rl2", tmp_path / "run", 1), *override], capsys)


def test_a_short_training_beats_random_play_on_held_out_bandits(tmp_path):
    """RL² learns to exploit within a trial: after a short training its reward per pull on held-out bandits
    clearly exceeds uniformly random play's (its exact expectation, the mean arm) on the same bandits."""
    run_dir = tmp_path / "learn"
    args = [
        "fit", "--config", CONFIG, "--run_dir", str(run_dir), *QUIET,
        "--trainer.max_steps", "60", "--trainer.limit_val_batches", "0",
        "--data.init_args.meta_batch_size", "128", "--model.init_args.minibatches", "2",
        "--model.init_args.hidden_size", "32", "--model.init_args.optimizer.init_args.lr", "0.01",
    ]  # fmt: skip
    assert train_main(args) == 0
    module, datamodule = rebuild(load_checkpoint(run_dir / "checkpoints" / "last.ckpt"), source="the run")
    curves = module.adaptation_curves(datamodule.eval_tasks("test", 300), 10, 1, "test")
    rl2, random_play = curves["RL²"].sum(1), curves["random"].sum(1)
    assert (rl2 - random_play).mean() > 0.5, (rl2.mean(), random_play.mean())  # 10 pulls: 5.0 on average


def test_evaluation_trials_do_not_depend_on_how_tasks_are_batched():
    """Validation scores one task per batch, evaluate.py all at once: trial j of task i is the same trial."""
    from lit_meta.datamodules import RLTaskDataModule
    from lit_meta.modules import RL2Module

    data = RLTaskDataModule(env="lit_meta/BernoulliBandit-v0", env_kwargs={"arms": 4}, meta_batch_size=4)
    module = RL2Module(hidden_size=8, episodes_per_trial=6, seed=3)
    module.check_data(data)
    tasks = data.eval_tasks("val", 4)
    together = module.adaptation_curves(tasks, 6, 3, "val")
    assert together["RL²"].shape == together["UCB1"].shape == (4, 6)
    one_by_one = [
        module.adaptation_curves([task], 6, 3, "val", first_index=i)["RL²"] for i, task in enumerate(tasks)
    ]
    assert torch.equal(torch.cat(one_by_one), together["RL²"])
    arm_means = torch.tensor([[task[f"p{a}"] for a in range(4)] for task in tasks], dtype=torch.float64)
    torch.testing.assert_close(together["random"], arm_means.mean(1, keepdim=True).expand(4, 6))
