"""The training command line: ``python train.py {fit,validate,test} --config configs/<experiment>.yaml``.

A LightningCLI with lit-meta's conventions:

* every run lives in one directory, ``--run_dir`` (default ``runs/<config file name>``): checkpoints in
  ``checkpoints/`` (``last.ckpt`` and ``best.ckpt``), TensorBoard events in ``tensorboard/``, CSV metrics
  in ``csv/version_N/``, and the config of each invocation;
* ``--ckpt_path last`` (or ``best``) resumes from that directory; a fresh ``fit`` refuses a directory
  that already holds checkpoints, so nothing is overwritten, except that a requeued SLURM job resumes
  from the newest ``hpc_ckpt_<n>.ckpt`` Lightning wrote there when it was preempted;
* checkpoints are read with ``weights_only=True``, checked for damage and non-finite weights, and
  checked against the configured model before any weights are loaded;
* a fit holds the run directory's lock (:mod:`lit_meta.run_lock`) for its whole life, writes every
  checkpoint atomically (:mod:`lit_meta.checkpoint_io`) and stops at the first NaN or infinity
  (:class:`~lit_meta.callbacks.StopOnNonFinite`) before it could be saved;
* bad input ends with one sentence on stderr and exit status 2; a run stopped by a failure (a NaN, a
  full disk) with one sentence and exit status 3 (docs/reliability.md).
"""

import os
from datetime import datetime
from pathlib import Path

import pytorch_lightning as pl
from jsonargparse import Namespace
from lightning_fabric.plugins.environments import SLURMEnvironment
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.accelerators import CPUAccelerator
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from lit_meta.callbacks import RunCheckpoint
from lit_meta.checkpoint_io import AtomicCheckpointIO
from lit_meta.checkpoints import check_compatible, load_checkpoint
from lit_meta.entry_points import run_reporting_bad_input
from lit_meta.errors import ConfigError, require
from lit_meta.files import atomic_write_text
from lit_meta.launch import is_launching_process
from lit_meta.modules import MetaLearningModule
from lit_meta.noise import silence_library_noise
from lit_meta.run_lock import RunDirectory

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_ALIASES = ("last", "best")
ALWAYS_ON_CALLBACKS = ("RequeueAtStepBoundary", "StopOnNonFinite")
"""lit-meta callbacks every run gets (``lit_meta.callbacks.<name>``), unless the config lists them."""


