"""Gymnasium task distributions, registered under the ``lit_meta/`` namespace.

import gymnasium as gym, lit_meta.envs
env = gym.make("lit_meta/CartPoleTask-v0", task={"length": 0.8, "masspole": 0.2, "gravity": 9.0})
tasks = env.unwrapped.sample_tasks(8, np.random.default_rng(0))
"""

from collections.abc import Mapping

import gymnasium as gym
import numpy as np

from lit_meta.envs.bandits import BernoulliBanditEnv
from lit_meta.envs.base import Ranges, Task, TaskFamilyMixin
from lit_meta.envs.cartpole import CartPoleTaskEnv
from lit_meta.envs.navigation import Navigation2DEnv
from lit_meta.envs.pendulum import PendulumTaskEnv
from lit_meta.envs.tabular_mdp import RandomTabularMDPEnv
from lit_meta.errors import ConfigError

TASK_ENVS: dict[str, tuple[type[TaskFamilyMixin], int]] = {
    "lit_meta/CartPoleTask-v0": (CartPoleTaskEnv, 500),
    "lit_meta/PendulumTask-v0": (PendulumTaskEnv, 200),
    "lit_meta/Navigation2D-v0": (Navigation2DEnv, 100),
    "lit_meta/BernoulliBandit-v0": (BernoulliBanditEnv, 1),
    "lit_meta/TabularMDP-v0": (RandomTabularMDPEnv, 10),
}
"""Registered id -> (environment class, episode horizon: the gymnasium original's, or the paper's)."""

_MUJOCO_ENVS = {
    "lit_meta/HalfCheetahVel-v0": ("HalfCheetahVelEnv", 200),
    "lit_meta/HalfCheetahDir-v0": ("HalfCheetahDirEnv", 200),
}
"""The families that need the optional ``mujoco`` extra: id -> (class name in lit_meta.envs.cheetah,
horizon as in MAML's experiments)."""

_META_WORLD_ENVS = {
    "lit_meta/MetaWorldML1-v0": ("MetaWorldML1Env", 500),
    "lit_meta/MetaWorldML10-v0": ("MetaWorldML10Env", 500),
}
"""The Meta-World benchmarks (the optional ``metaworld`` package): id -> (class name in
lit_meta.envs.meta_world, Meta-World's episode length)."""

UNAVAILABLE_TASK_ENVS: dict[str, str] = {}
"""Id -> why it cannot be made here, for the families whose optional dependency is not installed."""

try:
    from lit_meta.envs import cheetah
except ConfigError as _error:
    UNAVAILABLE_TASK_ENVS.update(dict.fromkeys(_MUJOCO_ENVS, str(_error)))
else:
    HalfCheetahDirEnv, HalfCheetahVelEnv = cheetah.HalfCheetahDirEnv, cheetah.HalfCheetahVelEnv
    for _env_id, (_name, _horizon) in _MUJOCO_ENVS.items():
        TASK_ENVS[_env_id] = (getattr(cheetah, _name), _horizon)

try:
    from lit_meta.envs import meta_world
except ConfigError as _error:
    UNAVAILABLE_TASK_ENVS.update(dict.fromkeys(_META_WORLD_ENVS, str(_error)))
else:
    for _env_id, (_name, _horizon) in _META_WORLD_ENVS.items():
        TASK_ENVS[_env_id] = (getattr(meta_world, _name), _horizon)


def _register(env_id: str, entry_point: str, horizon: int) -> None:
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=entry_point, max_episode_steps=horizon)


for _env_id, (_class, _horizon) in TASK_ENVS.items():
    _register(_env_id, f"{_class.__module__}:{_class.__name__}", _horizon)
for _env_id, (_name, _horizon) in _MUJOCO_ENVS.items():
    # without MuJoCo, gym.make imports lit_meta.envs.cheetah, which raises the ConfigError that says so
    _register(_env_id, f"lit_meta.envs.cheetah:{_name}", _horizon)
for _env_id, (_name, _horizon) in _META_WORLD_ENVS.items():
    _register(_env_id, f"lit_meta.envs.meta_world:{_name}", _horizon)


def __getattr__(name: str):
    """The HalfCheetah classes, when MuJoCo is missing: the :class:`ConfigError` that says so."""
    if name in ("HalfCheetahDirEnv", "HalfCheetahVelEnv"):
        raise ConfigError(UNAVAILABLE_TASK_ENVS["lit_meta/HalfCheetahVel-v0"])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_env_id(env_id: str) -> type[TaskFamilyMixin]:
    """The environment class of a registered task family; :class:`ConfigError` for an unknown id, or for
    one whose optional dependency (MuJoCo, Meta-World) is not installed."""
    if env_id in UNAVAILABLE_TASK_ENVS:
        raise ConfigError(f"{env_id} cannot be made: {UNAVAILABLE_TASK_ENVS[env_id]}")
    if env_id not in TASK_ENVS:
        raise ConfigError(f"unknown task environment '{env_id}'; choose one of {', '.join(TASK_ENVS)}")
    return TASK_ENVS[env_id][0]


def make_task_env(
    env_id: str,
    task: Mapping[str, float] | None = None,
    ranges: Ranges | None = None,
    env_kwargs: Mapping | None = None,
):
    """``gym.make`` of a task family, already set to ``task``; ``env_kwargs`` are the family's other
    constructor arguments (e.g. a bandit's number of arms)."""
    check_env_id(env_id)
    return gym.make(env_id, task=task, ranges=ranges, **(env_kwargs or {}))


def sample_task_env(
    env_id: str, seed: int, ranges: Ranges | None = None, env_kwargs: Mapping | None = None
) -> tuple[gym.Env, Task]:
    """A task drawn from ``env_id``'s ranges with ``seed``, and its environment: ``(env, task)``.

    With ``functools.partial(sample_task_env, env_id, ranges=...)`` this is a task callable for
    :class:`lit_meta.envs.task_generator.TaskGenerator` (a task is its seed).
    """
    env = make_task_env(env_id, ranges=ranges, env_kwargs=env_kwargs)
    task = env.unwrapped.sample_tasks(1, np.random.default_rng(seed))[0]
    env.unwrapped.set_task(task)
    return env, task


__all__ = [
    "TASK_ENVS",
    "UNAVAILABLE_TASK_ENVS",
    "BernoulliBanditEnv",
    "CartPoleTaskEnv",
    "Navigation2DEnv",
    "PendulumTaskEnv",
    "RandomTabularMDPEnv",
    "Ranges",
    "Task",
    "TaskFamilyMixin",
    "check_env_id",
    "make_task_env",
    "sample_task_env",
]
if not UNAVAILABLE_TASK_ENVS:
    __all__ += ["HalfCheetahDirEnv", "HalfCheetahVelEnv"]
