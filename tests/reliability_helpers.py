"""Faults for the reliability tests: a callback that poisons a run with NaN, and a training entry point
whose checkpoint writes fail (a kill -9, a full disk, a read-only directory) at a chosen save."""

import errno
import os
import signal
import sys

import pytorch_lightning as pl
import torch


class PoisonAt(pl.Callback):
    """Puts a NaN into the run at step ``step``: into the first weight (``weight``) or into a logged
    training metric (``metric``), as a diverging update or loss would."""

    def __init__(self, step: int, target: str = "weight") -> None:
        self.step = step
        self.target = target

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step != self.step:
            return
        if self.target == "metric":
            pl_module.log("train/poisoned_loss", float("nan"), on_step=True, on_epoch=False)
        else:
            with torch.no_grad():
                next(pl_module.parameters()).view(-1)[0] = float("nan")


def failing_atomic_write(fault: str, at_save: int):
    """lit-meta's ``atomic_write`` for checkpoints, except that save number ``at_save`` (1-based) of
    ``last.ckpt`` fails in the middle of writing its bytes: ``kill`` (SIGKILL, as kill -9), ``enospc`` (a
    full disk) or ``eacces`` (a read-only directory)."""
    from lit_meta.files import atomic_write as real_atomic_write

    saves = {"count": 0}

    def atomic_write(path, write):
        saves["count"] += path.name == "last.ckpt"
        if path.name != "last.ckpt" or saves["count"] != at_save:
            return real_atomic_write(path, write)

        def half_then_fail(file):
            file.write(b"PK\x03\x04" + b"\0" * 4096)  # the start of an archive, then the fault
            file.flush()
            if fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            code = {"enospc": errno.ENOSPC, "eacces": errno.EACCES}[fault]
            raise OSError(code, os.strerror(code), str(path))

        return real_atomic_write(path, half_then_fail)

    return atomic_write


if __name__ == "__main__":  # python tests/reliability_helpers.py <fault> <at_save> <train.py arguments>
    sys.path.insert(0, os.getcwd())
    import lit_meta.checkpoint_io
    from lit_meta.cli import main

    lit_meta.checkpoint_io.atomic_write = failing_atomic_write(sys.argv[1], int(sys.argv[2]))

    sys.exit(main(sys.argv[3:]))
