"""Task distributions as Lightning DataModules."""

from lit_meta.datamodules.base import TaskDataModule
from lit_meta.datamodules.class_tables import ClassTableDataModule
from lit_meta.datamodules.classification import ClassificationTasks
from lit_meta.datamodules.image_datasets import (
    CIFARFSDataModule,
    FC100DataModule,
    ImageFolderDataModule,
    MiniImageNetDataModule,
)
from lit_meta.datamodules.images import ImageFormat
from lit_meta.datamodules.omniglot import OmniglotDataModule
from lit_meta.datamodules.rl_tasks import MetaBatch, MetaBatchStream, RLTaskDataModule
from lit_meta.datamodules.sine import SineDataModule, SineTasks
from lit_meta.datamodules.streams import TaskStream, fixed_task_batches

__all__ = [
    "CIFARFSDataModule",
    "ClassTableDataModule",
    "ClassificationTasks",
    "FC100DataModule",
    "ImageFolderDataModule",
    "ImageFormat",
    "MetaBatch",
    "MetaBatchStream",
    "MiniImageNetDataModule",
    "OmniglotDataModule",
    "RLTaskDataModule",
    "SineDataModule",
    "SineTasks",
    "TaskDataModule",
    "TaskStream",
    "fixed_task_batches",
]
