"""Seeded, resumable streams of task batches.

Lightning saves neither RNG state nor the position of an endless stream, so the training stream keeps
its own generator and reports it through ``state_dict``; Lightning stores the state of a stateful
training iterable in the checkpoint's loop state and restores it before iterating again. The stream has
a length (one "epoch" of meta-iterations), which also stops Lightning from pre-fetching a batch ahead, so
the saved position is exactly the number of batches the model consumed.
"""

from collections.abc import Callable, Iterator

import numpy as np
import torch

from lit_meta.errors import require_positive
from lit_meta.tasks import TaskBatch

BatchSampler = Callable[[int, torch.Generator], TaskBatch]
"""``sample(num_tasks, generator)`` draws ``num_tasks`` tasks using ``generator`` and no other randomness."""


class TaskStream:
    """An endless stream of batches of ``batch_size`` tasks, cut into epochs of ``epoch_length`` batches.

    :param sample: the task sampler.
    :param batch_size: tasks per batch (the meta-batch size).
    :param seed: seed of the stream's own generator.
    :param epoch_length: batches per epoch (Lightning's progress bar counts them).
    """

    def __init__(self, sample: BatchSampler, batch_size: int, seed: int, epoch_length: int) -> None:
        require_positive("meta_batch_size", batch_size)
        require_positive("epoch_length", epoch_length)
        self.sample = sample
        self.batch_size = batch_size
        self.epoch_length = epoch_length
        self.generator = torch.Generator().manual_seed(seed)
        self.batches_drawn = 0

    def __len__(self) -> int:
        return self.epoch_length

    def __iter__(self) -> Iterator[TaskBatch]:
        for _ in range(self.epoch_length):
            self.batches_drawn += 1
            yield self.sample(self.batch_size, self.generator)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.batches_drawn = state["batches_drawn"]


def stream_seed(seed: int, stream: str) -> int:
    """A seed for one named stream (``train``, ``val``, ``test``...) derived from a run's seed."""
    entropy = [seed, *stream.encode()]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class FixedTasks:
    """A fixed set of task batches, iterated in the same order every time (one Lightning dataloader)."""

    def __init__(self, batches: list[TaskBatch]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[TaskBatch]:
        return iter(self.batches)

    def __getitem__(self, index: int) -> TaskBatch:
        return self.batches[index]


def fixed_task_batches(sample: BatchSampler, seed: int, num_tasks: int, batch_size: int) -> FixedTasks:
    """``num_tasks`` tasks drawn once from ``seed`` and split into batches: the same tasks every time."""
    require_positive("the number of evaluation tasks", num_tasks)
    require_positive("eval_batch_size", batch_size)
    tasks = sample(num_tasks, torch.Generator().manual_seed(seed))
    return FixedTasks([tasks[start : start + batch_size] for start in range(0, num_tasks, batch_size)])
