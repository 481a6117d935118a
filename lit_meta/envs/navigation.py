"""2D navigation, the point-robot task family of MAML's reinforcement-learning experiments."""

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from lit_meta.envs.base import Ranges, Task, TaskFamilyMixin

MAX_STEP = 0.1
"""The largest move along each axis in one step; bigger actions are clipped to it."""
GOAL_TOLERANCE = 0.01
"""The episode ends once the agent is closer than this to the goal along both axes."""


class Navigation2DEnv(TaskFamilyMixin, gym.Env):
    """A point agent that must walk to a goal it cannot see (Finn et al., 2017, Section 5.3; the same
    dynamics as rllab's and learn2learn's ``Navigation2DEnv``).

    The agent starts at (0, 0) and observes its position; an action (dx, dy) is clipped to ±0.1 and added
    to the position; the reward is minus the Euclidean distance to the goal after the move; the episode
    ends when the agent is within 0.01 of the goal along both axes. Only the reward reveals the task.

    :param task: ``{"goal_x": ..., "goal_y": ...}``; default the middle of each range, (0, 0).
    :param ranges: sampling intervals, overriding :attr:`DEFAULT_RANGES` (the paper's [-0.5, 0.5]²).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    DEFAULT_RANGES: ClassVar[dict[str, tuple[float, float]]] = {"goal_x": (-0.5, 0.5), "goal_y": (-0.5, 0.5)}
    POSITIVE_PARAMETERS: ClassVar[bool] = False

    def __init__(
        self, task: Mapping[str, float] | None = None, ranges: Ranges | None = None, render_mode: None = None
    ) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-MAX_STEP, MAX_STEP, (2,), np.float32)
        self.render_mode = render_mode
        self._x = self._y = 0.0
        self._init_task_family(task, ranges)

    def _apply_task(self, task: Task) -> None:
        self._goal_x, self._goal_y = task["goal_x"], task["goal_y"]

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._x = self._y = 0.0
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        # plain floats: a step is a few scalar operations, far cheaper than numpy on two-element arrays
        self._x += min(max(float(action[0]), -MAX_STEP), MAX_STEP)
        self._y += min(max(float(action[1]), -MAX_STEP), MAX_STEP)
        dx, dy = self._x - self._goal_x, self._y - self._goal_y
        terminated = abs(dx) < GOAL_TOLERANCE and abs(dy) < GOAL_TOLERANCE
        observation = np.array((self._x, self._y), dtype=np.float32)
        return observation, -math.hypot(dx, dy), terminated, False, {}

    def position(self) -> np.ndarray:
        """The agent's position, in double precision (the observation is its float32 copy)."""
        return np.array((self._x, self._y))
