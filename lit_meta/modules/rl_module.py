"""What lit-meta's RL LightningModules share: a seed that defaults to the run's global one, binding to
the task family of an :class:`~lit_meta.datamodules.RLTaskDataModule`, and the checks the CLI runs
before anything starts."""

import pytorch_lightning as pl
import torch

from lit_meta.modules.checkpointing import MetaLearningModule, require_single_cpu_process


def default_seed(seed: int | None) -> int:
    """``seed``, or (``None``) one derived from the global seed ``seed_everything`` set."""
    return torch.initial_seed() % 2**31 if seed is None else seed


class RLModule(MetaLearningModule):
    """Base of the RL modules. Subclasses implement :meth:`bind_data` and say in ``CPU_REASON`` why they
    run on the CPU; by default they train in one process (override :meth:`check_trainer` otherwise)."""

    CPU_REASON = "trains on the CPU"

    def bind_data(self, datamodule: pl.LightningDataModule) -> None:
        """Build what depends on the task family (networks for its spaces) and remember the family."""
        raise NotImplementedError

    def check_data(self, datamodule: pl.LightningDataModule) -> None:
        self.bind_data(datamodule)

    def check_trainer(self, trainer: pl.Trainer) -> None:
        """Refuse other accelerators than the CPU and several processes."""
        require_single_cpu_process(self, trainer, self.CPU_REASON)

    def setup(self, stage: str) -> None:
        self.check_trainer(self.trainer)
        self.bind_data(self.trainer.datamodule)


__all__ = ["RLModule", "default_seed"]
