"""Where the tasks of meta-RL come from: a static list of environments, or a callable that makes them.

Any object with ``get_task(meta_step, seed) -> (env, info, origin_meta_step)`` and ``reset_history()``
can stand in for :class:`TaskGenerator`; the meta-algorithms (over SB3 learners, or
the RL DataModule's) need nothing else, and draw each meta-batch with :func:`sample_meta_batch`.
"""

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from lit_meta.errors import ConfigError, require
from lit_meta.seeding import meta_step_seed

TaskCallable = Callable[..., tuple[gym.Env, dict[str, Any]]]
REVISIT_POLICIES = ("random", "cyclic", "weighted")


class TaskGenerator:
    """Static tasks or a task callable, with a policy for revisiting tasks.

    * **Static** (``tasks``): a list of environments (or ``(env, info)`` pairs). ``random`` draws one
      uniformly, ``cyclic`` visits them in order, ``weighted`` draws with probabilities ``weights``.
      ``origin_meta_step`` is ``None``: the tasks exist before meta-training starts.
    * **Dynamic** (``task_callable``): ``task_callable(seed=..., **task_callable_params)`` returns
      ``(env, info)``; a task *is* its seed, so the same seed makes the same task again. Each call of
      :meth:`get_task` makes a new task, or, with probability ``revisit_prob`` once there is a history,
      revisits an earlier one chosen by the policy: ``random`` (uniform), ``cyclic`` (round robin over the
      history, oldest first) or ``weighted`` (proportional to ``weight_fn(info)``). ``origin_meta_step``
      is the meta-step at which the returned task first appeared.

    :param tasks: the static task list.
    :param task_callable: the task factory (exclusive with ``tasks``).
    :param task_callable_params: keyword arguments of every ``task_callable`` call.
    :param revisit_policy: ``random``, ``cyclic`` or ``weighted``.
    :param weights: static tasks: one non-negative weight per task (``weighted`` only).
    :param weight_fn: dynamic tasks: the weight of a task from its info (``weighted`` only).
    :param revisit_prob: dynamic tasks: probability of revisiting instead of making a new task.
    :param seed: seeds the generator's own choices (which task, whether to revisit).
    """

    def __init__(
        self,
        tasks: Sequence[gym.Env | tuple[gym.Env, dict]] | None = None,
        task_callable: TaskCallable | None = None,
        task_callable_params: Mapping[str, Any] | None = None,
        revisit_policy: str = "random",
        weights: Sequence[float] | None = None,
        weight_fn: Callable[[dict], float] | None = None,
        revisit_prob: float = 0.0,
        seed: int = 0,
    ) -> None:
        require(
            (tasks is None) != (task_callable is None),
            "give the TaskGenerator either a static list of tasks or a task_callable, not both or neither",
        )
        require(
            revisit_policy in REVISIT_POLICIES,
            f"unknown revisit policy '{revisit_policy}'; choose one of {', '.join(REVISIT_POLICIES)}",
        )
        require(0.0 <= revisit_prob <= 1.0, f"revisit_prob must be in [0, 1], got {revisit_prob}")
        self.revisit_policy = revisit_policy
        self.task_callable = task_callable
        self.task_callable_params = dict(task_callable_params or {})
        self.revisit_prob = revisit_prob
        self.weight_fn = weight_fn
        self.seed = seed
        self.tasks: list[tuple[gym.Env, dict]] | None = None
        self.probabilities: np.ndarray | None = None
        if tasks is not None:
            require(len(tasks) > 0, "the static task list is empty")
            self.tasks = [_as_env_and_info(task, f"static task {i}") for i, task in enumerate(tasks)]
            require(
                weight_fn is None and revisit_prob == 0.0,
                "weight_fn and revisit_prob apply to dynamic tasks (a task_callable), not to a static list",
            )
            if revisit_policy == "weighted":
                self.probabilities = _probabilities(weights, len(self.tasks))
            else:
                require(weights is None, "weights apply to the weighted revisit policy only")
        else:
            require(weights is None, "weights apply to a static task list; dynamic tasks take a weight_fn")
            require(
                _accepts_seed(task_callable),
                "task_callable must accept a seed keyword argument (a task is its seed)",
            )
            if revisit_policy == "weighted":
                require(weight_fn is not None, "weighted revisits of dynamic tasks need a weight_fn(info)")
        self.reset_history()

    # ------------------------------------------------------------------------------------------ the API
    def get_task(self, meta_step: int, seed: int | None = None) -> tuple[gym.Env, dict, int | None]:
        """A task for ``meta_step``: ``(env, info, origin_meta_step)``.

        ``seed`` makes a new dynamic task (default: drawn from the generator); static tasks ignore it.
        """
        if self.tasks is not None:
            index = self._choose(len(self.tasks), self.probabilities)
            env, info = self.tasks[index]
            self.visits[index] += 1
            return env, {**info, "task_index": index}, None
        if self.history and self.rng.random() < self.revisit_prob:
            weights = None
            if self.revisit_policy == "weighted":
                weights = _probabilities([self.weight_fn(entry["info"]) for entry in self.history], None)
            entry = self.history[self._choose(len(self.history), weights)]
            env, _ = self.make(entry["seed"])
            return env, entry["info"], entry["origin_meta_step"]
        task_seed = int(self.rng.integers(2**31)) if seed is None else int(seed)
        env, info = self.make(task_seed)
        info = {**info, "task_seed": task_seed}
        self.history.append({"seed": task_seed, "info": info, "origin_meta_step": int(meta_step)})
        return env, info, int(meta_step)

    def reset_history(self) -> None:
        """Forget every task made or visited, and restart the generator's random choices."""
        self.rng = np.random.default_rng(self.seed)
        self.history: list[dict] = []
        self.cursor = 0
        self.visits = [0] * (len(self.tasks) if self.tasks is not None else 0)

    def make(self, seed: int) -> tuple[gym.Env, dict]:
        """The dynamic task of ``seed``, checked to be ``(env, info)``."""
        result = self.task_callable(seed=seed, **self.task_callable_params)
        return _as_env_and_info(result, "the task_callable's result", pair_required=True)

    # ------------------------------------------------------------------------------------- resumability
    def state_dict(self) -> dict:
        return {
            "rng": self.rng.bit_generator.state,
            "history": [dict(entry) for entry in self.history],
            "cursor": self.cursor,
            "visits": list(self.visits),
        }

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.history = [dict(entry) for entry in state["history"]]
        self.cursor = state["cursor"]
        self.visits = list(state["visits"])

    def _choose(self, count: int, probabilities: np.ndarray | None) -> int:
        if self.revisit_policy == "cyclic":
            index = self.cursor % count
            self.cursor += 1
            return index
        return int(self.rng.choice(count, p=probabilities))


