"""compute_updates against the optimizer steps SB3 actually takes, counted."""

import copy

import gymnasium as gym
import pytest
import torch
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3

from lit_meta.errors import ConfigError
from lit_meta.sb3 import compute_updates, timesteps_for_updates
from lit_meta.sb3.meta_algorithm import folderless_logger
from lit_meta.sb3.weights import optimizers_of

SMALL = {  # SB3 writes into policy_kwargs: each model gets a deep copy
    "policy": "MlpPolicy",
    "policy_kwargs": {"net_arch": [8]},
    "device": "cpu",
    "seed": 0,
}


def small(cls, env, **kwargs):
    """A small learner whose logger writes no folder (SB3's default makes one per ``learn``)."""
    model = cls(env=env, **copy.deepcopy(SMALL), **kwargs)
    model.set_logger(folderless_logger())
    return model


def counted_updates(model, timesteps: int, counted_optimizer) -> int:
    """Run ``learn`` and count the calls of one optimizer's ``step``."""
    calls = [0]
    original = counted_optimizer.step

    def step(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    counted_optimizer.step = step
    model.learn(total_timesteps=timesteps)
    return calls[0]


@pytest.mark.parametrize(
    ("cls", "env_id", "kwargs", "timesteps"),
    [
        (PPO, "CartPole-v1", {"n_steps": 64, "batch_size": 16, "n_epochs": 3}, 200),  # 4 rollouts x 3 x 4
        (PPO, "CartPole-v1", {"n_steps": 50, "batch_size": 32, "n_epochs": 2}, 100),  # ragged last batch
        (A2C, "CartPole-v1", {"n_steps": 10}, 95),
        (SAC, "Pendulum-v1", {"learning_starts": 30, "train_freq": 4, "gradient_steps": 2}, 70),
        (SAC, "Pendulum-v1", {"learning_starts": 0, "train_freq": 3, "gradient_steps": -1}, 40),
        (TD3, "Pendulum-v1", {"learning_starts": 10, "train_freq": 5, "gradient_steps": 3}, 52),
        (DQN, "CartPole-v1", {"learning_starts": 20, "train_freq": 4, "gradient_steps": 1}, 61),
        (DDPG, "Pendulum-v1", {"learning_starts": 5, "train_freq": (3, "step"), "gradient_steps": 2}, 31),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_compute_updates_matches_the_optimizer_steps_sb3_takes(cls, env_id, kwargs, timesteps):
    model = small(cls, gym.make(env_id), **kwargs)
    optimizer = getattr(model.policy, "critic", model.policy).optimizer
    expected = compute_updates(cls, timesteps, **kwargs)
    assert compute_updates(model, timesteps) == expected  # from the model's own settings too
    assert counted_updates(model, timesteps, optimizer) == expected
    assert expected > 0


def test_off_policy_updates_with_several_environments():
    from stable_baselines3.common.env_util import make_vec_env

    kwargs = {"learning_starts": 10, "train_freq": 3, "gradient_steps": 2}
    model = small(SAC, make_vec_env("Pendulum-v1", n_envs=2, seed=0), **kwargs)
    # rollouts of 3 steps x 2 envs = 6 timesteps; 40 timesteps -> 7 rollouts, the first one warm-up
    assert compute_updates(SAC, 40, n_envs=2, **kwargs) == compute_updates(model, 40) == 6 * 2
    assert counted_updates(model, 40, model.critic.optimizer) == 12


def test_compute_updates_counts_every_environment_of_a_vectorised_learner():
    from stable_baselines3.common.env_util import make_vec_env

    kwargs = {"n_steps": 32, "batch_size": 16, "n_epochs": 2}
    model = small(PPO, make_vec_env("CartPole-v1", n_envs=2, seed=0), **kwargs)
    assert compute_updates(PPO, 130, n_envs=2, **kwargs) == compute_updates(model, 130) == 3 * 2 * 4
    assert counted_updates(model, 130, model.policy.optimizer) == 24


@pytest.mark.parametrize(
    ("cls", "kwargs", "rollout", "updates"),
    [
        (PPO, {"n_steps": 64, "batch_size": 16, "n_epochs": 3}, 64, 36),
        (SAC, {"learning_starts": 30, "train_freq": 4, "gradient_steps": 2}, 4, 10),
        (SAC, {"learning_starts": 100, "train_freq": 1, "gradient_steps": 1}, 1, 1000),
    ],
)
def test_timesteps_for_updates_inverts_compute_updates(cls, kwargs, rollout, updates):
    timesteps = timesteps_for_updates(cls, updates, **kwargs)
    assert compute_updates(cls, timesteps, **kwargs) == updates
    assert timesteps % rollout == 0  # whole rollouts, the timesteps learn really collects
    assert compute_updates(cls, timesteps - rollout, **kwargs) < updates  # and the fewest of them


def test_unreachable_update_counts_and_non_sb3_classes_are_refused():
    with pytest.raises(ConfigError, match="updates in blocks of 12 per rollout"):
        timesteps_for_updates(PPO, 13, n_steps=64, batch_size=16, n_epochs=3)
    with pytest.raises(ConfigError, match="must be a Stable-Baselines3 algorithm class"):
        compute_updates(torch.optim.Adam, 100)
    with pytest.raises(ConfigError, match="step-based train_freq"):
        compute_updates(SAC, 100, train_freq=(1, "episode"))


def test_optimizers_of_finds_every_optimizer_of_sac():
    model = small(SAC, gym.make("Pendulum-v1"))
    found = optimizers_of(model)
    assert {id(o) for o in found} == {
        id(model.actor.optimizer),
        id(model.critic.optimizer),
        id(model.ent_coef_optimizer),
    }


@pytest.mark.parametrize(
    ("cls", "env_id", "kwargs", "round_timesteps"),
    [
        (PPO, "CartPole-v1", {"n_steps": 64, "batch_size": 32, "n_epochs": 2}, 40),  # rounds up to 64
        (SAC, "Pendulum-v1", {"learning_starts": 25, "train_freq": 4, "gradient_steps": 1}, 10),
    ],
    ids=["PPO", "SAC"],
)
def test_updates_of_repeated_learn_rounds_are_what_sb3_does(cls, env_id, kwargs, round_timesteps):
    """The evaluation x-axis: rounds of learn(reset_num_timesteps=False), each ending a whole rollout."""
    from types import SimpleNamespace

    from lit_meta.sb3.evaluation import updates_per_step

    model = small(cls, gym.make(env_id), **kwargs)
    optimizer = getattr(model.policy, "critic", model.policy).optimizer
    calls, original = [0], optimizer.step
    optimizer.step = lambda *a, **k: (calls.__setitem__(0, calls[0] + 1), original(*a, **k))[1]
    counts = [0]
    for _ in range(4):
        model.learn(total_timesteps=round_timesteps, reset_num_timesteps=False)
        counts.append(calls[0])
    meta = SimpleNamespace(rl_algorithm=cls, rl_algo_kwargs=kwargs)
    assert updates_per_step(meta, round_timesteps, 4) == counts
