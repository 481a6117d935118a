"""Lightning callbacks with lit-meta's conventions for runs."""

import pytorch_lightning as pl
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
