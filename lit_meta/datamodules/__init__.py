"""Task distributions as Lightning DataModules."""

from lit_meta.datamodules.base import TaskDataModule
from lit_meta.datamodules.classification import ClassificationTasks
from lit_meta.datamodules.omniglot import OmniglotDataModule
from lit_meta.datamodules.rl_tasks import MetaBatch, MetaBatchStream, RLTaskDataModule
from lit_meta.datamodules.sine import SineDataModule, SineTasks
from lit_meta.datamodules.streams import TaskStream, fixed_task_batches

__all__ = [
    "ClassificationTasks",
    "MetaBatch",
    "MetaBatchStream",
    "OmniglotDataModule",
    "RLTaskDataModule",
    "SineDataModule",
    "SineTasks",
    "TaskDataModule",
    "TaskStream",
    "fixed_task_batches",
]
