"""Reading checkpoints without executing anything stored in them, and only when they are intact.

``torch.load(weights_only=True)`` only rebuilds tensors, numbers, strings and containers; a pickle that
would construct any other object (and so could run code) is refused. Lightning's
``load_from_checkpoint`` instead imports and calls class paths stored in the file, so lit-meta never
uses it on a checkpoint it is handed: models are rebuilt from validated hyperparameters.

torch does not check the CRC-32 checksums its checkpoint archives (zip files) carry for every entry, so
damaged bytes would load as wrong weights; :func:`load_checkpoint` checks them first, and refuses weights
that are not finite.
"""

import inspect
import pickle
import zipfile
import zlib
from pathlib import Path

import pytorch_lightning as pl
import torch

from lit_meta.datamodules import OmniglotDataModule, RLTaskDataModule, SineDataModule
from lit_meta.errors import ConfigError, first_line
from lit_meta.files import reason_of
from lit_meta.finite import first_non_finite_in_state
from lit_meta.modules import FewShotModule, MAMLRLModule, MetaLearningModule, SB3ReptileModule
from lit_meta.modules.checkpointing import checkpoint_stamp
from lit_meta.modules.rl2 import RL2Module
from lit_meta.modules.varshare_sac import VarShareSACModule

MODULES: dict[str, type[MetaLearningModule]] = {
    "FewShotModule": FewShotModule,
    "MAMLRLModule": MAMLRLModule,
    "SB3ReptileModule": SB3ReptileModule,
    "RL2Module": RL2Module,
    "VarShareSACModule": VarShareSACModule,
}
"""The modules a checkpoint may name; nothing outside this registry is ever instantiated."""
DATAMODULES: dict[str, type[pl.LightningDataModule]] = {
    "SineDataModule": SineDataModule,
    "OmniglotDataModule": OmniglotDataModule,
    "RLTaskDataModule": RLTaskDataModule,
}
INJECTED_ARGUMENTS = ("optimizer", "lr_scheduler")
"""Constructor arguments that take objects (not stored): the module's defaults are used instead."""


def load_checkpoint(path: str | Path) -> dict:
    """The contents of the checkpoint at ``path``, loaded on the CPU with ``weights_only=True``.

    Raises :class:`ConfigError` naming the problem if the file is missing, not a checkpoint archive,
    damaged (an entry that fails its checksum), holds objects other than plain data, or holds weights
    that are not finite.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"checkpoint {path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    _check_archive(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" in str(error).lower():  # the pickle names a class or function to import and call
            raise ConfigError(
                f"checkpoint {path} was refused: it stores Python objects other than tensors and plain data, "
                "which could run code when loaded"
            ) from None
        raise ConfigError(f"checkpoint {path} is corrupt: it does not hold a lit-meta checkpoint") from None
    except Exception as error:  # damaged bytes can fail anywhere in the unpickler, with any exception
        raise ConfigError(f"checkpoint {path} is corrupt or truncated ({first_line(error)})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"checkpoint {path} is not a Lightning checkpoint (it has no state_dict)")
    broken = first_non_finite_in_state(checkpoint["state_dict"])
    if broken is not None:
        raise ConfigError(
            f"checkpoint {path} holds weights that are not finite (NaN or infinity in {broken}): "
            "it was saved after training diverged"
        )
    return checkpoint


def _check_archive(path: Path) -> None:
    """Refuse a file that is not a PyTorch checkpoint archive, or whose entries fail their checksums."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as error:
        raise ConfigError(
            f"checkpoint {path} is corrupt or not a checkpoint at all: it is not a PyTorch checkpoint "
            f"archive ({first_line(error)})"
        ) from None
    except OSError as error:
        raise ConfigError(f"checkpoint {path} cannot be read ({reason_of(error)})") from None
    if damaged is not None:
        raise ConfigError(
            f"checkpoint {path} is damaged: its entry {damaged} does not match the checksum stored with it"
        )


def rebuild(checkpoint: dict, source: str) -> tuple[MetaLearningModule, pl.LightningDataModule | None]:
    """The module (weights loaded) and datamodule that wrote ``checkpoint``, built from its stored
    hyperparameters through lit-meta's own class registry: nothing named in the file is imported."""
    stamp = checkpoint_stamp(checkpoint, source)
    module_class = MODULES.get(stamp["module"])
    if module_class is None:
        raise ConfigError(
            f"{source} holds a {stamp['module']}, which this version of lit-meta cannot evaluate"
        )
    module = module_class(**_init_kwargs(module_class, checkpoint.get("hyper_parameters", {})))
    datamodule_class = DATAMODULES.get(stamp.get("datamodule", ""))
    datamodule = None
    if datamodule_class is not None:
        datamodule = datamodule_class(
            **_init_kwargs(datamodule_class, checkpoint.get("datamodule_hyper_parameters", {}))
        )
        if hasattr(module, "check_data"):
            module.check_data(datamodule)  # modules built on their data (RL spaces) are complete now
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise ConfigError(
            f"{source} has weights that do not fit its own hyperparameters ({first_line(error)})"
        ) from None
    return module, datamodule


def _init_kwargs(cls: type, hparams: dict) -> dict:
    """The stored hyperparameters that ``cls.__init__`` accepts as plain values (no injected objects)."""
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", *INJECTED_ARGUMENTS}
    return {key: value for key, value in hparams.items() if key in accepted}
