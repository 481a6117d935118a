"""What every few-shot image-classification DataModule shares: a table of images per split in memory, an
endless training stream drawn from it (possibly "higher way" than the held-out tasks), and fixed
validation and test sets."""

from abc import abstractmethod
from collections.abc import Mapping
from functools import partial

import torch

from lit_meta.datamodules.base import TaskDataModule
from lit_meta.datamodules.classification import ClassificationTasks
from lit_meta.datamodules.images import ImageFormat
from lit_meta.datamodules.streams import BatchSampler, TaskStream
from lit_meta.errors import require_positive
from lit_meta.seeding import derive_seed

SPLITS = ("train", "val", "test")
COUNTS = ("meta_batch_size", "val_tasks", "test_tasks", "eval_batch_size", "epoch_length")


class ClassTableDataModule(TaskDataModule):
    """Subclasses save their hyperparameters (at least ``ways``, ``shots``, ``queries``, ``train_shots``,
    ``train_ways``, the :data:`COUNTS` and ``seed``), decode their images and call :meth:`use_tables`.

    ``ways``, ``shots`` and ``queries`` are those of the held-out tasks; meta-training draws
    ``train_ways`` (default ``ways``; Prototypical Networks train on more) classes of ``train_shots``
    (default ``shots``) support images and ``queries`` query images each.
    """

    tasks: dict[str, ClassificationTasks]

    @classmethod
    @abstractmethod
    def image_format(cls, hparams: Mapping) -> ImageFormat:
        """How a new image must be decoded to look like this dataset's (for ``adapt.py``), from the
        DataModule's hyperparameters alone: the data need not be on the machine."""

    @staticmethod
    def check_counts(**counts: int) -> None:
        for name, value in counts.items():
            require_positive(name, value)

    def use_tables(self, tables: dict[str, ClassificationTasks]) -> None:
        """Sample from ``tables`` (one per split), checking that every split holds enough classes and
        images for the configured tasks."""
        hparams = self.hparams
        self.tasks = tables
        self.ways, self.shots, self.queries = hparams.ways, hparams.shots, hparams.queries
        self.train_ways = hparams.get("train_ways") or hparams.ways
        self.train_shots = hparams.train_shots or hparams.shots
        train = tables["train"]
        train.check_ways(self.train_ways, "train_ways" if hparams.get("train_ways") else "ways")
        train.check_shots(self.train_shots, self.queries, "train_shots" if hparams.train_shots else "shots")
        for split in ("val", "test"):
            tables[split].check_shots(self.shots, self.queries)
        self.train_stream = TaskStream(
            partial(train.sample, shots=self.train_shots, queries=self.queries, ways=self.train_ways),
            batch_size=hparams.meta_batch_size,
            seed=derive_seed(hparams.seed, "train"),
            epoch_length=hparams.epoch_length,
        )

    def setup(self, stage: str) -> None:
        """Keep the image tables on the device the model trains on, so tasks are sampled there."""
        super().setup(stage)
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        for tasks in self.tasks.values():
            tasks.to(device)

    def eval_sampler(self, split: str, shots: int | None) -> BatchSampler:
        shots = shots or self.shots
        self.tasks[split].check_shots(shots, self.queries)
        return partial(self.tasks[split].sample, shots=shots, queries=self.queries)

    def describe(self) -> dict:
        """What the results depend on: the tasks' shape and the classes of each split."""
        described = {"ways": self.ways, "train_ways": self.train_ways}
        return described | {f"{split}_classes": self.tasks[split].num_classes for split in SPLITS}
