"""Few-shot image datasets beyond Omniglot: any folder of class folders, mini-ImageNet (either layout users
have on disk), CIFAR-FS and FC100 (from torchvision's CIFAR-100 archive). Each is read once into a
``uint8`` table per split (image files are decoded once and the table cached beside the data) and tasks
are sampled from memory like Omniglot's (:class:`~lit_meta.datamodules.classification.ClassificationTasks`;
classes may hold different numbers of images).

Nothing is dropped silently: a missing file or folder, an unreadable image (named), a class in two splits,
or a class with fewer images than a task needs (named, with its split) is a one-sentence
:class:`~lit_meta.errors.ConfigError`.
"""

import csv
import hashlib
import pickle
import tarfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from lit_meta.datamodules.class_tables import COUNTS, SPLITS, ClassTableDataModule
from lit_meta.datamodules.classification import ClassificationTasks
from lit_meta.datamodules.images import ImageFormat, cached, image_files, source_key
from lit_meta.errors import ConfigError, first_line, require

SHARED_ARGUMENTS = """
    :param ways: classes per held-out task N.
    :param shots: support images per class K at validation and test time.
    :param queries: query images per class.
    :param train_shots: support images per class during meta-training (default ``shots``).
    :param train_ways: classes per meta-training task (default ``ways``; Prototypical Networks train on more).
    :param meta_batch_size: tasks per meta-iteration.
    :param val_tasks: size of the fixed validation task set.
    :param test_tasks: size of the fixed test task set.
    :param eval_batch_size: tasks per validation/test batch.
    :param epoch_length: meta-iterations per training epoch.
    :param seed: seed of the task streams; train, validation and test use distinct derived seeds.
    :param cache_dir: where the decoded table is cached (default ``root``).
"""


def ragged_tasks(classes: dict[str, torch.Tensor], ways: int, split: str) -> ClassificationTasks:
    """The sampler of one split from ``{class name: uint8 [images, C, H, W]}`` (classes in that order)."""
    require(len(classes) > 0, f"the {split} split has no classes")
    names = list(classes)
    counts = torch.tensor([classes[name].shape[0] for name in names])
    return ClassificationTasks.from_ragged(torch.cat([classes[n] for n in names]), counts, ways, split, names)


def _cache_file(root: Path, cache_dir: str | None, stem: str) -> Path:
    """Where the decoded table of the data in ``root`` goes: one file per data folder and format (the cache
    of changed data replaces the old one rather than piling up beside it)."""
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return (Path(cache_dir) if cache_dir else root) / f"{stem}-{digest}.pt"


def _decode_classes(files: dict[str, list[Path]], image_format: ImageFormat) -> dict[str, torch.Tensor]:
    """``{class: [image files]}`` decoded into ``{class: uint8 [images, C, H, W]}``."""
    return {
        name: torch.from_numpy(np.stack([image_format.decode_file(path) for path in paths]))
        for name, paths in files.items()
    }


class _ClassTableFromDisk(ClassTableDataModule):
    """Builds the split tables from ``{split: {class: uint8 [images, C, H, W]}}``; ``class_names[split]``
    lists each split's classes in table order."""

    class_names: dict[str, list[str]]

    def _use_classes(self, split_classes: dict[str, dict[str, torch.Tensor]]) -> None:
        names = {split: set(classes) for split, classes in split_classes.items()}
        for first, second in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = sorted(names[first] & names[second])
            both = f"the {first} and {second} splits"
            require(not shared, f"classes {', '.join(shared[:5])} are in both {both}")
        self.class_names = {split: list(classes) for split, classes in split_classes.items()}
        self.use_tables(
            {split: ragged_tasks(split_classes[split], self.hparams.ways, split) for split in SPLITS}
        )

    def describe(self) -> dict:
        """Where the data came from, the images' format and the tasks' shape."""
        image_format = self.image_format(self.hparams)
        return {
            "root": str(self.hparams.root),
            "image_size": image_format.side,
            "channels": image_format.channels,
            **super().describe(),
        }


