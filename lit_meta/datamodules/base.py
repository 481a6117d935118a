"""What every few-shot DataModule shares: an endless training stream and fixed validation/test sets."""

from abc import abstractmethod

import pytorch_lightning as pl

from lit_meta.datamodules.streams import (
    BatchSampler,
    FixedTasks,
    ShardedTrainingData,
    TaskStream,
    fixed_task_batches,
)
from lit_meta.seeding import derive_seed


class TaskDataModule(ShardedTrainingData, pl.LightningDataModule):
    """A task distribution as a DataModule. Subclasses set ``self.train_stream`` and implement
    :meth:`eval_sampler`; their hyperparameters include ``seed``, ``val_tasks``, ``test_tasks`` and
    ``eval_batch_size``. Validation and test tasks are drawn once from seeds derived from ``seed``, so the
    same tasks are scored at every validation and by ``evaluate.py``."""

    train_stream: TaskStream

    @abstractmethod
    def eval_sampler(self, split: str, shots: int | None) -> BatchSampler:
        """The sampler of held-out ``split`` tasks with ``shots`` support examples (default: ``shots``)."""

    def eval_tasks(self, split: str, num_tasks: int, batch_size: int, shots: int | None = None) -> FixedTasks:
        """A fixed set of ``num_tasks`` tasks of ``split`` (``val`` or ``test``), in batches."""
        sample = self.eval_sampler(split, shots)
        return fixed_task_batches(sample, derive_seed(self.hparams.seed, split), num_tasks, batch_size)

    def describe(self) -> dict:
        """The data's settings, for reports (subclasses add where the data came from)."""
        return dict(self.hparams)

    def train_dataloader(self) -> TaskStream:
        return self.train_stream

    def val_dataloader(self) -> FixedTasks:
        return self.eval_tasks("val", self.hparams.val_tasks, self.hparams.eval_batch_size)

    def test_dataloader(self) -> FixedTasks:
        return self.eval_tasks("test", self.hparams.test_tasks, self.hparams.eval_batch_size)
