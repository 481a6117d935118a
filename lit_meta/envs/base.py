"""Task distributions as gymnasium environments: one environment class per family of MDPs.

A task is a dict of physical parameters. Every family has the same small API (the one learn2learn's
``MetaEnv`` and garage's task-based environments expose): ``sample_tasks(n, rng)`` draws tasks from the
family's ranges, ``set_task(task)`` turns the environment into that task, ``get_task()`` returns it.
"""

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from lit_meta.errors import ConfigError, require

Task = dict[str, float]
Ranges = Mapping[str, tuple[float, float] | list[float]]


class TaskFamilyMixin:
    """Mixed into a gymnasium environment whose dynamics depend on a few float parameters.

    Subclasses set ``DEFAULT_RANGES`` (the parameters that vary and their sampling intervals) and
    implement :meth:`_apply_task`. ``ranges`` narrows or widens the intervals of some parameters;
    a parameter given a single-value interval ``[v, v]`` is held fixed.
    """

    DEFAULT_RANGES: ClassVar[dict[str, tuple[float, float]]] = {}
    POSITIVE_PARAMETERS: ClassVar[bool] = True
    """Whether every parameter is a physical quantity (a mass, a length) whose range must be > 0."""
    PARAMETER_BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {}
    """Limits a requested range must lie within (a probability in [0, 1]); unnamed parameters have none."""

    def default_ranges(self) -> dict[str, tuple[float, float]]:
        """The sampling intervals without ``ranges``: :attr:`DEFAULT_RANGES`, unless the family's parameters
        depend on its constructor (a bandit's arms)."""
        return dict(self.DEFAULT_RANGES)

    def parameter_bounds(self) -> dict[str, tuple[float, float]]:
        """The limits of requested ranges: :attr:`PARAMETER_BOUNDS`, or per instance like the ranges."""
        return dict(self.PARAMETER_BOUNDS)

    def _init_task_family(self, task: Mapping[str, float] | None, ranges: Ranges | None) -> None:
        self.ranges = check_ranges(
            type(self).__name__,
            self.default_ranges(),
            ranges,
            positive=self.POSITIVE_PARAMETERS,
            bounds=self.parameter_bounds(),
        )
        self._task: Task = {}
        self.set_task(task if task is not None else self.default_task())

    def default_task(self) -> Task:
        """The midpoint of every range."""
        return {name: (low + high) / 2 for name, (low, high) in self.ranges.items()}

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[Task]:
        """``num_tasks`` tasks with each parameter uniform in its range."""
        return [
            {name: float(rng.uniform(low, high)) for name, (low, high) in self.ranges.items()}
            for _ in range(num_tasks)
        ]

    def split_tasks(self, split: str) -> list[Task] | None:
        """Every task of ``split`` (``train``, ``val``, ``test``) for a family with finitely many tasks per
        split (Meta-World's goal variations); ``None`` for one with continuous parameters, whose held-out
        tasks are fresh draws from a distinct seed stream."""
        return None

    def set_task(self, task: Mapping[str, float]) -> None:
        """Make this environment the MDP ``task``; parameters not named keep their current values."""
        unknown = sorted(set(task) - set(self.ranges))
        require(
            not unknown,
            f"{type(self).__name__} has no task parameter {', '.join(unknown)}; "
            f"its parameters are {', '.join(self.ranges)}",
        )
        for name, value in task.items():
            low, high = self.ranges[name]
            require(
                low <= float(value) <= high,
                f"task parameter {name}={value} is outside its range [{low}, {high}]",
            )
        self._task = {**self._task, **{name: float(value) for name, value in task.items()}}
        self._apply_task(self._task)

    def get_task(self) -> Task:
        return dict(self._task)

    def _apply_task(self, task: Task) -> None:
        raise NotImplementedError


class GymnasiumTaskFamily(TaskFamilyMixin):
    """A task family over one of gymnasium's environments whose constructor takes only ``render_mode``
    (``class CartPoleTaskEnv(GymnasiumTaskFamily, CartPoleEnv)``): it is built as gymnasium builds it,
    then set to ``task`` (default: the middle of every range of ``ranges``)."""

    def __init__(
        self,
        task: Mapping[str, float] | None = None,
        ranges: Ranges | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)  # the gymnasium environment's own constructor
        self._init_task_family(task, ranges)


def check_ranges(
    family: str,
    defaults: dict[str, tuple[float, float]],
    ranges: Ranges | None,
    positive: bool = True,
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> dict:
    """``defaults`` updated with ``ranges``, each checked to be a ``[low, high]`` pair with low <= high,
    with low > 0 if ``positive``, and inside its ``bounds`` if it has any."""
    merged = dict(defaults)
    for name, interval in (ranges or {}).items():
        if name not in defaults:
            raise ConfigError(
                f"{family} has no task parameter '{name}'; its parameters are {', '.join(defaults)}"
            )
        require(
            isinstance(interval, tuple | list) and len(interval) == 2,
            f"the range of {name} must be [low, high], got {interval!r}",
        )
        low, high = float(interval[0]), float(interval[1])
        require(low <= high, f"the range of {name} must have low <= high, got [{low}, {high}]")
        if positive:
            require(
                low > 0, f"the range of {name} must be positive (a physical quantity), got [{low}, {high}]"
            )
        if name in (bounds or {}):
            bound_low, bound_high = bounds[name]
            require(
                bound_low <= low and high <= bound_high,
                f"the range of {name} must lie within [{bound_low}, {bound_high}], got [{low}, {high}]",
            )
        merged[name] = (low, high)
    return merged
