"""CartPole with varied physics: pole length, pole mass and gravity differ from task to task."""

from typing import ClassVar

from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from lit_meta.envs.base import GymnasiumTaskFamily, Task


class CartPoleTaskEnv(GymnasiumTaskFamily, CartPoleEnv):
    """Gymnasium's CartPole (Barto, Sutton & Anderson, 1983) as a task family.

    :param task: ``{"length": ..., "masspole": ..., "gravity": ...}`` (``length`` is half the pole's
        length, as in gymnasium); default the middle of each range.
    :param ranges: sampling intervals, overriding :attr:`DEFAULT_RANGES` (gymnasium's own values are
        length 0.5, masspole 0.1, gravity 9.8).
    """

    DEFAULT_RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "length": (0.25, 1.0),
        "masspole": (0.05, 0.5),
        "gravity": (7.0, 12.0),
    }

    def _apply_task(self, task: Task) -> None:
        self.length = task["length"]
        self.masspole = task["masspole"]
        self.gravity = task["gravity"]
        # quantities the dynamics read, derived from the parameters in CartPoleEnv.__init__
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length
