"""Task distributions as Lightning DataModules."""

from lit_meta.datamodules.base import TaskDataModule
from lit_meta.datamodules.classification import ClassificationTasks
from lit_meta.datamodules.omniglot import OmniglotDataModule
from lit_meta.datamodules.sine import SineDataModule, SineTasks
from lit_meta.datamodules.streams import TaskStream, fixed_task_batches, stream_seed

__all__ = [
    "ClassificationTasks",
    "OmniglotDataModule",
    "SineDataModule",
    "SineTasks",
    "TaskDataModule",
    "TaskStream",
    "fixed_task_batches",
    "stream_seed",
]
