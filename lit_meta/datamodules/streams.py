"""Seeded, resumable streams of task batches.

Lightning saves neither RNG state nor the position of an endless stream, so the training stream keeps
its own generator and reports it through ``state_dict``; Lightning stores the state of a stateful
training iterable in the checkpoint's loop state and restores it before iterating again. The stream has
a length (one "epoch" of meta-iterations), which also stops Lightning from pre-fetching a batch ahead, so
the saved position is exactly the number of batches the model consumed.

Under data-parallel training (Lightning's DDP) every rank draws the whole meta-batch from the same
seeded stream and keeps its own contiguous share (:func:`rank_share`): the ranks see distinct tasks,
their union is exactly the stream one process would see, and the stream's state is the same on every
rank, so the one checkpoint rank 0 writes resumes all of them.
"""

from collections.abc import Callable, Iterator

import numpy as np
import torch

from lit_meta.errors import require, require_positive
from lit_meta.seeding import derive_seeds
from lit_meta.tasks import TASK_SEED, TaskBatch

BatchSampler = Callable[[int, torch.Generator], TaskBatch]
"""``sample(num_tasks, generator)`` draws ``num_tasks`` tasks using ``generator`` and no other randomness."""


def rank_share(batch_size: int, rank: int, world_size: int) -> slice:
    """The contiguous share of a meta-batch of ``batch_size`` tasks that rank ``rank`` of ``world_size``
    adapts; :class:`~lit_meta.errors.ConfigError` unless the batch splits evenly (equal shares are what
    make the average of the ranks' meta-gradients the meta-gradient of the whole batch)."""
    require(
        batch_size % world_size == 0,
        f"meta_batch_size {batch_size} does not split evenly over {world_size} processes "
        "(trainer.devices × trainer.num_nodes); choose a multiple of the number of processes",
    )
    share = batch_size // world_size
    return slice(rank * share, (rank + 1) * share)


class ShardedStream:
    """A seeded stream of meta-batches of ``batch_size`` tasks, cut into epochs of ``epoch_length``
    batches, that every rank draws whole and of which it yields its own share. ``batches_drawn`` counts
    the batches drawn so far (subclasses save it in their state)."""

    def __init__(self, batch_size: int, seed: int, epoch_length: int) -> None:
        require_positive("meta_batch_size", batch_size)
        require_positive("epoch_length", epoch_length)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch_length = epoch_length
        self.batches_drawn = 0
        self.share = slice(0, batch_size)

    def __len__(self) -> int:
        return self.epoch_length

    def shard(self, rank: int, world_size: int) -> None:
        """Yield rank ``rank``'s share of every batch from now on (see :func:`rank_share`)."""
        self.share = rank_share(self.batch_size, rank, world_size)


class ShardedTrainingData:
    """What a DataModule whose ``train_stream`` is a :class:`ShardedStream` does under data-parallel
    training: refuse a meta-batch that does not split over the processes, and give each its share."""

    train_stream: ShardedStream

    def check_trainer(self, trainer) -> None:
        """Refuse, in one sentence, a number of processes the meta-batch does not split evenly over."""
        rank_share(self.train_stream.batch_size, 0, trainer.world_size)

    def setup(self, stage: str) -> None:
        """Each process meta-trains on its own share of every meta-batch."""
        if self.trainer is not None:
            self.train_stream.shard(self.trainer.global_rank, self.trainer.world_size)


class TaskStream(ShardedStream):
    """An endless stream of batches of ``batch_size`` tasks, cut into epochs of ``epoch_length`` batches.

    :param sample: the task sampler.
    :param batch_size: tasks per batch (the meta-batch size).
    :param seed: seed of the stream's own generator.
    :param epoch_length: batches per epoch (Lightning's progress bar counts them).

    Each task carries its own seed in ``info[TASK_SEED]``, derived from ``seed`` and its position in the
    stream. :meth:`shard` makes the stream yield one rank's share of each batch.
    """

    def __init__(self, sample: BatchSampler, batch_size: int, seed: int, epoch_length: int) -> None:
        super().__init__(batch_size, seed, epoch_length)
        self.sample = sample
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[TaskBatch]:
        for _ in range(self.epoch_length):
            batch = self.sample(self.batch_size, self.generator)
            seeds = derive_seeds(self.seed, self.batches_drawn, count=self.batch_size)
            batch.info[TASK_SEED] = torch.from_numpy(seeds.astype(np.int64))
            self.batches_drawn += 1
            yield batch[self.share]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.batches_drawn = state["batches_drawn"]


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
