"""Lightning callbacks with lit-meta's conventions for runs."""

import signal
import threading

import pytorch_lightning as pl
from lightning_fabric.plugins.environments import SLURMEnvironment
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, plus ``last.ckpt`` always written when training stops.

    Lightning writes ``last.ckpt`` with every monitored save (each validation) but skips the end of
    training once any ``last.ckpt`` exists, so a run that stops between validations would resume from
    the earlier one. This writes it at the final step too, so ``--ckpt_path last`` continues exactly
    where the run stopped.
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


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
