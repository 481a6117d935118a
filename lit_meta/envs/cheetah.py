"""HalfCheetah running at a goal velocity or in a goal direction, MAML's locomotion task families.

Needs MuJoCo (the ``mujoco`` extra); importing this module without it raises :class:`ConfigError`.
"""

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from lit_meta.envs.base import Ranges, Task, TaskFamilyMixin
from lit_meta.errors import ConfigError, require

MUJOCO_MISSING = (
    "the HalfCheetah task families need MuJoCo, which is not installed; install it with "
    "`pip install lit-meta[mujoco]`"
)

try:
    import imageio  # noqa: F401  (gymnasium's MujocoEnv imports its renderer, which imports imageio)
    import mujoco  # noqa: F401
    from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
except ImportError as error:
    raise ConfigError(MUJOCO_MISSING) from error

CTRL_COST_WEIGHT = 0.05
"""rllab's and learn2learn's control cost, 0.5 · 1e-1 · ‖a‖² (gymnasium's own HalfCheetah uses 0.1)."""


class _HalfCheetahTaskEnv(TaskFamilyMixin, HalfCheetahEnv):
    """Gymnasium's HalfCheetah-v5 (its observation, dynamics and reset noise) with a task-dependent
    reward; ``info["x_velocity"]`` is the forward velocity the reward is computed from."""

    POSITIVE_PARAMETERS: ClassVar[bool] = False

    def __init__(
        self,
        task: Mapping[str, float] | None = None,
        ranges: Ranges | None = None,
        render_mode: str | None = None,
        ctrl_cost_weight: float = CTRL_COST_WEIGHT,
        **kwargs,
    ) -> None:
        HalfCheetahEnv.__init__(self, ctrl_cost_weight=ctrl_cost_weight, render_mode=render_mode, **kwargs)
        # EzPickle rebuilds a pickled environment from these arguments (HalfCheetahEnv recorded its own)
        self._ezpickle_args = ()
        self._ezpickle_kwargs = {
            "ranges": ranges,
            "render_mode": render_mode,
            "ctrl_cost_weight": ctrl_cost_weight,
            **kwargs,
        }
        self._init_task_family(task, ranges)

    def __getstate__(self) -> dict:
        """Pickled as its constructor arguments and the current task."""
        return {"_ezpickle_args": (), "_ezpickle_kwargs": {**self._ezpickle_kwargs, "task": self.get_task()}}

    def _forward_reward(self, x_velocity: float) -> float:
        raise NotImplementedError

    def _get_rew(self, x_velocity: float, action) -> tuple[float, dict]:
        forward_reward = self._forward_reward(float(x_velocity))
        ctrl_cost = float(self.control_cost(np.asarray(action, dtype=np.float64)))  # not float32's rounding
        return forward_reward - ctrl_cost, {"reward_forward": forward_reward, "reward_ctrl": -ctrl_cost}


class HalfCheetahVelEnv(_HalfCheetahTaskEnv):
    """HalfCheetah rewarded for running at a goal velocity (Finn et al., 2017, Section 5.3):
    reward = −|v − velocity| − 0.05 · ‖a‖², with v the forward velocity.

    :param task: ``{"velocity": ...}``; default the middle of the range, 1.
    :param ranges: the sampling interval of ``velocity``, inside the paper's [0, 2].
    """

    DEFAULT_RANGES: ClassVar[dict[str, tuple[float, float]]] = {"velocity": (0.0, 2.0)}
    PARAMETER_BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {"velocity": (0.0, 2.0)}

    def _apply_task(self, task: Task) -> None:
        self._goal_velocity = task["velocity"]

    def _forward_reward(self, x_velocity: float) -> float:
        return -abs(x_velocity - self._goal_velocity)


class HalfCheetahDirEnv(_HalfCheetahTaskEnv):
    """HalfCheetah rewarded for running forward or backward (Finn et al., 2017, Section 5.3):
    reward = direction · v − 0.05 · ‖a‖², with v the forward velocity and direction ±1.

    :param task: ``{"direction": 1.0}`` or ``{"direction": -1.0}``; default forward.
    :param ranges: ``[-1, 1]`` draws both directions with probability 1/2 each; ``[1, 1]`` or ``[-1, -1]``
        holds one fixed.
    """

    DEFAULT_RANGES: ClassVar[dict[str, tuple[float, float]]] = {"direction": (-1.0, 1.0)}
    PARAMETER_BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {"direction": (-1.0, 1.0)}

    def directions(self) -> list[float]:
        """The directions the range allows."""
        low, high = self.ranges["direction"]
        allowed = [direction for direction in (-1.0, 1.0) if low <= direction <= high]
        require(bool(allowed), f"the range of direction must contain -1 or 1, got [{low}, {high}]")
        return allowed

    def default_task(self) -> Task:
        return {"direction": self.directions()[-1]}

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[Task]:
        """``num_tasks`` tasks, each direction with equal probability."""
        allowed = self.directions()
        return [{"direction": allowed[int(rng.integers(len(allowed)))]} for _ in range(num_tasks)]

    def set_task(self, task: Mapping[str, float]) -> None:
        if "direction" in task:
            require(
                float(task["direction"]) in (-1.0, 1.0),
                f"the direction must be -1 (backward) or 1 (forward), got {task['direction']}",
            )
        super().set_task(task)

    def _apply_task(self, task: Task) -> None:
        self._direction = task["direction"]

    def _forward_reward(self, x_velocity: float) -> float:
        return self._direction * x_velocity