class ImageFolderDataModule(_ClassTableFromDisk):
    """Few-shot classification on any folder of images: ``root/<split>/<class>/<image>`` (``split`` being
    ``train``, ``val`` and ``test``), or ``root/<class>/<image>`` with ``class_lists`` naming the classes
    of each split (text files, one class folder name per line). The PNG and JPEG files directly in each
    class folder, of any size and colour mode, are decoded once (Lanczos) to ``image_size``×``image_size``
    pixels with ``channels`` channels and cached; classes may hold different numbers of images.

    :param root: the dataset folder.
    :param image_size: side of the square images the network sees.
    :param channels: 1 (grey) or 3 (RGB).
    :param class_lists: ``{"train": file, "val": file, "test": file}`` (paths relative to ``root`` or
        absolute) to split ``root``'s class folders by lists instead of by split folders.
    """

    __doc__ += SHARED_ARGUMENTS

    def __init__(
        self,
        root: str = "data/images",
        image_size: int = 84,
        channels: int = 3,
        class_lists: dict[str, str] | None = None,
        ways: int = 5,
        shots: int = 1,
        queries: int = 15,
        train_shots: int | None = None,
        train_ways: int | None = None,
        meta_batch_size: int = 4,
        val_tasks: int = 100,
        test_tasks: int = 600,
        eval_batch_size: int = 10,
        epoch_length: int = 1000,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.check_counts(
            meta_batch_size=meta_batch_size, val_tasks=val_tasks, test_tasks=test_tasks,
            eval_batch_size=eval_batch_size, epoch_length=epoch_length,
        )  # fmt: skip
        self.save_hyperparameters()
        image_format = self.image_format(self.hparams)  # checks image_size and channels
        root_path = Path(root)
        files = folder_classes(root_path, class_lists)
        every_file = [path for split in SPLITS for paths in files[split].values() for path in paths]
        key = source_key(every_file, image_format, [str(p.relative_to(root_path)) for p in every_file])
        stored = cached(
            _cache_file(root_path, cache_dir, f"images-{image_size}px-{channels}ch"),
            key,
            lambda: {"splits": {split: _decode_classes(files[split], image_format) for split in SPLITS}},
        )
        self._use_classes(stored["splits"])

    @classmethod
    def image_format(cls, hparams: Mapping) -> ImageFormat:
        """``image_size``×``image_size`` pixels of ``channels`` channels, as the folder was decoded."""
        return ImageFormat(hparams.get("image_size", 84), hparams.get("channels", 3))


def folder_classes(root: Path, class_lists: Mapping[str, str] | None) -> dict[str, dict[str, list[Path]]]:
    """``{split: {class: [image files]}}`` of an image folder (see :class:`ImageFolderDataModule`)."""
    layouts = f"{root}/<train|val|test>/<class>/<image>, or {root}/<class>/<image> with class_lists"
    if not root.is_dir():
        raise ConfigError(f"image folder {root} does not exist: put the images there as {layouts}")
    if class_lists is None:
        missing = [split for split in SPLITS if not (root / split).is_dir()]
        if missing:
            raise ConfigError(
                f"{root} has no {', '.join(missing)} folder: lay the images out as {layouts} naming the "
                "class folders of each split"
            )
        folders = {split: sorted(p for p in (root / split).iterdir() if p.is_dir()) for split in SPLITS}
    else:
        require(
            sorted(class_lists) == sorted(SPLITS),
            f"class_lists must name train, val and test, got {', '.join(sorted(class_lists)) or 'nothing'}",
        )
        folders = {split: _listed_folders(root, split, Path(class_lists[split])) for split in SPLITS}
    files = {}
    for split, class_folders in folders.items():
        if not class_folders:
            raise ConfigError(
                f"the {split} split of {root} has no class folders: lay the images out as {layouts}"
            )
        files[split] = {}
        for folder in class_folders:
            images = image_files(folder)
            if not images:
                raise ConfigError(f"class folder {folder} holds no PNG or JPEG images")
            files[split][folder.name] = images
    return files


def _listed_folders(root: Path, split: str, listing: Path) -> list[Path]:
    """The class folders that the class list of ``split`` names, one per line."""
    listing = listing if listing.is_absolute() else root / listing
    try:
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise ConfigError(f"the {split} class list {listing} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"the {split} class list {listing} cannot be read ({first_line(error)})") from None
    repeated = sorted({name for name in names if names.count(name) > 1})
    require(not repeated, f"{listing} names {', '.join(repeated[:5])} more than once")
    absent = [name for name in names if not (root / name).is_dir()]
    if absent:
        raise ConfigError(f"{listing} names {', '.join(absent[:5])}, which {root} has no folder for")
    return [root / name for name in names]


MINI_IMAGENET_PICKLES = {split: f"mini-imagenet-cache-{name}.pkl" for split, name in
                         (("train", "train"), ("val", "validation"), ("test", "test"))}  # fmt: skip
MINI_IMAGENET_CSVS = {split: f"{split}.csv" for split in SPLITS}


class MiniImageNetDataModule(_ClassTableFromDisk):
    """mini-ImageNet (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, "Matching Networks for One Shot
    Learning", NeurIPS 2016) with the split of Ravi & Larochelle ("Optimization as a Model for Few-Shot
    Learning", ICLR 2017): 64 / 16 / 20 classes of 600 images, 84×84 RGB.

    ``root`` holds either learn2learn's ``mini-imagenet-cache-{train,validation,test}.pkl`` (read as they
    are: ``image_data`` ``N×84×84×3 uint8`` and ``class_dict`` {class: rows}) or Ravi & Larochelle's
    ``images/`` folder with ``train.csv``, ``val.csv`` and ``test.csv`` (``filename,label`` rows naming
    files in ``images/``); the JPEGs of the second layout are decoded once to 84×84 (Lanczos) and cached.

    :param root: the folder holding either layout.
    """

    __doc__ += SHARED_ARGUMENTS

    def __init__(
        self,
        root: str = "data/mini-imagenet",
        ways: int = 5,
        shots: int = 1,
        queries: int = 15,
        train_shots: int | None = None,
        train_ways: int | None = None,
        meta_batch_size: int = 4,
        val_tasks: int = 100,
        test_tasks: int = 600,
        eval_batch_size: int = 10,
        epoch_length: int = 1000,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.check_counts(
            meta_batch_size=meta_batch_size, val_tasks=val_tasks, test_tasks=test_tasks,
            eval_batch_size=eval_batch_size, epoch_length=epoch_length,
        )  # fmt: skip
        self.save_hyperparameters()
        root_path = Path(root)
        self.layout = mini_imagenet_layout(root_path)
        if self.layout == "learn2learn pickles":
            classes = {split: _read_pickle(root_path / name) for split, name in MINI_IMAGENET_PICKLES.items()}
        else:
            classes = _read_csv_layout(root_path, cache_dir, self.image_format(self.hparams))
        self._use_classes(classes)

    @classmethod
    def image_format(cls, hparams: Mapping) -> ImageFormat:
        """84×84 RGB (the JPEGs of the csv layout are resized with Lanczos, as new images are)."""
        return ImageFormat(84, 3)

    def describe(self) -> dict:
        return {"layout": self.layout, **super().describe()}


def mini_imagenet_layout(root: Path) -> str:
    """``learn2learn pickles`` or ``Ravi & Larochelle csv``, whichever ``root`` holds completely;
    :class:`ConfigError` naming both layouts' files (and what is missing of a partial one) otherwise."""
    missing_pickles = [name for name in MINI_IMAGENET_PICKLES.values() if not (root / name).is_file()]
    missing_csv = [name for name in MINI_IMAGENET_CSVS.values() if not (root / name).is_file()]
    missing_csv += [] if (root / "images").is_dir() else ["images/"]
    if not missing_pickles:
        return "learn2learn pickles"
    if not missing_csv:
        return "Ravi & Larochelle csv"
    partial = [
        missing
        for missing, total in ((missing_pickles, len(MINI_IMAGENET_PICKLES)), (missing_csv, 4))
        if len(missing) < total
    ]
    lacking = f" ({', '.join(min(partial, key=len))} missing)" if partial else ""
    where = f"{root}" if root.is_dir() else f"{root}, which does not exist"
    pickles, csvs = ", ".join(MINI_IMAGENET_PICKLES.values()), ", ".join(MINI_IMAGENET_CSVS.values())
    raise ConfigError(
        f"no mini-ImageNet in {where}{lacking}: put learn2learn's {pickles} there, "
        f"or Ravi & Larochelle's images/ folder with {csvs}"
    )


def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    """learn2learn's cache: ``image_data`` ``[N, 84, 84, 3]`` and ``class_dict`` {class: row indices}.

    These are the user's own files, read with pickle as learn2learn itself reads them."""
    try:
        with open(path, "rb") as file:
            data = pickle.load(file)
        images, class_dict = np.asarray(data["image_data"]), dict(data["class_dict"])
    except (
        OSError,
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
    ) as error:
        raise ConfigError(f"{path} is not a readable mini-ImageNet pickle ({first_line(error)})") from None
    require(
        images.ndim == 4 and images.shape[-1] == 3 and images.dtype == np.uint8,
        f"{path} holds images of shape {images.shape} ({images.dtype}), not N × 84 × 84 × 3 uint8",
    )
    require(len(class_dict) > 0, f"{path} holds no classes (its class_dict is empty)")
    table = torch.from_numpy(images).permute(0, 3, 1, 2)
    classes = {}
    for name, rows in sorted(class_dict.items()):
        index = torch.as_tensor(list(rows), dtype=torch.long)
        require(
            index.numel() > 0 and int(index.min()) >= 0 and int(index.max()) < len(table),
            f"{path} is damaged: class {name} names rows outside its {len(table)} images",
        )
        classes[name] = table[index].contiguous()
    return classes


def _read_csv_layout(root: Path, cache_dir: str | None, image_format: ImageFormat) -> dict:
    """``{split: {class: uint8 [images, 3, 84, 84]}}`` of Ravi & Larochelle's layout, decoded once."""
    files: dict[str, dict[str, list[Path]]] = {}
    for split, name in MINI_IMAGENET_CSVS.items():
        listing = root / name
        try:
            with open(listing, newline="") as file:
                rows = [row for row in csv.reader(file) if row]
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise ConfigError(f"{listing} cannot be read ({first_line(error)})") from None
        require(len(rows) > 1 and [c.strip() for c in rows[0][:2]] == ["filename", "label"],
                f"{listing} must start with the header 'filename,label' and list images")  # fmt: skip
        files[split] = {}
        for row in rows[1:]:
            require(len(row) >= 2, f"{listing} has a row without a label: {','.join(row)}")
            path = root / "images" / row[0]
            if not path.is_file():
                raise ConfigError(f"{listing} lists {row[0]}, which is not in {root / 'images'}")
            files[split].setdefault(row[1], []).append(path)
    sources = [root / name for name in MINI_IMAGENET_CSVS.values()] + [root / "images"]
    key = source_key(sources, image_format)
    stored = cached(
        _cache_file(root, cache_dir, "mini-imagenet-84px"),
        key,
        lambda: {"splits": {split: _decode_classes(files[split], image_format) for split in SPLITS}},
    )
    return stored["splits"]


CIFAR_FOLDER = "cifar-100-python"
CIFAR_PARTS = ("train", "test", "meta")


class _CIFAR100Split(_ClassTableFromDisk):
    """A few-shot split of CIFAR-100's 100 classes (600 32×32 RGB images each: its train and test parts
    together), read from torchvision's archive under ``root`` (``cifar-100-python/`` or
    ``cifar-100-python.tar.gz``). The split's class (or superclass) names are shipped in
    ``lit_meta/datamodules/splits/<SPLIT_FOLDER>/{train,val,test}.txt``."""

    SPLIT_FOLDER: str
    BY_SUPERCLASS: bool

    def __init__(
        self,
        root: str = "data",
        ways: int = 5,
        shots: int = 1,
        queries: int = 15,
        train_shots: int | None = None,
        train_ways: int | None = None,
        meta_batch_size: int = 8,
        val_tasks: int = 100,
        test_tasks: int = 600,
        eval_batch_size: int = 10,
        epoch_length: int = 1000,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self._read(root)

    def _read(self, root: str) -> None:
        self.check_counts(**{name: self.hparams[name] for name in COUNTS})
        images, fine, coarse, fine_names, coarse_names = read_cifar100(Path(root))
        split_names = published_split(self.SPLIT_FOLDER)
        label_names, labels = (coarse_names, coarse) if self.BY_SUPERCLASS else (fine_names, fine)
        classes = {}
        for split, names in split_names.items():
            unknown = [name for name in names if name not in label_names]
            require(not unknown, f"CIFAR-100 has no class {', '.join(unknown)}: is {root} CIFAR-100?")
            wanted = {label_names.index(name) for name in names}
            chosen = sorted({int(f) for f, c in zip(fine, labels, strict=True) if int(c) in wanted})
            classes[split] = {fine_names[f]: images[fine == f] for f in chosen}
        self._use_classes(classes)

    @classmethod
    def image_format(cls, hparams: Mapping) -> ImageFormat:
        """32×32 RGB: a new image is resized (Lanczos) to CIFAR's size."""
        return ImageFormat(32, 3)


def published_split(folder: str) -> dict[str, list[str]]:
    """The class (or superclass) names of each split shipped in ``lit_meta/datamodules/splits/<folder>``."""
    base = resources.files("lit_meta.datamodules") / "splits" / folder
    return {split: (base / f"{split}.txt").read_text().split() for split in SPLITS}


def read_cifar100(root: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str], list[str]]:
    """Images ``uint8 [60000, 3, 32, 32]`` (the train part, then the test part), fine and coarse labels,
    and the label names, from torchvision's CIFAR-100 python archive under ``root``: extracted
    (``cifar-100-python/{train,test,meta}``, or those files in ``root`` itself) or not
    (``cifar-100-python.tar.gz``)."""
    archive = root / f"{CIFAR_FOLDER}.tar.gz"
    folder = next(
        (f for f in (root / CIFAR_FOLDER, root) if all((f / name).is_file() for name in CIFAR_PARTS)), None
    )
    if folder is None and not archive.is_file():
        raise ConfigError(
            f"no CIFAR-100 in {root}: put torchvision's {CIFAR_FOLDER}.tar.gz there, or its extracted "
            f"{CIFAR_FOLDER}/ folder (train, test and meta)"
        )
    source = folder if folder is not None else archive
    try:
        if folder is not None:
            parts = {name: _unpickle((folder / name).read_bytes()) for name in CIFAR_PARTS}
        else:
            with tarfile.open(archive, "r:gz") as bundle:
                parts = {
                    name: _unpickle(bundle.extractfile(f"{CIFAR_FOLDER}/{name}").read())
                    for name in CIFAR_PARTS
                }
        train, test, meta = (parts[name] for name in CIFAR_PARTS)
        data = np.concatenate([np.asarray(train["data"]), np.asarray(test["data"])])
        images = torch.from_numpy(np.ascontiguousarray(data.reshape(-1, 3, 32, 32), dtype=np.uint8))
        fine = torch.tensor([*train["fine_labels"], *test["fine_labels"]])
        coarse = torch.tensor([*train["coarse_labels"], *test["coarse_labels"]])
        fine_names, coarse_names = list(meta["fine_label_names"]), list(meta["coarse_label_names"])
    except (OSError, tarfile.TarError, KeyError, pickle.UnpicklingError, EOFError, AttributeError, TypeError,
            ValueError) as error:  # fmt: skip
        raise ConfigError(f"the CIFAR-100 files in {source} cannot be read ({first_line(error)})") from None
    require(
        len(images) == len(fine) == len(coarse),
        f"the CIFAR-100 files in {source} are damaged: {len(images)} images but {len(fine)} labels",
    )
    return images, fine, coarse, fine_names, coarse_names


def _unpickle(data: bytes) -> dict:
    return pickle.loads(data, encoding="latin1")  # the CIFAR archive's own format


class CIFARFSDataModule(_CIFAR100Split):
    """CIFAR-FS (Bertinetto, Henriques, Torr & Vedaldi, "Meta-learning with differentiable closed-form
    solvers", ICLR 2019): CIFAR-100 split into 64 / 16 / 20 classes, 600 32×32 RGB images each.

    The split is the published one, as distributed with the paper's code (``splits/bertinetto/``) and
    copied by torchmeta (``torchmeta/datasets/assets/cifar100/cifar-fs/{train,val,test}.json``); it is
    shipped in ``lit_meta/datamodules/splits/cifarfs``.

    :param root: the folder holding torchvision's CIFAR-100 archive.
    """

    __doc__ += SHARED_ARGUMENTS
    SPLIT_FOLDER, BY_SUPERCLASS = "cifarfs", False


class FC100DataModule(_CIFAR100Split):
    """FC100, Fewshot-CIFAR100 (Oreshkin, Rodríguez & Lacoste, "TADAM: Task dependent adaptive metric for
    improved few-shot learning", NeurIPS 2018): CIFAR-100 split by superclass, 12 / 4 / 4 superclasses
    (60 / 20 / 20 classes of 600 32×32 RGB images), so held-out classes are semantically far from the
    training ones.

    The split is the paper's (its supplementary material), as torchmeta ships it
    (``torchmeta/datasets/assets/cifar100/fc100/{train,val,test}.json``); it is shipped in
    ``lit_meta/datamodules/splits/fc100``.

    :param root: the folder holding torchvision's CIFAR-100 archive.
    """

    __doc__ += SHARED_ARGUMENTS
    SPLIT_FOLDER, BY_SUPERCLASS = "fc100", True
