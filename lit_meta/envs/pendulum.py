"""Pendulum swing-up with varied physics: mass, length and gravity differ from task to task."""

from typing import ClassVar

from gymnasium.envs.classic_control.pendulum import PendulumEnv

from lit_meta.envs.base import GymnasiumTaskFamily, Task


class PendulumTaskEnv(GymnasiumTaskFamily, PendulumEnv):
    """Gymnasium's Pendulum as a task family (gymnasium's own values: m = 1, l = 1, g = 10).

    :param task: ``{"mass": ..., "length": ..., "gravity": ...}``; default the middle of each range.
    :param ranges: sampling intervals, overriding :attr:`DEFAULT_RANGES`.
    """

    DEFAULT_RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "mass": (0.5, 1.5),
        "length": (0.5, 1.5),
        "gravity": (8.0, 12.0),
    }

    def _apply_task(self, task: Task) -> None:
        self.m = task["mass"]
        self.l = task["length"]
        self.g = task["gravity"]
