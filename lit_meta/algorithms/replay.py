"""Replay for multi-task off-policy RL: one circular buffer per task, so a task's batch never holds
another task's transitions (multi-task SAC, :mod:`lit_meta.algorithms.mt_sac`)."""

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import Tensor

from lit_meta.errors import ConfigError, require, require_positive

BATCH_KEYS = ("obs", "action", "reward", "next_obs", "terminated")
"""The keys of a replay batch, as :meth:`TaskReplayBuffers.sample` returns and
:meth:`~lit_meta.algorithms.mt_sac.MultiTaskSAC.losses` reads them: ``obs [B, O]``, ``action [B, A]``,
``reward [B]``, ``next_obs [B, O]``, ``terminated [B]``."""


class TaskReplayBuffers:
    """One circular replay buffer of ``capacity`` transitions per task (numpy storage, float32).

    Tasks are keyed by ``str(task_id)`` as in VarShare, and a task's buffer is created on its first
    :meth:`add`. :meth:`state_dict` holds only tensors, numbers and strings, so it survives
    ``torch.load(weights_only=True)`` and resuming samples exactly what the original would.
    """

    def __init__(
        self, observation_size: int, action_size: int, capacity: int, task_ids: Iterable = ()
    ) -> None:
        require_positive("observation_size", observation_size)
        require_positive("action_size", action_size)
        require_positive("capacity", capacity)
        self.observation_size, self.action_size, self.capacity = observation_size, action_size, capacity
        self._buffers: dict[str, dict[str, np.ndarray]] = {}
        self._position: dict[str, int] = {}
        self._size: dict[str, int] = {}
        for task_id in task_ids:
            self._create(str(task_id))

    def _widths(self) -> dict[str, tuple[int, ...]]:
        obs, act = (self.observation_size,), (self.action_size,)
        return {"obs": obs, "action": act, "reward": (), "next_obs": obs, "terminated": ()}

    def _create(self, key: str) -> None:
        if key not in self._buffers:
            self._buffers[key] = {
                name: np.zeros((self.capacity, *shape), dtype=np.float32)
                for name, shape in self._widths().items()
            }
            self._position[key], self._size[key] = 0, 0

    @property
    def task_ids(self) -> list[str]:
        return list(self._buffers)

    def size(self, task_id) -> int:
        """How many transitions ``task_id`` holds (0 for a task never added to)."""
        return self._size.get(str(task_id), 0)

    def add(self, task_id, obs, action, reward, next_obs, terminated) -> None:
        """Store one transition of ``task_id``, or a batch of them (leading dimension), overwriting the
        task's oldest once its buffer is full."""
        values = {
            "obs": obs,
            "action": action,
            "reward": reward,
            "next_obs": next_obs,
            "terminated": terminated,
        }
        rows = {}
        for name, shape in self._widths().items():
            array = np.asarray(values[name], dtype=np.float32)
            try:
                rows[name] = array.reshape(-1, *shape)
            except ValueError:
                raise ConfigError(
                    f"{name} of shape {array.shape} does not hold rows of shape {shape}"
                ) from None
        counts = {len(row) for row in rows.values()}
        require(
            len(counts) == 1, "obs, action, reward, next_obs and terminated must hold as many transitions"
        )
        key = str(task_id)
        self._create(key)
        n = counts.pop()
        indices = (self._position[key] + np.arange(n)) % self.capacity
        for name, row in rows.items():
            self._buffers[key][name][indices] = row
        self._position[key] = int((self._position[key] + n) % self.capacity)
        self._size[key] = min(self._size[key] + n, self.capacity)

    def clear(self, task_id) -> None:
        """Forget every transition of ``task_id`` (PEARL refills a task's context buffer at each visit)."""
        key = str(task_id)
        if key in self._buffers:
            self._position[key], self._size[key] = 0, 0

    def sample(self, task_id, batch_size: int, rng: np.random.Generator, device=None) -> dict[str, Tensor]:
        """``batch_size`` transitions of ``task_id`` drawn uniformly with replacement, as float32 tensors
        keyed by :data:`BATCH_KEYS`."""
        require_positive("batch_size", batch_size)
        size = self.size(task_id)
        require(size > 0, f"the replay buffer of task {task_id!r} is empty")
        indices = rng.integers(0, size, size=batch_size)
        buffer = self._buffers[str(task_id)]
        return {name: torch.as_tensor(buffer[name][indices], device=device) for name in BATCH_KEYS}

    def state_dict(self) -> dict:
        """Filled storage, write position and size of every task, as tensors and numbers."""
        tasks = {}
        for key, buffer in self._buffers.items():
            size = self._size[key]
            tasks[key] = {name: torch.from_numpy(buffer[name][:size].copy()) for name in BATCH_KEYS}
            tasks[key].update(position=self._position[key], size=size)
        return {
            "observation_size": self.observation_size,
            "action_size": self.action_size,
            "capacity": self.capacity,
            "tasks": tasks,
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what :meth:`state_dict` saved, into buffers of the same sizes and capacity."""
        for name in ("observation_size", "action_size", "capacity"):
            require(
                state.get(name) == getattr(self, name),
                f"the saved replay buffers have {name} {state.get(name)}, these have {getattr(self, name)}",
            )
        self._buffers, self._position, self._size = {}, {}, {}
        for key, saved in state["tasks"].items():
            self._create(key)
            size = int(saved["size"])
            for name in BATCH_KEYS:
                self._buffers[key][name][:size] = saved[name].numpy()
            self._position[key], self._size[key] = int(saved["position"]), size


__all__ = ["BATCH_KEYS", "TaskReplayBuffers"]
