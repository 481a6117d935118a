"""A trained few-shot classifier on the user's own few-shot problem:

    python adapt.py --ckpt runs/x/checkpoints/best.ckpt --support my_support/ --query my_photos/ \\
        [--steps K] [--out predictions.csv] [--export adapted.pt]

``my_support/`` holds one folder per class with a few images each (any size: they are resized and
converted as the checkpoint's training images were). The meta-learned initialisation is adapted with the
rule it was trained with (the algorithm's ``adapt``: Reptile's ``reptile_adapt``, MAML's and ANIL's inner
steps, Prototypical Networks' prototypes), every query image is predicted, and a CSV gets the file, the
predicted class and the probability of each class. From Python: ``from lit_meta.adapt import adapt``.
"""

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from lit_meta.checkpoints import checkpoint_stamp, load_checkpoint
from lit_meta.datamodules import ClassTableDataModule, ImageFormat
from lit_meta.datamodules.images import IMAGE_SUFFIXES, image_files
from lit_meta.entry_points import run_function_cli
from lit_meta.errors import ConfigError, require, require_positive
from lit_meta.evaluation.adaptation import predict
from lit_meta.files import atomic_write_bytes, atomic_write_text
from lit_meta.modules import FewShotModule
from lit_meta.registry import DATAMODULES, rebuild


@dataclass
class Predictions:
    """The adapted model and what it says of each query image: ``probabilities`` is ``[files, classes]``,
    classes in the order of ``classes`` (the support folders, sorted by name)."""

    classes: list[str]
    files: list[Path]
    probabilities: Tensor
    model: nn.Module

    @property
    def predicted(self) -> list[str]:
        return [self.classes[i] for i in self.probabilities.argmax(-1).tolist()]

    def to_csv(self) -> str:
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["file", "predicted", *(f"p({name})" for name in self.classes)])
        for path, name, row in zip(self.files, self.predicted, self.probabilities.tolist(), strict=True):
            writer.writerow([str(path), name, *(f"{p:.6f}" for p in row)])
        return text.getvalue()


def adapt(
    ckpt: str | Path,
    support: str | Path,
    query: str | Path,
    steps: int | None = None,
    device: str = "cpu",
    transductive: bool | None = None,
    batch_size: int = 100,
) -> Predictions:
    """Adapt the checkpoint's meta-learned initialisation to the classes of ``support`` and predict the
    images of ``query`` (a folder, searched recursively, or one image file).

    :param steps: adaptation steps (default: the model's ``eval_steps``; Prototypical Networks have none).
    :param transductive: predict the query images in batches of ``batch_size`` (batch normalisation sees
        their statistics, as in transductive evaluation) or each with the support set alone; default: as
        the model was trained.
    """
    require_positive("batch_size", batch_size)
    module, image_format = load_image_classifier(Path(ckpt))
    if not module.algorithm.ADAPTS_BY_STEPS:
        require(
            steps is None, f"--steps does not apply to {module.hparams.algorithm}, which adapts in one step"
        )
    else:
        steps = module.eval_steps if steps is None else steps
        require_positive("steps", steps)
    classes, support_files = support_classes(Path(support))
    outputs = module.hparams.out_features
    require(
        module.algorithm.ADAPTS_BY_STEPS is False or len(classes) == outputs,
        f"the model has one output per class for {outputs}-way tasks, but {support} holds {len(classes)} "
        f"class folders; give it {outputs} classes (Prototypical Networks take any number)",
    )
    query_files = query_images(Path(query))
    support_x = decode(image_format, [path for paths in support_files for path in paths]).to(device)
    support_y = torch.tensor(
        [label for label, paths in enumerate(support_files) for _ in paths], device=device
    )
    module = module.to(device).eval()
    with torch.enable_grad():
        model = module.algorithm.adapt(support_x, support_y, steps)
    transductive = module.hparams.transductive if transductive is None else transductive
    probabilities = []
    with torch.no_grad():
        for start in tqdm(range(0, len(query_files), batch_size), desc="predicting", unit="batch"):
            x = decode(image_format, query_files[start : start + batch_size]).to(device)
            probabilities.append(predict(model, support_x, x, transductive).softmax(-1).cpu())
    return Predictions(classes, query_files, torch.cat(probabilities), model)


