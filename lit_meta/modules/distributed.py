"""Data-parallel meta-training: each process adapts its share of the meta-batch, and the processes'
meta-gradients are averaged through the Lightning strategy before the optimizer steps.

DDP's own gradient synchronisation hooks into autograd; it does not fit learn2learn's ``clone``/``adapt``
(learn2learn issue #170), Reptile's inner copies, or several backward passes per step, and with
``autograd.grad`` it has produced wrong gradients before (pytorch issue #47562). lit-meta's modules
optimize manually and never call ``manual_backward``, so Lightning never arms DDP's reducer: DDP only
broadcasts the initial weights. The meta-gradient each process leaves in ``.grad`` is then averaged
here with one all-reduce, which is correct whatever computed it. With equal shares (see
:func:`~lit_meta.datamodules.streams.rank_share`) the average is the meta-gradient of the whole batch,
so every process takes the same optimizer step as one process given all the tasks would.
"""

from collections.abc import Iterable

import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies import DDPStrategy, SingleDeviceStrategy
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from lit_meta.errors import ConfigError

DATA_PARALLEL_STRATEGIES = (SingleDeviceStrategy, DDPStrategy)
"""One process, or Lightning's DDP with any launcher (``ddp``, torchrun, SLURM; ``ddp_spawn``); not the
strategies that subclass DDP (DeepSpeed, XLA)."""


def require_data_parallel_strategy(module: pl.LightningModule, trainer: pl.Trainer) -> None:
    """Refuse, in one sentence, a strategy other than one process or DDP (FSDP, DeepSpeed, ...)."""
    if type(trainer.strategy) not in DATA_PARALLEL_STRATEGIES:  # DeepSpeed and XLA subclass DDP
        raise ConfigError(
            f"{type(module).__name__} trains in one process or with trainer.strategy ddp, "
            f"not with {type(trainer.strategy).__name__}"
        )


def average_gradients_across_processes_(parameters: Iterable[nn.Parameter], trainer: pl.Trainer) -> None:
    """Replace each parameter's ``.grad`` by its mean over all processes (one all-reduce of the
    gradients flattened together; a missing gradient counts as zeros). Nothing to do in one process."""
    if trainer.world_size == 1:
        return
    parameters = [p for p in parameters if p.requires_grad]
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
    gradients = [parameter.grad for parameter in parameters]
    averaged = trainer.strategy.reduce(_flatten_dense_tensors(gradients), reduce_op="mean")
    for gradient, value in zip(gradients, _unflatten_dense_tensors(averaged, gradients), strict=True):
        gradient.copy_(value)


__all__ = [
    "DATA_PARALLEL_STRATEGIES",
    "average_gradients_across_processes_",
    "require_data_parallel_strategy",
]