class RunConfigSaver(SaveConfigCallback):
    """Writes the full config of each invocation into the run directory, never over an earlier one."""

    def __init__(self, parser: LightningArgumentParser, config: Namespace, **kwargs) -> None:
        super().__init__(parser, config, save_to_log_dir=False, **kwargs)

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        run_dir = Path(self.config.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "config.yaml"
        if path.exists():
            stage = getattr(stage, "value", stage)  # Lightning passes its TrainerFn enum
            path = run_dir / f"config.{stage}-{datetime.now():%Y%m%d-%H%M%S-%f}.yaml"
        atomic_write_text(path, self.parser.dump(self.config, skip_none=False))


class LitMetaCLI(LightningCLI):
    """LightningCLI over lit-meta's modules and datamodules (any subclass, chosen by ``class_path``)."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self._loaded_checkpoint: dict | None = None
        self._run_directory: RunDirectory | None = None
        try:
            self._build(args, run)
        finally:
            if run:
                self.release_run_directory()

    def release_run_directory(self) -> None:
        """Free the run directory's lock (held from the start of a fit to its end)."""
        if self._run_directory is not None:
            self._run_directory.release()
            self._run_directory = None

    def _build(self, args: list[str] | None, run: bool) -> None:
        super().__init__(
            model_class=MetaLearningModule,
            subclass_mode_model=True,
            datamodule_class=pl.LightningDataModule,
            subclass_mode_data=True,
            save_config_callback=RunConfigSaver,
            trainer_defaults={"inference_mode": False},
            seed_everything_default=0,
            auto_configure_optimizers=False,  # modules take their optimizer as an argument
            load_from_checkpoint_support=False,  # store plain hyperparameters, never class paths to import
            # parse errors come back to main(), which prints their one-line reason without the usage dump
            parser_kwargs={"exit_on_error": False},
            args=args,
            run=run,
        )

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's subcommands without ``predict``: a meta-learner predicts after adapting to a
        task's support set, which ``adapt.py`` does (a plain ``predict_dataloader`` has no support set)."""
        return {name: skip for name, skip in LightningCLI.subcommands().items() if name != "predict"}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_dir",
            type=str | None,
            default=None,
            help="Directory of this run (checkpoints, logs, configs). Default: runs/<config file name>.",
        )
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/query_loss",
                "checkpoint.mode": "min",
                "checkpoint.filename": "best",
                "checkpoint.save_top_k": 1,
                "checkpoint.save_last": True,
            }
        )

    def _parse_ckpt_path(self) -> None:
        """Lightning's version merges a checkpoint's hyperparameters into the config; lit-meta instead
        checks them against the config (see :meth:`after_instantiate_classes`)."""

    def before_instantiate_classes(self) -> None:
        config = self._active_config()
        run_dir = Path(config.run_dir or _default_run_dir(config))
        config.run_dir = str(run_dir)
        require(not run_dir.is_file(), f"--run_dir {run_dir} is a file, not a directory")
        _check_trainer_values(config.trainer)
        self._lay_out_run(config, run_dir)
        if "ckpt_path" in config:  # fit, validate and test read checkpoints only as plain data
            config.weights_only = True
            self._find_checkpoint(config, run_dir / CHECKPOINT_DIR)

    def _lay_out_run(self, config: Namespace, run_dir: Path) -> None:
        """Checkpoints, loggers and the progress bar, all inside ``run_dir``."""
        checkpoint_dir = str(run_dir / CHECKPOINT_DIR)
        if config.checkpoint.dirpath not in (None, checkpoint_dir):
            raise ConfigError(
                "checkpoint.dirpath is fixed to <run_dir>/checkpoints; choose the run with --run_dir"
            )
        config.checkpoint.dirpath = checkpoint_dir
        config.trainer.default_root_dir = str(run_dir)
        if config.trainer.logger in (None, True):
            config.trainer.logger = [
                {
                    "class_path": "pytorch_lightning.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": str(run_dir), "name": "tensorboard", "version": ""},
                },
                {
                    "class_path": "pytorch_lightning.loggers.CSVLogger",
                    "init_args": {"save_dir": str(run_dir), "name": "csv"},
                },
            ]
        callbacks = config.trainer.callbacks or []
        for name in ALWAYS_ON_CALLBACKS:
            if not any(name in str(getattr(c, "class_path", c)) for c in callbacks):
                callbacks = [*callbacks, {"class_path": f"lit_meta.callbacks.{name}"}]
        config.trainer.callbacks = callbacks
        has_progress_bar = any("ProgressBar" in str(getattr(c, "class_path", c)) for c in callbacks)
        if config.trainer.enable_progress_bar is not False and not has_progress_bar:
            config.trainer.callbacks = [*callbacks, {"class_path": "lit_meta.callbacks.ProgressBar"}]

    def _find_checkpoint(self, config: Namespace, checkpoint_dir: Path) -> None:
        """Resolve ``last``/``best`` (and where a requeued SLURM job resumes); the checkpoint is read once
        the run directory is locked (:meth:`_claim_and_read_checkpoint`)."""
        if config.ckpt_path in CHECKPOINT_ALIASES:
            path = checkpoint_dir / f"{config.ckpt_path}.ckpt"
            if not path.is_file():
                raise ConfigError(f"there is no {path.name} to resume from in {checkpoint_dir}")
            config.ckpt_path = str(path)
        if config.ckpt_path is None and self.subcommand == "fit" and SLURMEnvironment.detect():
            config.ckpt_path = _requeue_checkpoint(run_dir=checkpoint_dir.parent)  # a requeued SLURM job

    def _claim_and_read_checkpoint(self) -> None:
        """Lock the run directory of a fit (its launching process only), refuse to start a fresh run
        over an earlier one, then read the checkpoint to resume: what is read is what no other process
        can be writing."""
        config = self._active_config()
        if self.subcommand == "fit" and is_launching_process():
            self._run_directory = RunDirectory(config.run_dir).claim(subdirectories=(CHECKPOINT_DIR,))
            checkpoint_dir = Path(config.run_dir) / CHECKPOINT_DIR
            self._find_checkpoint(config, checkpoint_dir)  # again: it may have changed before the lock
            if not config.ckpt_path and any(checkpoint_dir.glob("*.ckpt")):
                raise ConfigError(
                    f"{checkpoint_dir.parent} already holds checkpoints of an earlier run; resume it with "
                    "--ckpt_path last or start a new run with another --run_dir"
                )
        if config.get("ckpt_path"):
            self._loaded_checkpoint = load_checkpoint(config.ckpt_path)

    def instantiate_trainer(self, **kwargs) -> pl.Trainer:
        """Lightning's Trainer, writing checkpoints with :class:`AtomicCheckpointIO`; settings it rejects
        (more devices than the machine has, a strategy or accelerator this machine cannot run) become
        one sentence of bad input instead of a traceback."""
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except ConfigError:
            raise
        except (MisconfigurationException, ValueError, ImportError, RuntimeError) as error:
            reason = " ".join(str(error).split())
            raise ConfigError(f"the trainer settings cannot run here: {reason}") from None
        configured = trainer.strategy.checkpoint_io
        if type(configured) is not TorchCheckpointIO:
            raise ConfigError(
                f"trainer.plugins sets the checkpoint writer {type(configured).__name__}, but lit-meta "
                "writes checkpoints with its own (atomic and verified, docs/reliability.md); remove it"
            )
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        cores = len(os.sched_getaffinity(0))
        if isinstance(trainer.accelerator, CPUAccelerator) and trainer.num_devices > cores:
            raise ConfigError(
                f"trainer.devices asks for {trainer.num_devices} CPU processes, "
                f"but this machine has {cores} cores"
            )
        return trainer

    def after_instantiate_classes(self) -> None:
        self._claim_and_read_checkpoint()
        if self._loaded_checkpoint is not None:
            config = self._active_config()
            check_compatible(
                self._loaded_checkpoint,
                type(self.model).__name__,
                dict(self.model.hparams),
                self.model.ARCHITECTURE_HPARAMS,
                source=f"checkpoint {config.ckpt_path}",
            )
        self.model.check_data(self.datamodule)
        if self.trainer is not None:
            self.model.check_trainer(self.trainer)
            if hasattr(self.datamodule, "check_trainer"):
                self.datamodule.check_trainer(self.trainer)
        super().after_instantiate_classes()

    def _active_config(self) -> Namespace:
        """The config of the subcommand being run (the whole config when built with ``run=False``)."""
        return self.config[self.subcommand] if self.subcommand else self.config

    def after_fit(self) -> None:
        checkpoints = Path(self.config.fit.run_dir) / CHECKPOINT_DIR
        if self.trainer.is_global_zero:
            print(f"run directory: {self.config.fit.run_dir}")
            for name in ("last", "best"):
                if (checkpoints / f"{name}.ckpt").is_file():
                    print(f"{name} checkpoint: {checkpoints / f'{name}.ckpt'}")


