"""Omniglot N-way K-shot classification (Lake et al., 2015; the protocol of Vinyals et al., 2016 and the
MAML paper, Finn et al., 2017, sec. 5.2)."""

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from lit_meta.datamodules import omniglot_files
from lit_meta.datamodules.class_tables import SPLITS, ClassTableDataModule
from lit_meta.datamodules.classification import ClassificationTasks
from lit_meta.datamodules.images import ImageFormat
from lit_meta.errors import ConfigError, require

FULL_SPLIT = (1100, 100)
"""Characters of the full set for meta-training and validation, in archive order (background alphabets
first); the remaining 423 are meta-test characters. 1,200 meta-training characters as in the MAML paper,
the last 100 of them held out for validation as learn2learn's Omniglot benchmark does."""
SMALL_SPLIT = {"val": ("Tagalog",), "test": ("Japanese_(katakana)", "Sanskrit")}
"""Alphabets held out of meta-training on the small subset: meta-training uses the five alphabets of
``images_background_small1`` and meta-testing two alphabets found only in ``images_background_small2``."""


class OmniglotDataModule(ClassTableDataModule):
    """Few-shot Omniglot: an endless stream of training tasks and fixed validation and test task sets,
    drawn from disjoint characters.

    Drawings are decoded once into a ``uint8`` tensor (cached beside the data) and tasks are sampled from
    memory, on the GPU when training runs there. Each character rotated by 0, 90, 180 and 270 degrees
    makes four classes (the standard augmentation of Santoro et al., 2016 and the MAML paper).

    :param root: folder holding the Omniglot zips or their extracted folders (also where the cache goes).
    :param download: fetch the full official set with torchvision's downloader (md5-checked) into ``root``.
    :param subset: ``full`` (964 + 659 characters), ``small`` (the two official "small" background splits,
        242 characters) or ``auto`` (full if present, else small).
    :param ways: classes per task N.
    :param shots: support images per class K at validation and test time.
    :param queries: query images per class.
    :param train_shots: support images per class during meta-training (default ``shots``); the Reptile
        paper trains on 10 per class.
    :param train_ways: classes per meta-training task (default ``ways``); Prototypical Networks train on
        more classes than they are tested on (60 in the paper).
    :param meta_batch_size: tasks per meta-iteration.
    :param rotations: make rotated copies of each character into new classes.
    :param val_alphabets: alphabets for validation; with ``test_alphabets``, splits by alphabet. Default:
        the full set is split by character position (:data:`FULL_SPLIT`), the small one by alphabet
        (:data:`SMALL_SPLIT`).
    :param test_alphabets: alphabets for meta-testing.
    :param val_tasks: size of the fixed validation task set.
    :param test_tasks: size of the fixed test task set.
    :param eval_batch_size: tasks per validation/test batch.
    :param epoch_length: meta-iterations per training epoch.
    :param seed: seed of the task streams; train, validation and test use distinct derived seeds.
    :param cache_dir: where the decoded tensor is cached (default ``root``).
    """

    def __init__(
        self,
        root: str = "data",
        download: bool = False,
        subset: Literal["auto", "full", "small"] = "auto",
        ways: int = 5,
        shots: int = 1,
        queries: int = 15,
        train_shots: int | None = None,
        train_ways: int | None = None,
        meta_batch_size: int = 32,
        rotations: bool = True,
        val_alphabets: list[str] | None = None,
        test_alphabets: list[str] | None = None,
        val_tasks: int = 100,
        test_tasks: int = 600,
        eval_batch_size: int = 25,
        epoch_length: int = 1000,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        require(subset in ("auto", "full", "small"), f"subset must be auto, full or small, got '{subset}'")
        require(
            (val_alphabets is None) == (test_alphabets is None),
            "give both val_alphabets and test_alphabets, or neither",
        )
        self.check_counts(
            meta_batch_size=meta_batch_size, val_tasks=val_tasks, test_tasks=test_tasks,
            eval_batch_size=eval_batch_size, epoch_length=epoch_length,
        )  # fmt: skip
        self.save_hyperparameters()
        root_path = Path(root)
        if download:
            omniglot_files.download(root_path)
            subset = "full"
        self.subset, archives = omniglot_files.locate(root_path, subset)
        images = omniglot_files.load_images(
            root_path, self.subset, archives, Path(cache_dir) if cache_dir else None
        )
        self.split_characters = split_characters(images.alphabets, self.subset, val_alphabets, test_alphabets)
        self.alphabets = images.alphabets
        self.use_tables(
            {
                split: ClassificationTasks(class_table(images.images[index], rotations), ways, split)
                for split, index in self.split_characters.items()
            }
        )

    @classmethod
    def image_format(cls, hparams: Mapping) -> ImageFormat:
        """28×28 grey, inverted (strokes bright), Lanczos: as the drawings were decoded."""
        return omniglot_files.IMAGE_FORMAT

    def describe(self) -> dict:
        """What the results depend on, for reports: subset, classes and alphabets of each split."""
        return {
            "subset": self.subset,
            **super().describe(),
            "rotations": self.hparams.rotations,
            **{
                f"{split}_alphabets": sorted({self.alphabets[i] for i in index.tolist()})
                for split, index in self.split_characters.items()
            },
        }


def split_characters(
    alphabets: list[str], subset: str, val_alphabets: list[str] | None, test_alphabets: list[str] | None
) -> dict[str, Tensor]:
    """Indices of the characters of each split, disjoint: by alphabet when alphabets are given (or for
    the small subset), else by character position (:data:`FULL_SPLIT`)."""
    if val_alphabets is None and subset == "full":
        train, val = FULL_SPLIT
        count = len(alphabets)
        require(count > train + val, f"the full Omniglot set should have 1623 characters, found {count}")
        index = torch.arange(count)
        return {"train": index[:train], "val": index[train : train + val], "test": index[train + val :]}
    held_out = {"val": val_alphabets or SMALL_SPLIT["val"], "test": test_alphabets or SMALL_SPLIT["test"]}
    known = sorted(set(alphabets))
    for split, names in held_out.items():
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ConfigError(
                f"{split}_alphabets names {', '.join(unknown)}, not in this Omniglot subset; "
                f"its alphabets are {', '.join(known)}"
            )
        require(len(names) > 0, f"{split}_alphabets must name at least one alphabet")
    overlap = set(held_out["val"]) & set(held_out["test"])
    require(
        not overlap, f"alphabets {', '.join(sorted(overlap))} are in both val_alphabets and test_alphabets"
    )
    split_of = {name: split for split, names in held_out.items() for name in names}
    splits = {split: [] for split in SPLITS}
    for character, alphabet in enumerate(alphabets):
        splits[split_of.get(alphabet, "train")].append(character)
    require(splits["train"], "every alphabet is held out: nothing is left for meta-training")
    return {split: torch.tensor(index) for split, index in splits.items()}


def class_table(images: Tensor, rotations: bool) -> Tensor:
    """``[characters, 20, H, W]`` drawings as classes; with ``rotations``, each character rotated by 0, 90,
    180 and 270 degrees is four classes (``[4 · characters, 20, H, W]``, rotation-major)."""
    if not rotations:
        return images.contiguous()
    return torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)]).contiguous()