def load_image_classifier(path: Path) -> tuple[FewShotModule, ImageFormat]:
    """The few-shot image classifier of checkpoint ``path`` (no training data needed) and how its training
    images were decoded."""
    checkpoint = load_checkpoint(path)
    stamp = checkpoint_stamp(checkpoint, f"checkpoint {path}")
    data_class = DATAMODULES.get(stamp.get("datamodule", ""))
    if (
        stamp["module"] != "FewShotModule"
        or data_class is None
        or not issubclass(data_class, ClassTableDataModule)
    ):
        trained_on = stamp.get("datamodule") or "no data module"
        raise ConfigError(
            f"adapt.py takes few-shot image classifiers, but {path} holds a {stamp['module']} trained on "
            f"{trained_on}"
        )
    module, _ = rebuild(checkpoint, f"checkpoint {path}", with_data=False)
    return module, data_class.image_format(checkpoint.get("datamodule_hyper_parameters", {}))


def support_classes(folder: Path) -> tuple[list[str], list[list[Path]]]:
    """The class folders of ``folder`` (sorted by name) and each one's images."""
    if not folder.is_dir():
        raise ConfigError(f"support folder {folder} does not exist")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    require(len(classes) >= 2, f"{folder} must hold a folder of images per class (at least 2 classes)")
    files = [image_files(c) for c in classes]
    empty = [c.name for c, paths in zip(classes, files, strict=True) if not paths]
    require(not empty, f"class folder {folder / empty[0]} holds no PNG or JPEG images" if empty else "")
    return [c.name for c in classes], files


def query_images(query: Path) -> list[Path]:
    """``query`` itself if it is an image file, else every PNG and JPEG under it."""
    if query.is_file():
        return [query]
    if not query.is_dir():
        raise ConfigError(f"query {query} does not exist")
    files = sorted(p for p in query.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    require(files, f"{query} holds no PNG or JPEG images to predict")
    return files


def decode(image_format: ImageFormat, files: list[Path]) -> Tensor:
    """Images as the training sampler gives them: ``float [N, C, H, W]`` in [0, 1]."""
    return torch.from_numpy(np.stack([image_format.decode_file(path) for path in files])).float() / 255


def export_torchscript(predictions: Predictions, path: Path, example: Tensor) -> None:
    """The adapted model as TorchScript (logits of a batch of images in [0, 1]; batch normalisation uses
    the batch's statistics), loadable with ``torch.jit.load`` without lit-meta."""
    with torch.no_grad():
        traced = torch.jit.trace(predictions.model.cpu().eval(), example.cpu())
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def run(
    ckpt: str,
    support: str,
    query: str,
    steps: int | None = None,
    out: str = "predictions.csv",
    export: str | None = None,
    device: str = "cpu",
    transductive: bool | None = None,
    batch_size: int = 100,
) -> Predictions:
    """Adapt a trained few-shot classifier to the classes in ``support`` and predict ``query``.

    :param ckpt: checkpoint of a few-shot image classifier (e.g. ``runs/x/checkpoints/best.ckpt``).
    :param support: folder with one sub-folder of images per class.
    :param query: folder of images to predict (searched recursively), or one image.
    :param steps: adaptation steps (default: the model's ``eval_steps``).
    :param out: CSV of the predictions (never overwritten).
    :param export: also write the adapted model as TorchScript to this file.
    :param device: ``cpu`` or ``cuda``.
    :param transductive: predict query images in batches (batch statistics) or each with the support set.
    :param batch_size: query images per batch.
    """
    targets = [Path(out), *([Path(export)] if export else [])]
    for target in targets:
        require(not target.exists(), f"{target} already exists; choose another file or delete it")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' was asked for, but no CUDA device is available")
    predictions = adapt(ckpt, support, query, steps, device, transductive, batch_size)
    atomic_write_text(Path(out), predictions.to_csv())
    if export:
        example = decode(load_image_classifier(Path(ckpt))[1], predictions.files[:2])
        export_torchscript(predictions, Path(export), example)
    return predictions


def main(args: list[str] | None = None) -> int:
    """Command-line entry: bad input prints one sentence and returns 2."""
    status, predictions = run_function_cli(run, args)
    if status:
        return status
    print(f"{len(predictions.files)} images predicted as one of {', '.join(predictions.classes)}")
    return 0
