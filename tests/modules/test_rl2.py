"""The RL² LightningModule in-process: its adaptation curves (episodes of one trial, averaged over trials)
and the bandit baselines beside them are reproducible, and do not depend on how trials are batched."""

import pytest
import torch

import lit_meta.modules.rl2 as rl2_module
from lit_meta.datamodules import RLTaskDataModule
from lit_meta.errors import ConfigError
from lit_meta.evaluation.bandit_baselines import BANDIT_BASELINES, TUNED_PARAMETERS
from lit_meta.modules import RL2Module
from tests.modules.rl_curves import check_adaptation_curves

BANDITS = "lit_meta/BernoulliBandit-v0"
CURVES = ["RL²", *BANDIT_BASELINES, "random"]


def bound_module(env: str = BANDITS, **data_kwargs) -> tuple[RL2Module, RLTaskDataModule]:
    data = RLTaskDataModule(env=env, meta_batch_size=2, seed=0, **data_kwargs)
    module = RL2Module(hidden_size=8, episodes_per_trial=4, minibatches=2, seed=3)
    module.check_data(data)
    return module, data


def test_curves_on_bandits_are_rl2_and_its_baselines_reproducible_whatever_the_batching(monkeypatch):
    module, data = bound_module(env_kwargs={"arms": 3})
    tasks = data.eval_tasks("test", 3)
    monkeypatch.setattr(rl2_module, "EVAL_CHUNK", 4)  # 6 trials played 4, then 2, at a time
    make = lambda: bound_module(env_kwargs={"arms": 3})[0]  # noqa: E731
    # the baselines play all tasks together from one seed; each RL² trial has its own
    curves = check_adaptation_curves(make, tasks, 5, 2, CURVES, width=5, seeded_per_task=["RL²"])
    assert module.hparams.eval_steps == 4  # K defaults to the trained trial's episodes
    ucb = module.adaptation_curves(tasks, 5, 2, "test", ("UCB1",))
    assert list(ucb) == ["UCB1"] and torch.equal(ucb["UCB1"], curves["UCB1"])
    arm_means = torch.tensor([[task[f"p{arm}"] for arm in range(3)] for task in tasks], dtype=torch.float64)
    torch.testing.assert_close(curves["random"], arm_means.mean(1, keepdim=True).expand(3, 5))
    other_trials = module.adaptation_curves(tasks, 5, 2, "val", ("RL²",))["RL²"]  # other split, other seeds
    assert not torch.equal(other_trials, curves["RL²"])
    # the tuned players were tuned for 5 pulls, each to a value of its grid, and the report says which
    tuned = module.adaptation_curves(tasks, 5, 2, "test", tuple(TUNED_PARAMETERS))
    assert all(torch.equal(tuned[name], curves[name]) for name in TUNED_PARAMETERS)
    details = module.evaluation_details()["tuned_baselines"]
    assert set(details) == {f"{name}, 5 pulls" for name in TUNED_PARAMETERS}
    for name, (parameter, grid) in TUNED_PARAMETERS.items():
        assert details[f"{name}, 5 pulls"][parameter] in grid


def test_other_task_families_have_no_bandit_baselines():
    module, data = bound_module(env="lit_meta/Navigation2D-v0")
    assert module.curve_names() == ("RL²",)
    curves = module.adaptation_curves(data.eval_tasks("test", 2), 2, 1, "test")
    assert list(curves) == ["RL²"] and curves["RL²"].shape == (2, 2)
    with pytest.raises(ConfigError, match="RL2Module has no curve 'UCB1'"):
        module.adaptation_curves(data.eval_tasks("test", 2), 2, 1, "test", ("UCB1",))
