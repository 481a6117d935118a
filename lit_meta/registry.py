"""The classes a checkpoint may name, and rebuilding a trained module from a checkpoint through them.

A checkpoint stores hyperparameters and class names, never code: the model is rebuilt by looking its
class up here and calling it with the stored (validated) hyperparameters, so nothing named in a file is
ever imported (Lightning's ``load_from_checkpoint`` would import and call any class path it stores).
"""

import inspect
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
from jsonargparse import ArgumentError, ArgumentParser

from lit_meta.checkpoints import checkpoint_stamp
from lit_meta.datamodules import (
    CIFARFSDataModule,
    FC100DataModule,
    ImageFolderDataModule,
    MiniImageNetDataModule,
    OmniglotDataModule,
    RLTaskDataModule,
    SineDataModule,
)
from lit_meta.errors import ConfigError, first_line
from lit_meta.modules import (
    FewShotModule,
    MAMLRLModule,
    MetaLearningModule,
    PEARLModule,
    RL2Module,
    SB3ReptileModule,
    VarShareSACModule,
)

MODULES: dict[str, type[MetaLearningModule]] = {
    "FewShotModule": FewShotModule,
    "MAMLRLModule": MAMLRLModule,
    "PEARLModule": PEARLModule,
    "SB3ReptileModule": SB3ReptileModule,
    "RL2Module": RL2Module,
    "VarShareSACModule": VarShareSACModule,
}
"""The modules a checkpoint may name; nothing outside this registry is ever instantiated."""
DATAMODULES: dict[str, type[pl.LightningDataModule]] = {
    "SineDataModule": SineDataModule,
    "OmniglotDataModule": OmniglotDataModule,
    "ImageFolderDataModule": ImageFolderDataModule,
    "MiniImageNetDataModule": MiniImageNetDataModule,
    "CIFARFSDataModule": CIFARFSDataModule,
    "FC100DataModule": FC100DataModule,
    "RLTaskDataModule": RLTaskDataModule,
}
INJECTED_ARGUMENTS = ("optimizer", "lr_scheduler")
"""Constructor arguments that take objects (not stored): the module's defaults are used instead."""


def rebuild(
    checkpoint: dict, source: str, with_data: bool = True, options: Mapping[str, Any] | None = None
) -> tuple[MetaLearningModule, pl.LightningDataModule | None]:
    """The module (weights and :meth:`~lit_meta.modules.base.MetaLearningModule.restore_for_evaluation`'s
    state loaded) and datamodule that wrote ``checkpoint``, built from its stored
    hyperparameters through lit-meta's own class registry: nothing named in the file is imported.
    ``with_data=False`` builds no datamodule (for modules complete without one, when the training data
    need not be on this machine). ``options`` replace stored hyperparameters that do not fix the weights'
    shapes (how a PEARL module plays its held-out episodes, say); the module keeps them in
    ``evaluation_options``, for the report."""
    stamp = checkpoint_stamp(checkpoint, source)
    module_class = MODULES.get(stamp["module"])
    if module_class is None:
        raise ConfigError(
            f"{source} holds a {stamp['module']}, which this version of lit-meta cannot evaluate"
        )
    options = _checked_options(module_class, options or {}, source)
    hparams = {**checkpoint.get("hyper_parameters", {}), **options}
    module = module_class(**_init_kwargs(module_class, hparams))
    module.evaluation_options = options
    datamodule_class = DATAMODULES.get(stamp.get("datamodule", "")) if with_data else None
    datamodule = None
    if datamodule_class is not None:
        datamodule = datamodule_class(
            **_init_kwargs(datamodule_class, checkpoint.get("datamodule_hyper_parameters", {}))
        )
        module.check_data(datamodule)  # modules built on their data (RL spaces) are complete now
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise ConfigError(
            f"{source} has weights that do not fit its own hyperparameters ({first_line(error)})"
        ) from None
    module.restore_for_evaluation(checkpoint)
    return module, datamodule


def _init_kwargs(cls: type, hparams: dict) -> dict:
    """The stored hyperparameters that ``cls.__init__`` accepts as plain values (no injected objects)."""
    accepted = _plain_arguments(cls)
    return {key: value for key, value in hparams.items() if key in accepted}


def _plain_arguments(cls: type) -> set[str]:
    """The arguments of ``cls.__init__`` that take plain values (not :data:`INJECTED_ARGUMENTS`)."""
    return set(inspect.signature(cls.__init__).parameters) - {"self", *INJECTED_ARGUMENTS}


def _checked_options(
    cls: type[MetaLearningModule], options: Mapping[str, Any], source: str
) -> dict[str, Any]:
    """``options`` converted to the types ``cls.__init__`` declares (as the training command line converts
    them); refused, in one sentence, if ``cls`` does not take one, if one fixes the weights' shapes or what
    the weights were trained with (:attr:`~lit_meta.modules.base.MetaLearningModule.TRAINED_HPARAMS`),
    or if a value does not fit its type."""
    fixed = set(cls.ARCHITECTURE_HPARAMS) | set(cls.TRAINED_HPARAMS)
    accepted = _plain_arguments(cls)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(
            f"a {cls.__name__} has no option {', '.join(unknown)}; "
            f"the options it can evaluate with are {', '.join(sorted(accepted - fixed))}"
        )
    refused = sorted(set(options) & fixed)
    if refused:
        raise ConfigError(
            f"{', '.join(refused)} fixes what the weights in {source} were trained for "
            "and cannot be changed to evaluate them"
        )
    parameters = inspect.signature(cls.__init__).parameters
    checked = {}
    for name, value in options.items():
        parser = ArgumentParser(exit_on_error=False)
        parser.add_argument("--value", type=parameters[name].annotation)
        try:
            checked[name] = parser.parse_object({"value": value}).value
        except ArgumentError:
            raise ConfigError(
                f"the {cls.__name__} option {name} cannot be {value!r} "
                f"(it takes {parameters[name].annotation})"
            ) from None
    return checked


__all__ = ["DATAMODULES", "MODULES", "rebuild"]
