"""Lightning callbacks with lit-meta's conventions for runs."""

import math
import os
import signal
import threading
import time
from pathlib import Path

import pytorch_lightning as pl
from lightning_fabric.plugins.environments import SLURMEnvironment
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.trainer.states import TrainerFn

from lit_meta.errors import RunStopped, require
from lit_meta.finite import all_finite, first_non_finite

_STORED_PATHS = ("best_model_path", "kth_best_model_path", "last_model_path")


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint with one file per name: ``last.ckpt`` is always the newest checkpoint
    and ``best.ckpt`` the best, never a ``last-v1.ckpt`` beside them.

    * ``last.ckpt`` is also written when training stops: Lightning writes it with every monitored save
      (each validation) but skips the end of training once any ``last.ckpt`` exists, so a run that
      stops between validations would resume from the earlier one.
    * A run directory that was moved (or named by another path) keeps its best score and file names on
      resume from its own checkpoint: the paths stored in the checkpoint are carried over to the new
      directory, where Lightning would drop them and then version the files it finds there
      (``last-v1.ckpt``). A run started from another run's checkpoint starts its own record, as in
      Lightning.
    """

    def __init__(self, *args, enable_version_counter: bool = False, **kwargs) -> None:
        require(
            not enable_version_counter,
            "checkpoint.enable_version_counter must stay false: a run keeps one last.ckpt and one best.ckpt",
        )
        super().__init__(*args, enable_version_counter=False, **kwargs)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        super().on_load_checkpoint(trainer, pl_module, checkpoint)
        self._resumed_from = trainer.ckpt_path  # called just before load_state_dict

    def load_state_dict(self, state_dict: dict) -> None:
        stored = state_dict.get("dirpath")
        resumed_from = getattr(self, "_resumed_from", None)
        # this run's checkpoints/ holds last.ckpt and best.ckpt; its run directory, SLURM's hpc_ckpt_<n>
        own_checkpoint = (
            resumed_from is not None
            and self.dirpath is not None
            and Path(resumed_from).resolve().parent
            in (Path(self.dirpath).resolve(), Path(self.dirpath).resolve().parent)
        )
        if stored is not None and own_checkpoint and stored != self.dirpath:
            state_dict = _moved(state_dict, stored, self.dirpath)
        super().load_state_dict(state_dict)


def _moved(state_dict: dict, old: str, new: str) -> dict:
    """``state_dict`` of a ModelCheckpoint with the paths of files in ``old`` re-rooted in ``new``."""

    def move(path):
        if not isinstance(path, str) or not path:
            return path
        relative = os.path.relpath(os.path.abspath(path), os.path.abspath(old))
        return path if relative.startswith(os.pardir) else os.path.join(new, relative)

    moved = {**state_dict, "dirpath": new}
    for key in _STORED_PATHS:
        if key in moved:
            moved[key] = move(moved[key])
    if isinstance(moved.get("best_k_models"), dict):
        moved["best_k_models"] = {move(path): score for path, score in moved["best_k_models"].items()}
    return moved


class StopOnNonFinite(pl.Callback):
    """Stops training at the first NaN or infinity in the weights, a gradient or a training metric (a
    loss), with one sentence naming the step, the quantity and the learning rates, before any
    checkpoint of the broken weights is written (lit-meta's checkpoint plugin refuses them as well).

    The fast check looks at the weights the optimizers update: a non-finite gradient or loss makes them
    non-finite in the same step. It is one reduction per device and one host synchronisation, run
    after every step unless that would cost more than :data:`BUDGET` of a step's time (steps of a
    millisecond or two): then after every few steps, at most :data:`MAX_INTERVAL`, and always before a
    checkpoint is saved. When it fails, on every logging step and before every save, the full check
    names the culprit, in order: a ``train/...`` metric, a gradient (still in ``.grad``), a weight, a
    buffer. Its cost is in docs/benchmarks.md.
    """

    BUDGET = 0.01
    """The largest share of a training step's time the fast check may take."""
    MAX_INTERVAL = 10

    def __init__(self) -> None:
        self.interval = 1
        self.checked_step = 0
        self._step_started = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx):
        self._step_started = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx
    ) -> None:
        step_seconds = time.perf_counter() - self._step_started
        step = trainer.global_step
        if step % trainer.log_every_n_steps == 0:
            self._check(trainer, pl_module, full=True)
        elif step - self.checked_step >= self.interval:
            started = time.perf_counter()
            self._check(trainer, pl_module, full=False)
            check_seconds = time.perf_counter() - started
            needed = math.ceil(check_seconds / (self.BUDGET * max(step_seconds, 1e-9)))
            self.interval = min(self.MAX_INTERVAL, max(1, needed))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.checked_step = trainer.global_step  # a resumed run starts from a checked checkpoint

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint) -> None:
        if trainer.state.fn == TrainerFn.FITTING and self.checked_step != trainer.global_step:
            self._check(trainer, pl_module, full=True)

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule, full: bool) -> None:
        unchecked_since = self.checked_step
        self.checked_step = trainer.global_step
        if not full and all_finite(_optimized_parameters(trainer)):
            return
        parameters = list(pl_module.named_parameters())
        metrics = [
            (f"the training metric {name}", value)
            for name, value in trainer.callback_metrics.items()
            if name.startswith("train/")
        ]
        broken = first_non_finite(
            [
                *metrics,
                *[(f"the gradient of {name}", parameter.grad) for name, parameter in parameters],
                *[(f"the weight {name}", parameter) for name, parameter in parameters],
                *[(f"the buffer {name}", buffer) for name, buffer in pl_module.named_buffers()],
            ]
        )
        if broken is not None:
            step = trainer.global_step
            when = f"step {step}"
            if step - unchecked_since > 1:
                when += f" (the weights were last found finite after step {unchecked_since})"
            self._stop(trainer, pl_module, when, broken)

    @staticmethod
    def _stop(trainer: pl.Trainer, pl_module: pl.LightningModule, when: str, quantity: str) -> None:
        rates = [
            f"{name}={value}"
            for name, value in pl_module.hparams.items()
            if ("lr" in name.split("_") or "learning_rate" in name or "step_size" in name)
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ]
        rates += [f"meta-optimizer lr={o.param_groups[0]['lr']}" for o in trainer.optimizers[:1]]
        hint = (
            f"the learning rates may be too large ({', '.join(rates)})"
            if rates
            else "lower the learning rates"
        )
        last = getattr(trainer.checkpoint_callback, "last_model_path", "")
        kept = (
            f"the last checkpoint, {last}, is kept"
            if last and Path(last).is_file()
            else "no checkpoint had been written"
        )
        raise RunStopped(
            f"training stopped at {when}: {quantity} is not finite (NaN or infinity); {hint}; {kept}"
        )


