"""Meta-World's ML1 and ML10 benchmarks (Yu et al., CoRL 2019, "Meta-World: A Benchmark and Evaluation for
Multi-Task and Meta Reinforcement Learning"; Farama's ``metaworld`` 3.x) as lit-meta task families.

A benchmark is a finite list of tasks per split, each a Sawyer arm environment with one goal variation
(the goal hidden from the observation, as in the paper's meta-learning benchmarks): ML1 has one
manipulation environment with 50 training and 50 test goals, ML10 ten training environments and five
other test environments, 50 goals each. Here a task is ``{"task": i}``, the index of one of them in the
benchmark's training tasks followed by its test tasks; :meth:`MetaWorldFamily.split_tasks` says which
indices belong to which split. Training draws only training tasks; the test split is only ever scored by
``evaluate.py``; validation scores goals of the training split (Meta-World has no third split).

An episode lasts Meta-World's 500 steps; ``info["success"]`` is Meta-World's success flag, and an episode
succeeds when some step of it does (Meta-World's own evaluation ends an episode at its first success).
"""

from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from lit_meta.envs.base import Ranges, Task, TaskFamilyMixin
from lit_meta.errors import ConfigError, require

INSTALL_HINT = (
    "Meta-World is not installed: run `.venv/bin/pip install --no-deps metaworld==3.1.1` "
    "(or `make setup`, which installs it), with the mujoco extra already in place"
)
try:
    import metaworld
except ImportError as _error:  # pragma: no cover - exercised only without the package
    raise ConfigError(INSTALL_HINT) from _error

HORIZON = 500
"""Meta-World's episode length (``max_path_length``)."""
TASK_KEY = "task"


@cache
def _benchmark(name: str, env_name: str | None, seed: int) -> "metaworld.Benchmark":
    """Meta-World's benchmark ``name`` (its goal variations drawn with ``seed``), built once per process."""
    if name == "ML1":
        require(
            env_name in metaworld.ML1.ENV_NAMES,
            f"'{env_name}' is not a Meta-World environment; "
            f"choose one of {', '.join(metaworld.ML1.ENV_NAMES)}",
        )
        return metaworld.ML1(env_name, seed=seed)
    return metaworld.ML10(seed=seed)


class MetaWorldFamily(TaskFamilyMixin, gym.Env):
    """The tasks of one Meta-World benchmark behind the task-family protocol (``sample_tasks``,
    ``set_task``, ``get_task``). One Sawyer environment per Meta-World environment name is built on first
    use and kept; :meth:`set_task` sets the one the task belongs to.

    :param task: ``{"task": index}`` (default: the first training task).
    :param ranges: not supported (the tasks are the benchmark's).
    :param benchmark_seed: the seed Meta-World draws its goal variations with.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    POSITIVE_PARAMETERS: ClassVar[bool] = False
    BENCHMARK: ClassVar[str] = ""

    def __init__(
        self,
        task: Mapping[str, float] | None = None,
        ranges: Ranges | None = None,
        benchmark_seed: int = 0,
        env_name: str | None = None,
        render_mode: None = None,
    ) -> None:
        require(
            ranges is None, f"{type(self).__name__}'s tasks are Meta-World's goal variations: drop ranges"
        )
        benchmark = _benchmark(self.BENCHMARK, env_name, benchmark_seed)
        self._tasks = [*benchmark.train_tasks, *benchmark.test_tasks]
        self._train_count = len(benchmark.train_tasks)
        self._classes = {**benchmark.train_classes, **benchmark.test_classes}
        self._envs: dict[str, gym.Env] = {}
        self.render_mode = render_mode
        template = self._env(self._tasks[0].env_name)
        space = template.observation_space
        self.observation_space = gym.spaces.Box(
            space.low.astype(np.float32), space.high.astype(np.float32), dtype=np.float32
        )
        self.action_space = template.action_space
        self._active = template
        self._init_task_family(task, None)

    def _env(self, env_name: str) -> gym.Env:
        if env_name not in self._envs:
            self._envs[env_name] = self._classes[env_name]()
        return self._envs[env_name]

    # --- the task-family protocol -------------------------------------------------------------------

    def default_ranges(self) -> dict[str, tuple[float, float]]:
        return {TASK_KEY: (0.0, float(len(self._tasks) - 1))}

    def default_task(self) -> Task:
        return {TASK_KEY: 0.0}

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[Task]:
        """``num_tasks`` training tasks, uniformly (with replacement)."""
        return [{TASK_KEY: float(index)} for index in rng.integers(0, self._train_count, num_tasks)]

    def split_tasks(self, split: str) -> list[Task]:
        """Every task of ``split``: the benchmark's test tasks for ``test``, its training tasks otherwise."""
        indices = range(self._train_count, len(self._tasks)) if split == "test" else range(self._train_count)
        return [{TASK_KEY: float(index)} for index in indices]

    def _apply_task(self, task: Task) -> None:
        index = task[TASK_KEY]
        require(float(index).is_integer(), f"a Meta-World task is an index, got {TASK_KEY}={index}")
        world_task = self._tasks[int(index)]
        self._active = self._env(world_task.env_name)
        self._active.set_task(world_task)

    def task_name(self) -> str:
        """The Meta-World environment name of the current task (e.g. ``reach-v3``)."""
        return self._tasks[int(self._task[TASK_KEY])].env_name

    # --- gymnasium ------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._active.seed(seed)
        observation, info = self._active.reset()
        return observation.astype(np.float32), info

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self._active.step(np.asarray(action))
        return observation.astype(np.float32), float(reward), bool(terminated), bool(truncated), info

    def close(self) -> None:
        for env in self._envs.values():
            env.close()


class MetaWorldML1Env(MetaWorldFamily):
    """ML1: one Meta-World environment (``env_name``, default ``reach-v3``), 50 training and 50 test goals."""

    BENCHMARK: ClassVar[str] = "ML1"

    def __init__(
        self,
        task: Mapping[str, float] | None = None,
        ranges: Ranges | None = None,
        env_name: str = "reach-v3",
        benchmark_seed: int = 0,
        render_mode: None = None,
    ) -> None:
        super().__init__(task, ranges, benchmark_seed, env_name, render_mode)


class MetaWorldML10Env(MetaWorldFamily):
    """ML10: ten training environments and five test environments, 50 goals each."""

    BENCHMARK: ClassVar[str] = "ML10"

    def __init__(
        self,
        task: Mapping[str, float] | None = None,
        ranges: Ranges | None = None,
        benchmark_seed: int = 0,
        render_mode: None = None,
    ) -> None:
        super().__init__(task, ranges, benchmark_seed, None, render_mode)


__all__ = ["HORIZON", "INSTALL_HINT", "MetaWorldFamily", "MetaWorldML1Env", "MetaWorldML10Env"]
