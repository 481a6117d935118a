"""The base class of lit-meta's LightningModules, and what it adds to every checkpoint so that a resumed
run continues exactly.

Lightning saves weights, optimizer, schedulers, loop progress and the state of a stateful training
stream, but not the global random number generators: the base class saves them
(:mod:`lit_meta.seeding`) and stamps the checkpoint with the module that wrote it, so a checkpoint of
another model is refused by name (:func:`lit_meta.checkpoints.check_compatible`).
"""

import pytorch_lightning as pl
import torch
from pytorch_lightning.accelerators import CPUAccelerator
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from lit_meta.checkpoints import CHECKPOINT_FORMAT, CHECKPOINT_KEY, check_compatible
from lit_meta.errors import ConfigError, require
from lit_meta.seeding import capture_rng_states, restore_rng_states


def check_optimizer(
    optimizer_factory: OptimizerCallable, lr_scheduler_factory: LRSchedulerCallable | None
) -> None:
    """Build the meta-optimizer and its schedule once on a probe parameter, so that a bad value fails in
    one sentence before any run starts."""
    probe = [nn.Parameter(torch.zeros(1))]
    try:
        optimizer = optimizer_factory(probe)
        if lr_scheduler_factory is not None:
            lr_scheduler_factory(optimizer)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"the meta-optimizer or its schedule is misconfigured: {error}") from None
    for group in optimizer.param_groups:
        require(group.get("lr", 1.0) > 0, f"the meta learning rate must be positive, got {group.get('lr')}")


def scheduled_optimizer(
    parameters, optimizer_factory: OptimizerCallable, lr_scheduler_factory: LRSchedulerCallable | None
) -> dict:
    """``configure_optimizers``' answer: the meta-optimizer over ``parameters`` and, if one is configured,
    its learning-rate schedule, stepped by the module once per meta-iteration (``interval: step``)."""
    optimizer = optimizer_factory(parameters)
    if lr_scheduler_factory is None:
        return {"optimizer": optimizer}
    scheduler = lr_scheduler_factory(optimizer)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class MetaLearningModule(pl.LightningModule):
    """Base of lit-meta's LightningModules: RNG states and an identity stamp in every checkpoint.

    Subclasses list in ``ARCHITECTURE_HPARAMS`` the hyperparameters that fix the shapes of their
    state; resuming from a checkpoint that differs in any of them is refused with one sentence.
    """

    ARCHITECTURE_HPARAMS: tuple[str, ...] = ()
    TRAINED_HPARAMS: tuple[str, ...] = ()
    """Hyperparameters that do not shape the weights but that the weights were trained for, so that
    ``evaluate.py --model_options`` may not change them (RL²'s trial length, its progress input's scale)."""
    evaluation_options: dict = {}  # noqa: RUF012 (replaced, never mutated)
    """Hyperparameters replaced to evaluate this module (``evaluate.py --model_options``), for its report."""

    def check_data(self, datamodule: pl.LightningDataModule) -> None:
        """Refuse, with one sentence, data this module cannot learn from, and build what depends on it
        (called by the CLI and by :func:`lit_meta.registry.rebuild`). Any data is accepted by default."""

    def check_trainer(self, trainer: pl.Trainer) -> None:
        """Refuse, with one sentence, a Trainer this module cannot run under (called by the CLI before
        anything starts). Every setting is accepted by default."""

    def restore_for_evaluation(self, checkpoint: dict) -> None:
        """Restore what ``checkpoint`` holds beyond the weights that an evaluation reports (called by
        :func:`lit_meta.registry.rebuild` after loading the weights). Nothing by default."""

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        stamp = {"module": type(self).__name__, "format": CHECKPOINT_FORMAT}
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None:
            stamp["datamodule"] = type(datamodule).__name__
        checkpoint[CHECKPOINT_KEY] = stamp
        checkpoint["rng_states"] = capture_rng_states()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_compatible(checkpoint, type(self).__name__, dict(self.hparams), self.ARCHITECTURE_HPARAMS)
        if "rng_states" in checkpoint:
            restore_rng_states(checkpoint["rng_states"])


def require_cpu(module: pl.LightningModule, trainer: pl.Trainer, cpu_reason: str) -> None:
    """Refuse, in one sentence, a Trainer on another accelerator than the CPU; ``cpu_reason`` completes
    "<Module> ..." ("trains on the CPU")."""
    if not isinstance(trainer.accelerator, CPUAccelerator):
        raise ConfigError(f"{type(module).__name__} {cpu_reason}; set trainer.accelerator cpu")


def require_single_cpu_process(module: pl.LightningModule, trainer: pl.Trainer, cpu_reason: str) -> None:
    """Refuse, in one sentence, a Trainer on another accelerator or with several processes, for a module
    that runs on the CPU in one process (see :func:`require_cpu` for ``cpu_reason``)."""
    require_cpu(module, trainer, cpu_reason)
    if trainer.world_size != 1:
        raise ConfigError(
            f"{type(module).__name__} trains in a single process (data-parallel training is for the "
            "few-shot and MAML-RL modules); set trainer.devices 1 and trainer.num_nodes 1"
        )
