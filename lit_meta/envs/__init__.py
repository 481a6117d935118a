"""Gymnasium task distributions, registered under the ``lit_meta/`` namespace.

import gymnasium as gym, lit_meta.envs
env = gym.make("lit_meta/CartPoleTask-v0", task={"length": 0.8, "masspole": 0.2, "gravity": 9.0})
tasks = env.unwrapped.sample_tasks(8, np.random.default_rng(0))
"""

from collections.abc import Mapping

import gymnasium as gym
import numpy as np

from lit_meta.envs.base import Ranges, Task, TaskFamilyMixin
from lit_meta.envs.cartpole import CartPoleTaskEnv
from lit_meta.envs.pendulum import PendulumTaskEnv
from lit_meta.errors import ConfigError

TASK_ENVS: dict[str, tuple[type[TaskFamilyMixin], int]] = {
    "lit_meta/CartPoleTask-v0": (CartPoleTaskEnv, 500),
    "lit_meta/PendulumTask-v0": (PendulumTaskEnv, 200),
}
"""Registered id -> (environment class, episode horizon as in the gymnasium original)."""

for _env_id, (_env_class, _horizon) in TASK_ENVS.items():
    if _env_id not in gym.registry:
        gym.register(
            id=_env_id,
            entry_point=f"{_env_class.__module__}:{_env_class.__name__}",
            max_episode_steps=_horizon,
        )


def check_env_id(env_id: str) -> type[TaskFamilyMixin]:
    """The environment class of a registered task family; :class:`ConfigError` for an unknown id."""
    if env_id not in TASK_ENVS:
        raise ConfigError(f"unknown task environment '{env_id}'; choose one of {', '.join(TASK_ENVS)}")
    return TASK_ENVS[env_id][0]


def make_task_env(env_id: str, task: Mapping[str, float] | None = None, ranges: Ranges | None = None):
    """``gym.make`` of a task family, already set to ``task``."""
    check_env_id(env_id)
    return gym.make(env_id, task=task, ranges=ranges)


def sample_task_env(env_id: str, seed: int, ranges: Ranges | None = None) -> tuple[gym.Env, Task]:
    """A task drawn from ``env_id``'s ranges with ``seed``, and its environment: ``(env, task)``.

    With ``functools.partial(sample_task_env, env_id, ranges=...)`` this is a task callable for
    :class:`lit_meta.sb3.TaskGenerator` (a task is its seed).
    """
    env = make_task_env(env_id, ranges=ranges)
    task = env.unwrapped.sample_tasks(1, np.random.default_rng(seed))[0]
    env.unwrapped.set_task(task)
    return env, task


__all__ = [
    "TASK_ENVS",
    "CartPoleTaskEnv",
    "PendulumTaskEnv",
    "Ranges",
    "Task",
    "TaskFamilyMixin",
    "check_env_id",
    "make_task_env",
    "sample_task_env",
]
