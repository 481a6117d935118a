"""A callback for the data-parallel tests: each process saves the tasks it trains on."""

import os
import signal
from pathlib import Path

import pytorch_lightning as pl
import torch


class RecordTasks(pl.Callback):
    """Saves ``info`` of every training batch as ``<folder>/rank<r>-step<s>.pt``."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {key: value.cpu() for key, value in batch.info.items()}
        torch.save(record, self.folder / f"rank{trainer.global_rank}-step{trainer.global_step}.pt")


class SendSignal(pl.Callback):
    """Sends ``SIGUSR1`` (what SLURM's ``--signal=SIGUSR1@90`` does) to the process of rank ``rank``
    during step ``step``."""

    def __init__(self, step: int, rank: int = 0) -> None:
        self.step = step
        self.rank = rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step and trainer.global_rank == self.rank:
            os.kill(os.getpid(), signal.SIGUSR1)