def _optimized_parameters(trainer: pl.Trainer) -> list:
    """Every parameter an optimizer of the run updates."""
    return [parameter for optimizer in trainer.optimizers for group in optimizer.param_groups
            for parameter in group["params"]]  # fmt: skip


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar, redrawn every ``refresh_rate`` steps and without the logger version.

    Meta-iterations on small tasks take about a millisecond; redrawing the bar after each one would cost
    a third of that.
    """

    def __init__(self, refresh_rate: int = 20) -> None:
        super().__init__(refresh_rate=refresh_rate)

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class RequeueAtStepBoundary(pl.Callback):
    """Lightning's SLURM auto-requeue (``#SBATCH --signal=SIGUSR1@90``), taken at a step boundary.

    Lightning's handler writes ``hpc_ckpt_<n>.ckpt`` and requeues the job from inside the signal handler,
    that is in the middle of whatever the process was doing, and each process at its own moment: the
    checkpoint may hold half a meta-step, and under DDP processes caught inside different collective
    operations can hang. This callback only notes the signal; after the current meta-step all processes
    agree (one boolean all-reduce) and run Lightning's handler together, then training stops. The
    requeued job's ``train.py fit`` resumes from that checkpoint (see :class:`lit_meta.cli.LitMetaCLI`).
    Inactive outside SLURM or with ``auto_requeue`` off.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self.lightning_handler = None
        self.requested = False

    def _install(self, trainer: pl.Trainer) -> None:
        """Take over the requeue signal from Lightning's handler (registered before the sanity check)."""
        environment = trainer._accelerator_connector.cluster_environment  # what Lightning's handler reads
        requeues = isinstance(environment, SLURMEnvironment) and environment.auto_requeue
        if self.signal is not None or not requeues:
            return
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only; Lightning registered nothing either
        requeue_signal = environment.requeue_signal or signal.SIGUSR1
        handler = signal.getsignal(requeue_signal)
        if callable(handler):
            self.signal, self.lightning_handler = requeue_signal, handler
            signal.signal(requeue_signal, self._note)

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install(trainer)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install(trainer)

    def _note(self, signum: int, frame) -> None:
        self.requested = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.signal is None:
            return
        if trainer.strategy.reduce_boolean_decision(self.requested, all=False):
            self.requested = False
            if 0 <= trainer.max_steps <= trainer.global_step:
                return  # the run ends with this step anyway: nothing to requeue
            self.lightning_handler(self.signal, None)  # writes hpc_ckpt_<n>.ckpt, requeues (rank 0)
            trainer.should_stop = True
            # Lightning validates when asked to stop; the job has seconds left, so skip that validation
            trainer.fit_loop.epoch_loop._skip_next_val = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.signal is not None:
            signal.signal(self.signal, self.lightning_handler)
            self.signal = None
