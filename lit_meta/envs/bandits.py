"""Bernoulli multi-armed bandits, the task family of RL²'s bandit experiments."""

from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from lit_meta.envs.base import Ranges, Task, TaskFamilyMixin
from lit_meta.errors import require


class BernoulliBanditEnv(TaskFamilyMixin, gym.Env):
    """A ``arms``-armed bandit whose arm ``a`` pays 1 with probability ``p_a``, else 0 (Duan et al.,
    2016, Section 4.1: each ``p_a`` uniform in [0, 1]).

    An episode is one pull: ``step(a)`` returns the reward and ``terminated=True``. A meta-learner plays
    a task as a run of such episodes and sees its previous action and reward itself (as RL²'s policy
    does), so the observation is a constant zero. Rewards come from ``self.np_random``:
    ``reset(seed=...)`` makes them reproducible.

    :param task: ``{"p0": ..., "p{arms-1}": ...}``; default 0.5 for every arm.
    :param ranges: sampling intervals of some arms' probabilities, inside [0, 1].
    :param arms: the number of arms, at least 2.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    POSITIVE_PARAMETERS: ClassVar[bool] = False

    def __init__(
        self,
        task: Mapping[str, float] | None = None,
        ranges: Ranges | None = None,
        arms: int = 5,
        render_mode: None = None,
    ) -> None:
        require(
            isinstance(arms, int | np.integer) and arms >= 2, f"a bandit needs at least 2 arms, got {arms}"
        )
        self.arms = int(arms)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(self.arms)
        self.render_mode = render_mode
        self._init_task_family(task, ranges)

    def default_ranges(self) -> dict[str, tuple[float, float]]:
        return {f"p{arm}": (0.0, 1.0) for arm in range(self.arms)}

    def parameter_bounds(self) -> dict[str, tuple[float, float]]:
        return self.default_ranges()

    def _apply_task(self, task: Task) -> None:
        self._means = [task[f"p{arm}"] for arm in range(self.arms)]

    def arm_means(self) -> np.ndarray:
        """Each arm's success probability, shape ``[arms]``."""
        return np.array(self._means)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        arm = int(action)
        require(0 <= arm < self.arms, f"arm {arm} does not exist; this bandit has arms 0 to {self.arms - 1}")
        reward = 1.0 if self.np_random.random() < self._means[arm] else 0.0
        return np.zeros(1, dtype=np.float32), reward, True, False, {}
