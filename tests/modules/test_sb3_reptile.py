"""The SB3 Reptile LightningModule in-process: adaptation curves from the meta-learned and a fresh
initialisation, each held-out task with its own learner seed, whatever the batching of the tasks."""

import copy

import numpy as np

from lit_meta.datamodules import RLTaskDataModule
from lit_meta.modules import SB3ReptileModule
from tests.modules.rl_curves import check_adaptation_curves

PPO_KWARGS = {"n_steps": 32, "batch_size": 16, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}


def bound_module(seed: int = 5) -> tuple[SB3ReptileModule, RLTaskDataModule]:
    data = RLTaskDataModule(meta_batch_size=2, val_tasks=1, seed=3)
    module = SB3ReptileModule(
        rl_algo_kwargs=copy.deepcopy(PPO_KWARGS), inner_timesteps=32, eval_episodes=1, seed=seed
    )
    module.check_data(data)
    return module, data


def test_adaptation_curves_are_reproducible_and_independent_of_how_tasks_are_batched():
    module, data = bound_module()
    make = lambda: bound_module()[0]  # noqa: E731
    check_adaptation_curves(make, data.eval_tasks("test", 2), 1, 1, ["meta-learned init", "fresh init"], 2)
    assert module.evaluation_axis(1)[0][0] == 0  # the x axis counts inner gradient updates from 0


def test_each_held_out_task_has_the_learner_seed_it_always_had():
    """Unlike the other RL modules, whose held-out episodes follow the data seed, the SB3 learner of task
    ``i`` of a split is seeded from the module's seed (31 bits, as SB3 takes them)."""
    module, _ = bound_module(seed=5)
    for split, index in (("test", 0), ("val", 3)):
        entropy = [5, *f"evaluation-{split}".encode(), 0, index]
        expected = int(np.random.SeedSequence(entropy).generate_state(1)[0]) % 2**31
        assert module.evaluation_seed(split, index) == expected
