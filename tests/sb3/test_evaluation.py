"""The metric of meta-RL over SB3 learners: a short meta-training beats SB3's fresh initialisation on
held-out tasks after the same inner training."""

import numpy as np
from scipy import stats
from stable_baselines3 import PPO
from stable_baselines3.common.utils import LinearSchedule

from lit_meta.envs import make_task_env
from lit_meta.sb3.evaluation import adaptation_returns
from tests.sb3.test_reptile_sb3 import CARTPOLE, reptile


def test_short_meta_training_beats_a_fresh_initialisation_on_held_out_variants():
    """The metric of the "Day 29: Meta-Reinforcement Learning" specification: return on unseen CartPole
    variants after k = 16 inner updates (one PPO rollout of 256 steps), meta-learned initialisation
    against SB3's random one with the same inner seeds."""
    kwargs = {"n_steps": 256, "batch_size": 64, "n_epochs": 4, "learning_rate": 1e-3, "gamma": 0.98,
              "policy_kwargs": {"net_arch": [32, 32]}}  # fmt: skip
    algorithm = reptile(
        PPO, CARTPOLE, kwargs, meta_step_size=LinearSchedule(1.0, 0.0, 1.0), inner_timesteps=512, seed=0
    )
    algorithm.learn(10, progress_bar=False)
    held_out = make_task_env("lit_meta/CartPoleTask-v0").unwrapped.sample_tasks(8, np.random.default_rng(123))
    final = {True: [], False: []}
    for index, task in enumerate(held_out):
        for from_meta in (True, False):
            returns = adaptation_returns(
                algorithm,
                lambda task=task: make_task_env("lit_meta/CartPoleTask-v0", task=task),
                seed=1000 + index, steps=1, step_timesteps=256, episodes=3, from_meta=from_meta,
            )  # fmt: skip
            final[from_meta].append(returns[-1])
    gain = np.array(final[True]) - np.array(final[False])
    low = gain.mean() - stats.t.ppf(0.975, len(gain) - 1) * gain.std(ddof=1) / np.sqrt(len(gain))
    # a fresh PPO policy balances ~20-60 steps after 16 updates; the bound must clear that by far
    assert low > 40, (final, gain)
