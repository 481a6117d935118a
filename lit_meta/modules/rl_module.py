"""What lit-meta's RL LightningModules share, written once: binding to the task family of an
:class:`~lit_meta.datamodules.RLTaskDataModule` (anything else is refused in one sentence), saving the
constructor's arguments as hyperparameters, the checks the CLI runs before anything starts, and the
evaluation every meta-RL module offers, :meth:`RLModule.adaptation_curves`: the return on held-out tasks
before and after each of K adaptation steps, one curve per method, each task with its own seed."""

import inspect
from collections.abc import Sequence
from contextlib import contextmanager
from functools import partial

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from tqdm import tqdm

from lit_meta.datamodules import RLTaskDataModule
from lit_meta.errors import ConfigError, require_positive
from lit_meta.modules.base import MetaLearningModule, require_single_cpu_process
from lit_meta.seeding import derive_seed, seeded_torch


class RLModule(MetaLearningModule):
    """Base of the RL modules. A subclass calls :meth:`save_rl_hyperparameters` in ``__init__``, builds
    what depends on the task family in :meth:`bind_data`, names its curves in :meth:`curve_names` and
    measures one held-out task in :meth:`adapt_task` (or all of them at once in :meth:`compute_curves`).
    It says in ``CPU_REASON`` why it runs on the CPU; by default it trains in one process (override
    :meth:`check_trainer` otherwise)."""

    CPU_REASON = "trains on the CPU"
    FORK_RNG = True
    """Whether each held-out task is adapted under a forked torch generator seeded with its seed (a module
    whose learners seed the global generators themselves, as SB3's do, leaves them as those left them)."""

    task_data: RLTaskDataModule | None = None
    success_curves: dict[str, Tensor] = {}  # noqa: RUF012 - replaced, never mutated, by each evaluation
    """``{name: [tasks, measurements]}``: the success rates behind the curves the last
    :meth:`adaptation_curves` returned, for the curves of a family that reports success (Meta-World)."""
    _success_record: list[float] | None = None
    environment_steps: int = 0
    """Environment steps taken in meta-training so far (every process's), kept in checkpoints: the x axis
    of sample-efficiency curves."""

    def save_rl_hyperparameters(self) -> None:
        """Save the calling ``__init__``'s arguments, as they are at the call, as hyperparameters (not the
        optimizer and its schedule, objects), and let the module step its optimizers itself. Not logged:
        Lightning refuses to log a module and a datamodule that both have a different ``seed`` (the run's
        config, saved in the run directory, holds every value anyway)."""
        caller = inspect.currentframe().f_back
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"], logger=False, frame=caller)
        self.automatic_optimization = False

    # -------------------------------------------------------------------------------- wiring to data
    def bind_data(self, datamodule: RLTaskDataModule) -> None:
        """Build what depends on the task family (networks for its spaces) and remember the family."""
        raise NotImplementedError

    def check_data(self, datamodule: pl.LightningDataModule) -> None:
        """Refuse, in one sentence, a datamodule that is not an RLTaskDataModule; then bind to it."""
        if not isinstance(datamodule, RLTaskDataModule):
            raise ConfigError(
                f"{type(self).__name__} needs an RLTaskDataModule, got {type(datamodule).__name__}"
            )
        self.bind_data(datamodule)

    def check_trainer(self, trainer: pl.Trainer) -> None:
        """Refuse other accelerators than the CPU and several processes."""
        require_single_cpu_process(self, trainer, self.CPU_REASON)

    def count_environment_steps(self, steps: int) -> None:
        """Add the environment steps this process took in a training step (summed over processes) to
        :attr:`environment_steps` and log the total as ``train/environment_steps``."""
        total = self.trainer.strategy.reduce(torch.tensor(float(steps)), reduce_op="sum")
        self.environment_steps += int(total)
        self.log("train/environment_steps", float(self.environment_steps), on_step=True, on_epoch=False)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["environment_steps"] = self.environment_steps

    def restore_for_evaluation(self, checkpoint: dict) -> None:
        """The count of environment steps, which the evaluation report states (0 for a checkpoint written
        before the count)."""
        self.environment_steps = checkpoint.get("environment_steps", 0)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Besides the checks of every module, refuse networks made for other spaces (another number of
        arms, another task family) with one sentence. (Checkpoints written before the count of
        environment steps resume counting from 0.)"""
        super().on_load_checkpoint(checkpoint)
        self.restore_for_evaluation(checkpoint)
        for key, value in self.state_dict().items():
            saved = checkpoint["state_dict"].get(key)
            if saved is not None and saved.shape != value.shape:
                raise ConfigError(
                    f"the checkpoint's {key} has shape {tuple(saved.shape)}, but this run's task family "
                    f"needs {tuple(value.shape)}: it was trained on other observation or action spaces"
                )

    def setup(self, stage: str) -> None:
        self.check_trainer(self.trainer)
        self.check_data(self.trainer.datamodule)

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        return batch  # environments and task parameters: nothing to move

    # ---------------------------------------------------------------------------------- evaluation
    @property
    def learner_name(self) -> str:
        """The name of the trained method, in reports and plots."""
        raise NotImplementedError

    def curve_names(self) -> tuple[str, ...]:
        """Every curve :meth:`adaptation_curves` can draw, the trained method's first."""
        return (self.learner_name,)

    def adaptation_curves(
        self,
        tasks: Sequence,
        steps: int,
        episodes: int | None,
        split: str,
        initialisations: Sequence[str] | None = None,
        first_index: int = 0,
        progress: bool = False,
    ) -> dict[str, Tensor]:
        """``{name: [tasks, steps + 1]}`` (RL²: ``[tasks, steps]``): the return on each held-out task of
        ``tasks`` before and after each of ``steps`` adaptation steps (K, ``eval_steps``), each measurement
        the mean over ``episodes`` episodes (``None``: ``eval_episodes``; RL²: trials), for each curve
        named in ``initialisations`` (default: all of :meth:`curve_names`). Task ``first_index + i`` of
        ``split`` gets the same seed whichever the curve, however the tasks are batched and whoever asks
        (validation, test, ``evaluate.py``). Gradients are enabled whatever the caller's mode."""
        require_positive("steps", steps)
        episodes = self.hparams.eval_episodes if episodes is None else episodes
        require_positive("episodes", episodes)
        known = self.curve_names()
        names = known if initialisations is None else tuple(initialisations)
        for name in names:
            if name not in known:
                raise ConfigError(
                    f"{type(self).__name__} has no curve '{name}'; choose from {', '.join(known)}"
                )
        self.success_curves = {}
        with torch.inference_mode(False):
            return self.compute_curves(list(tasks), names, steps, episodes, split, first_index, progress)

    def compute_curves(
        self, tasks: list, names: tuple[str, ...], steps: int, episodes: int, split: str, first_index: int,
        progress: bool,
    ) -> dict[str, Tensor]:  # fmt: skip
        """The curves of :meth:`adaptation_curves` (arguments checked), one held-out task after another."""
        curves = {name: [] for name in names}
        successes = {name: [] for name in names}
        with torch.enable_grad():
            for index, task in enumerate(progress_bar(tasks, progress), start=first_index):
                seed = self.evaluation_seed(split, index)
                for name in names:
                    self._success_record = []
                    with self._seeded(seed):
                        curves[name].append(self.adapt_task(name, task, seed, steps, episodes))
                    successes[name].append(self._success_record)
        self._success_record = None
        self.success_curves = {
            name: torch.tensor(rows, dtype=torch.float64)
            for name, rows in successes.items()
            if all(len(row) == len(curves[name][0]) for row in rows)
        }
        return {name: torch.tensor(np.array(rows), dtype=torch.float64) for name, rows in curves.items()}

    def record_success(self, successes: Tensor | None) -> None:
        """Called by :meth:`adapt_task` once per measurement, in the order of its returns: the success
        rate of the episodes behind it (``successes`` ``[E]``, ``None`` for a family without a success
        flag). The rates of a curve whose every measurement has one land in :attr:`success_curves`."""
        if successes is not None and self._success_record is not None:
            self._success_record.append(successes.float().mean().item())

    def evaluation_seed(self, split: str, index: int) -> int:
        """The seed of held-out task ``index`` of ``split``, derived from the data seed: every checkpoint
        of a task family meets the same episodes on it."""
        return derive_seed(self.task_data.hparams.seed, f"evaluation-{split}-{index}")

    @contextmanager
    def _seeded(self, seed: int):
        if not self.FORK_RNG:
            yield
            return
        with seeded_torch(seed):
            yield

    def adapt_task(self, name: str, task: dict, seed: int, steps: int, episodes: int) -> list[float]:
        """Curve ``name`` on one held-out ``task``: the mean return of ``episodes`` episodes before and
        after each of ``steps`` adaptation steps (``steps + 1`` numbers), everything seeded by ``seed``."""
        raise NotImplementedError

    def validation_step(self, batch, batch_idx: int) -> None:
        self.evaluate_batch("val", batch, batch_idx)

    def test_step(self, batch, batch_idx: int) -> None:
        self.evaluate_batch("test", batch, batch_idx)

    def evaluate_batch(self, split: str, batch, batch_idx: int) -> None:
        """Log the return of the trained method on held-out task ``batch_idx`` of ``split`` after
        ``eval_steps`` adaptation steps (``<split>/return``) and before any (``<split>/return_before``)."""
        name = self.curve_names()[0]
        returns = self.adaptation_curves(
            batch, self.hparams.eval_steps, self.hparams.eval_episodes, split, (name,), first_index=batch_idx
        )[name].float()
        log = partial(self.log, batch_size=len(batch), sync_dist=True)
        log(f"{split}/return", returns[:, -1].mean(), prog_bar=True)
        log(f"{split}/return_before", returns[:, 0].mean())
        if name in self.success_curves:
            log(f"{split}/success_rate", self.success_curves[name][:, -1].mean().float())
            log(f"{split}/success_rate_before", self.success_curves[name][:, 0].mean().float())


def progress_bar(items: Sequence, shown: bool, desc: str = "adapting", unit: str = "task"):
    """``items``, with a progress bar on stderr if ``shown``."""
    return tqdm(items, desc=desc, unit=unit, disable=not shown)


__all__ = ["RLModule", "progress_bar"]
