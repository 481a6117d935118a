"""What every lit-meta LightningModule adds to a checkpoint so that a resumed run continues exactly.

Lightning saves weights, optimizer, schedulers, loop progress and the state of a stateful training
stream, but not the global random number generators. This saves them, in a form that loads with
``torch.load(weights_only=True)`` (tensors, numbers, strings and containers only), and stamps the
checkpoint with the module that wrote it so a checkpoint of another model is refused by name.
"""

import random

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.accelerators import CPUAccelerator

from lit_meta.errors import ConfigError

CHECKPOINT_KEY = "lit_meta"
"""Top-level checkpoint key: ``{"module": <class name>, "datamodule": <class name>, "format": <int>}``."""
CHECKPOINT_FORMAT = 1


def capture_rng_states() -> dict:
    """The states of Python's, NumPy's, torch's and (if initialised) CUDA's global generators."""
    numpy_state = np.random.get_state(legacy=False)
    states = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    """Inverse of :func:`capture_rng_states`."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = states["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():  # as many devices as both runs have
        for device, state in zip(range(torch.cuda.device_count()), states["cuda"], strict=False):
            torch.cuda.set_rng_state(state, device)


class MetaLearningModule(pl.LightningModule):
    """Base of lit-meta's LightningModules: RNG states and an identity stamp in every checkpoint.

    Subclasses list in ``ARCHITECTURE_HPARAMS`` the hyperparameters that fix the shapes of their
    state; resuming from a checkpoint that differs in any of them is refused with one sentence.
    """

    ARCHITECTURE_HPARAMS: tuple[str, ...] = ()

    def check_trainer(self, trainer: pl.Trainer) -> None:
        """Refuse, with one sentence, a Trainer this module cannot run under (called by the CLI before
        anything starts). Every setting is accepted by default."""

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


def check_compatible(
    checkpoint: dict, module_name: str, hparams: dict, architecture_hparams: tuple[str, ...], source: str = ""
) -> None:
    """Raise :class:`ConfigError` unless ``checkpoint`` was written by ``module_name`` with the same
    values of ``architecture_hparams`` as ``hparams``."""
    source = source or "the checkpoint"
    stamp = checkpoint_stamp(checkpoint, source)
    if stamp["module"] != module_name:
        raise ConfigError(
            f"{source} holds a {stamp['module']}, but this run is configured for a {module_name}"
        )
    saved = checkpoint.get("hyper_parameters", {})
    for name in architecture_hparams:
        if _normalise(saved.get(name)) != _normalise(hparams.get(name)):
            raise ConfigError(
                f"{source} was trained with {name}={saved.get(name)!r}, "
                f"but this run is configured with {name}={hparams.get(name)!r}"
            )


def checkpoint_stamp(checkpoint: dict, source: str) -> dict:
    """The identity stamp of a lit-meta checkpoint; :class:`ConfigError` if there is none."""
    stamp = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(stamp, dict) or not isinstance(stamp.get("module"), str):
        raise ConfigError(f"{source} was not written by lit-meta (it has no '{CHECKPOINT_KEY}' entry)")
    return stamp


def _normalise(value: object) -> object:
    return list(value) if isinstance(value, tuple | list) else value
