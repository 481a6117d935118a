"""Reading checkpoints without executing anything stored in them, and only when they are intact.

``torch.load(weights_only=True)`` only rebuilds tensors, numbers, strings and containers; a pickle that
would construct any other object (and so could run code) is refused. Lightning's
``load_from_checkpoint`` instead imports and calls class paths stored in the file, so lit-meta never
uses it on a checkpoint it is handed: models are rebuilt from validated hyperparameters.

torch does not check the CRC-32 checksums its checkpoint archives (zip files) carry for every entry, so
damaged bytes would load as wrong weights; :func:`load_checkpoint` checks them first, and refuses weights
that are not finite.
"""

import json
import pickle
import zipfile
import zlib
from pathlib import Path

import torch

from lit_meta.errors import ConfigError, first_line
from lit_meta.files import reason_of
from lit_meta.finite import first_non_finite_in_state

CHECKPOINT_KEY = "lit_meta"
"""Top-level checkpoint key: ``{"module": <class name>, "datamodule": <class name>, "format": <int>}``."""
CHECKPOINT_FORMAT = 2
"""Format 2 renamed hyperparameters (:data:`RENAMED_HYPERPARAMETERS`); format 1 files are upgraded on load."""
RENAMED_HYPERPARAMETERS: dict[str, dict[str, str]] = {
    "FewShotModule": {"eval_inner_steps": "eval_steps"},
    "MAMLRLModule": {"clip": "clip_range"},
    "VarShareSACModule": {"meta_update_alpha": "meta_step_size"},
}
"""Per module class: hyperparameter names of format-1 checkpoints and the names they have now."""
ADDED_HYPERPARAMETERS: dict[str, dict[str, object]] = {
    "PEARLModule": {
        "posterior_covariance": "diagonal",
        "encoder_objective": "critic",
        "context_deviations": False,
    },
    "RL2Module": {"trial_progress": False, "separate_critic": False},
}
"""Per module class: architecture hyperparameters added since, with the value every checkpoint written
before them had (what the module then always did)."""


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
    upgrade_checkpoint(checkpoint)
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


def upgrade_checkpoint(checkpoint: dict) -> dict:
    """Convert, in place, a checkpoint of an earlier format to the current one (hyperparameters renamed
    since are given their new names) and give it the hyperparameters added since, at the value it was
    trained with; returns it. A checkpoint without a lit-meta stamp is left alone."""
    stamp = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(stamp, dict):
        return checkpoint
    hparams = checkpoint.setdefault("hyper_parameters", {})
    if stamp.get("format", 1) < CHECKPOINT_FORMAT:
        for old, new in RENAMED_HYPERPARAMETERS.get(stamp.get("module"), {}).items():
            if old in hparams and new not in hparams:
                hparams[new] = hparams.pop(old)
        stamp["format"] = CHECKPOINT_FORMAT
    for name, value in ADDED_HYPERPARAMETERS.get(stamp.get("module"), {}).items():
        hparams.setdefault(name, value)
    return checkpoint


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
        if _as_list(saved.get(name)) != _as_list(hparams.get(name)):
            raise ConfigError(
                f"{source} was trained with {name}={saved.get(name)!r}, "
                f"but this run is configured with {name}={hparams.get(name)!r}; to resume it, "
                f"pass --model.init_args.{name} {_command_line_value(saved.get(name))}"
            )


def _command_line_value(value: object) -> str:
    """``value`` as the command line writes it (``false``, ``reptile``, ``[64, 64]``)."""
    return value if isinstance(value, str) else json.dumps(value)


def checkpoint_stamp(checkpoint: dict, source: str) -> dict:
    """The identity stamp of a lit-meta checkpoint; :class:`ConfigError` if there is none."""
    stamp = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(stamp, dict) or not isinstance(stamp.get("module"), str):
        raise ConfigError(f"{source} was not written by lit-meta (it has no '{CHECKPOINT_KEY}' entry)")
    return stamp


def _as_list(value: object) -> object:
    return list(value) if isinstance(value, tuple | list) else value