def sample_meta_batch(task_generator, meta_step: int, batch_size: int, seed: int) -> list[tuple]:
    """``batch_size`` tasks ``(env, info, origin_meta_step)`` for ``meta_step``, each asked for with its
    own :func:`meta_step_seed`."""
    tasks = []
    for index in range(batch_size):
        task = task_generator.get_task(meta_step, meta_step_seed(seed, "task", meta_step, index))
        if not (
            isinstance(task, tuple)
            and len(task) == 3
            and isinstance(task[0], gym.Env)
            and isinstance(task[1], Mapping)
        ):
            raise ConfigError(
                "task_generator.get_task(meta_step, seed) must return (env, info, origin_meta_step), "
                f"got {type(task).__name__}"
            )
        tasks.append(task)
    return tasks


def _as_env_and_info(task: object, what: str, pair_required: bool = False) -> tuple[gym.Env, dict]:
    if isinstance(task, gym.Env) and not pair_required:
        return task, {}
    if (
        isinstance(task, tuple)
        and len(task) == 2
        and isinstance(task[0], gym.Env)
        and isinstance(task[1], Mapping)
    ):
        return task[0], dict(task[1])
    raise ConfigError(
        f"{what} must be {'' if pair_required else 'an environment or '}a tuple (gymnasium.Env, dict), "
        f"got {type(task).__name__}" + (f" of {len(task)} items" if isinstance(task, tuple) else "")
    )


def _accepts_seed(function: Callable) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return True
    return any(p.name == "seed" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _probabilities(weights: Sequence[float] | None, count: int | None) -> np.ndarray:
    require(weights is not None, "the weighted revisit policy needs weights")
    values = np.asarray(weights, dtype=float)
    if count is not None:
        require(len(values) == count, f"weights has {len(values)} entries for {count} tasks")
    require(bool(np.all(values >= 0)) and values.sum() > 0, "weights must be non-negative and not all zero")
    return values / values.sum()


__all__ = ["REVISIT_POLICIES", "TaskGenerator", "sample_meta_batch"]
