"""Sine-wave regression tasks (MAML paper §5.1, Reptile paper §6.1): y = A·sin(x + φ)."""

import math
from functools import partial

import torch
from torch import Tensor

from lit_meta.datamodules.base import TaskDataModule
from lit_meta.datamodules.streams import BatchSampler, TaskStream
from lit_meta.errors import require, require_positive
from lit_meta.seeding import derive_seed
from lit_meta.tasks import TaskBatch


class SineTasks:
    """Amplitude A ~ U(amplitude_range), phase φ ~ U(phase_range), inputs x ~ U(x_range).

    The MAML paper draws φ from [0, π], the Reptile paper from [0, 2π]; both use A in [0.1, 5] and
    x in [-5, 5].
    """

    def __init__(
        self,
        amplitude_range: tuple[float, float] = (0.1, 5.0),
        phase_range: tuple[float, float] = (0.0, math.pi),
        x_range: tuple[float, float] = (-5.0, 5.0),
    ) -> None:
        for name, (low, high) in {
            "amplitude_range": amplitude_range,
            "phase_range": phase_range,
            "x_range": x_range,
        }.items():
            require(low < high, f"{name} must be an increasing pair [low, high], got [{low}, {high}]")
        self.amplitude_range = amplitude_range
        self.phase_range = phase_range
        self.x_range = x_range

    def sample(self, num_tasks: int, generator: torch.Generator, shots: int, queries: int) -> TaskBatch:
        """``num_tasks`` tasks with ``shots`` support and ``queries`` query points each."""
        amplitude = _uniform((num_tasks,), self.amplitude_range, generator)
        phase = _uniform((num_tasks,), self.phase_range, generator)
        x = _uniform((num_tasks, shots + queries, 1), self.x_range, generator)
        y = self.function(amplitude, phase, x)
        return TaskBatch(
            support_x=x[:, :shots],
            support_y=y[:, :shots],
            query_x=x[:, shots:],
            query_y=y[:, shots:],
            info={"amplitude": amplitude, "phase": phase},
        )

    @staticmethod
    def function(amplitude: Tensor, phase: Tensor, x: Tensor) -> Tensor:
        """A·sin(x + φ) for per-task ``amplitude``/``phase`` of shape ``[B]`` and ``x`` of ``[B, N, 1]``."""
        return amplitude[:, None, None] * torch.sin(x + phase[:, None, None])


def _uniform(shape: tuple[int, ...], bounds: tuple[float, float], generator: torch.Generator) -> Tensor:
    low, high = bounds
    return torch.rand(shape, generator=generator) * (high - low) + low


class SineDataModule(TaskDataModule):
    """Few-shot sine regression: an endless training stream and fixed validation and test task sets.

    :param shots: support points K per task at validation and test time (10 in both papers).
    :param queries: query points per task, on which adaptation is scored.
    :param train_shots: support points per task during meta-training (default: ``shots``); the
        Reptile paper trains on 50 points per task and tests with 10.
    :param meta_batch_size: tasks per meta-iteration.
    :param amplitude_range: A ~ U[low, high].
    :param phase_range: φ ~ U[low, high]: [0, π] in the MAML paper, [0, 2π] in the Reptile paper.
    :param x_range: x ~ U[low, high].
    :param val_tasks: size of the fixed validation task set (the same tasks at every validation).
    :param test_tasks: size of the fixed test task set.
    :param eval_batch_size: tasks per validation/test batch.
    :param epoch_length: meta-iterations per training epoch.
    :param seed: seed of the task streams; train, validation and test tasks use distinct derived seeds.
    """

    def __init__(
        self,
        shots: int = 10,
        queries: int = 10,
        train_shots: int | None = None,
        meta_batch_size: int = 25,
        amplitude_range: tuple[float, float] = (0.1, 5.0),
        phase_range: tuple[float, float] = (0.0, math.pi),
        x_range: tuple[float, float] = (-5.0, 5.0),
        val_tasks: int = 100,
        test_tasks: int = 100,
        eval_batch_size: int = 25,
        epoch_length: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        require_positive("shots", shots)
        require_positive("queries", queries)
        if train_shots is not None:
            require_positive("train_shots", train_shots)
        require_positive("meta_batch_size", meta_batch_size)
        require_positive("val_tasks", val_tasks)
        require_positive("test_tasks", test_tasks)
        require_positive("eval_batch_size", eval_batch_size)
        require_positive("epoch_length", epoch_length)
        self.save_hyperparameters()
        self.tasks = SineTasks(tuple(amplitude_range), tuple(phase_range), tuple(x_range))
        self.shots = shots
        self.queries = queries
        self.train_shots = train_shots or shots
        self.train_stream = TaskStream(
            partial(self.tasks.sample, shots=self.train_shots, queries=queries),
            batch_size=meta_batch_size,
            seed=derive_seed(seed, "train"),
            epoch_length=epoch_length,
        )

    def eval_sampler(self, split: str, shots: int | None) -> BatchSampler:
        return partial(self.tasks.sample, shots=shots or self.shots, queries=self.queries)

    def ground_truth(self, tasks: TaskBatch, x: Tensor) -> Tensor:
        """The true function of each task at inputs ``x`` (``[B, N, 1]``), for plots."""
        return self.tasks.function(tasks.info["amplitude"], tasks.info["phase"], x)