def _requeue_checkpoint(run_dir: Path) -> str | None:
    """Where a requeued SLURM job resumes: the newest of Lightning's ``hpc_ckpt_<n>.ckpt`` (written when
    the job was preempted), unless ``checkpoints/last.ckpt`` is further along (SLURM requeued the job
    without a signal after an earlier preemption); ``None`` if the job was never preempted."""
    numbered = {path: path.stem.removeprefix("hpc_ckpt_") for path in run_dir.glob("hpc_ckpt_*.ckpt")}
    numbered = {path: int(n) for path, n in numbered.items() if n.isdigit()}
    if not numbered:
        return None
    candidates = [max(numbered, key=numbered.get), run_dir / CHECKPOINT_DIR / "last.ckpt"]
    steps = {path: load_checkpoint(path).get("global_step", -1) for path in candidates if path.is_file()}
    return str(max(steps, key=steps.get))  # the hpc checkpoint when both are at the same step


def _check_trainer_values(trainer: Namespace) -> None:
    """Refuse, in one sentence, Trainer numbers that Lightning would only trip over later."""
    interval = trainer.get("val_check_interval")
    if interval is not None and not isinstance(interval, str):
        require(interval > 0, f"trainer.val_check_interval must be positive, got {interval}")
    for name in ("log_every_n_steps", "check_val_every_n_epoch", "accumulate_grad_batches"):
        value = trainer.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            require(value > 0, f"trainer.{name} must be positive, got {value}")


def _default_run_dir(config: Namespace) -> Path:
    config_files = config.get("config") or []
    name = Path(str(config_files[-1])).stem if config_files else "default"
    return Path("runs") / name


def main(args: list[str] | None = None) -> int:
    """Run the training CLI; bad input prints one sentence and returns 2, a run stopped by a failure
    one sentence and 3."""
    silence_library_noise()
    status, _ = run_reporting_bad_input(lambda: LitMetaCLI(args=args))
    return status
