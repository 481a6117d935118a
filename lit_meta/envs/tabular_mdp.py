"""Random tabular MDPs, the task family of RL²'s tabular experiments (Duan et al., 2016, section 4.1 and
Table 2): ``states`` states, ``actions`` actions, each (state, action)'s mean reward drawn from N(1, 1) and
its next-state distribution from a flat Dirichlet; the reward of a step is Gaussian with unit variance
around the mean; an episode lasts 10 steps (the registered horizon) from state 0.

A task is ``{"mdp": k}``: the MDP drawn from seed ``k`` (drawn with the task's own generator, so any process
rebuilds the same MDP from the number alone). Observations are the one-hot state.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from lit_meta.envs.base import Ranges, Task, TaskFamilyMixin
from lit_meta.errors import require

MDP_KEY = "mdp"
MDP_SEEDS = 2**31 - 1
"""Tasks are the MDPs of seeds 0 .. MDP_SEEDS - 1."""


class RandomTabularMDPEnv(TaskFamilyMixin, gym.Env):
    """One random tabular MDP of the family (module docstring).

    :param task: ``{"mdp": k}``; default the MDP of seed 0.
    :param ranges: refused: the family is its seeds.
    :param states: number of states (the paper: 10).
    :param actions: number of actions (the paper: 5).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    POSITIVE_PARAMETERS: ClassVar[bool] = False

    def __init__(
        self,
        task: Mapping[str, float] | None = None,
        ranges: Ranges | None = None,
        states: int = 10,
        actions: int = 5,
        render_mode: None = None,
    ) -> None:
        require(ranges is None, "RandomTabularMDPEnv's tasks are MDP seeds: drop ranges")
        for name, value in {"states": states, "actions": actions}.items():
            require(
                isinstance(value, int | np.integer) and value >= 2, f"{name} must be at least 2, got {value}"
            )
        self.states, self.actions = int(states), int(actions)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.states,), np.float32)
        self.action_space = gym.spaces.Discrete(self.actions)
        self.render_mode = render_mode
        self._state = 0
        self._init_task_family(task, None)

    def default_ranges(self) -> dict[str, tuple[float, float]]:
        return {MDP_KEY: (0.0, float(MDP_SEEDS - 1))}

    def default_task(self) -> Task:
        return {MDP_KEY: 0.0}

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[Task]:
        """``num_tasks`` MDPs: seeds uniform in 0 .. MDP_SEEDS - 1."""
        return [{MDP_KEY: float(seed)} for seed in rng.integers(0, MDP_SEEDS, num_tasks)]

    def _apply_task(self, task: Task) -> None:
        seed = task[MDP_KEY]
        require(float(seed).is_integer(), f"a tabular MDP task is a seed, got {MDP_KEY}={seed}")
        self.reward_means, self.transitions = random_mdp(int(seed), self.states, self.actions)

    def _observation(self) -> np.ndarray:
        observation = np.zeros(self.states, dtype=np.float32)
        observation[self._state] = 1.0
        return observation

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._state = 0
        return self._observation(), {}

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = int(action)
        require(
            0 <= action < self.actions, f"action {action} does not exist; actions are 0 to {self.actions - 1}"
        )
        state = self._state
        reward = float(self.np_random.normal(self.reward_means[state, action], 1.0))
        self._state = int(self.np_random.choice(self.states, p=self.transitions[state, action]))
        return self._observation(), reward, False, False, {}


def random_mdp(seed: int, states: int, actions: int) -> tuple[np.ndarray, np.ndarray]:
    """The MDP of ``seed``: mean rewards ``[S, A]`` from N(1, 1) and next-state distributions ``[S, A, S]``
    from a flat Dirichlet."""
    rng = np.random.default_rng(seed)
    return rng.normal(1.0, 1.0, (states, actions)), rng.dirichlet(np.ones(states), (states, actions))


__all__ = ["MDP_KEY", "RandomTabularMDPEnv", "random_mdp"]
