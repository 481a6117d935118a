"""The VarShare SAC LightningModule in-process: it schedules the SAC episodes of
:mod:`lit_meta.algorithms.sac_episodes` (one per training step, the meta-update counted across them),
draws reproducible adaptation curves on unseen tasks, and reads checkpoints written before
``meta_update_alpha`` became ``meta_step_size``."""

import gymnasium as gym
import pytorch_lightning as pl
import torch

from lit_meta.checkpoints import load_checkpoint
from lit_meta.datamodules import RLTaskDataModule
from lit_meta.modules import VarShareSACModule
from lit_meta.registry import rebuild
from tests.modules.rl_curves import check_adaptation_curves
from tests.reference_runs import LEGACY_CHECKPOINTS

PENDULUM = "lit_meta/PendulumTask-v0"


def bound_module(horizon: int | None = None, **kwargs) -> tuple[VarShareSACModule, RLTaskDataModule]:
    """The module on two Pendulum variants; with ``horizon``, held-out episodes are cut short (speed)."""
    data = RLTaskDataModule(env=PENDULUM, train_tasks=2, meta_batch_size=1, seed=0)
    if horizon is not None:
        make_env = data.make_env
        data.make_env = lambda task: gym.wrappers.TimeLimit(make_env(task).unwrapped, horizon)
    module = VarShareSACModule(hidden_sizes=[8], batch_size=16, learning_starts=100, seed=0, **kwargs)
    module.check_data(data)
    return module, data


def test_training_steps_are_episodes_of_the_tasks_in_turn_and_count_sac_updates():
    module, data = bound_module(meta_update_every=50)
    trainer = pl.Trainer(
        max_steps=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module, data)
    assert trainer.global_step == 2  # one Lightning step per episode, whatever the SAC updates
    # 200 steps per episode, updates once a task's buffer holds max(batch_size, learning_starts) = 100
    assert module.updates == 2 * 101
    assert module.replay.size(0) == module.replay.size(1) == 200


def test_adaptation_curves_are_reproducible_and_independent_of_how_tasks_are_batched():
    module, data = bound_module(horizon=90)  # 26 SAC updates from the 64th transition
    names = ["VarShare SAC + Reptile", "SAC from scratch"]
    curves = check_adaptation_curves(
        lambda: bound_module(horizon=90)[0], data.eval_tasks("test", 2), 1, 1, names, 2
    )
    assert not torch.equal(*curves.values())
    assert "unseen" not in module.agent.log_alpha  # the trained agent is adapted as a copy


def test_without_a_meta_step_size_it_is_plain_varshare_sac():
    module, _ = bound_module(meta_step_size=None)
    assert module.learner_name == "VarShare SAC"
    assert module.evaluation_details()["meta_step_size"] is None


def test_a_checkpoint_with_the_former_name_meta_update_alpha_loads_as_meta_step_size():
    checkpoint = load_checkpoint(LEGACY_CHECKPOINTS / "pendulum_varshare_sac.ckpt")
    assert "meta_update_alpha" not in checkpoint["hyper_parameters"]
    module, _ = rebuild(checkpoint, source="the fixture")
    assert module.hparams.meta_step_size == 0.05 and module.learner_name == "VarShare SAC + Reptile"
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(module.state_dict()[key], value), key
