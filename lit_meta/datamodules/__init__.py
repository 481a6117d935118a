"""Task distributions as Lightning DataModules."""

from lit_meta.datamodules.sine import SineDataModule, SineTasks
from lit_meta.datamodules.streams import TaskStream, fixed_task_batches, stream_seed

__all__ = ["SineDataModule", "SineTasks", "TaskStream", "fixed_task_batches", "stream_seed"]
