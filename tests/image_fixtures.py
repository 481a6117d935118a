"""Tiny few-shot image datasets written in the on-disk layouts users have (none of the real ones can be
downloaded here): a few small images per class, each class a distinct pattern plus noise, so a network
can tell them apart. Every builder is deterministic (the same bytes every time: the image configs'
reference parameters in tests/fixtures/reference_parameters.json were recorded on them) and takes well
under a second.

    make_image_folder(tmp / "folder")                    # ImageFolderDataModule(root=tmp / "folder")
    make_image_folder(tmp / "flat", layout="lists")      # ... class_lists={s: f"{s}.txt" for s in splits}
    make_miniimagenet_pickles(tmp / "mini")              # MiniImageNetDataModule(root=tmp / "mini")
    make_miniimagenet_csv(tmp / "mini-csv")              # MiniImageNetDataModule(root=tmp / "mini-csv")
    make_cifar100(tmp / "cifar")                         # CIFARFSDataModule / FC100DataModule(root=...)

Each builder returns the class names it wrote. Keep ``shots + queries`` within ``images_per_class``
(6 by default for folders and mini-ImageNet, 5 for CIFAR-100) and ``ways`` within the classes of the
smallest split (5 by default; CIFAR-FS has 16 validation classes, FC100 20).
"""

import csv
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR100_SUPERCLASSES = {
    "aquatic_mammals": "beaver dolphin otter seal whale",
    "fish": "aquarium_fish flatfish ray shark trout",
    "flowers": "orchid poppy rose sunflower tulip",
    "food_containers": "bottle bowl can cup plate",
    "fruit_and_vegetables": "apple mushroom orange pear sweet_pepper",
    "household_electrical_devices": "clock keyboard lamp telephone television",
    "household_furniture": "bed chair couch table wardrobe",
    "insects": "bee beetle butterfly caterpillar cockroach",
    "large_carnivores": "bear leopard lion tiger wolf",
    "large_man-made_outdoor_things": "bridge castle house road skyscraper",
    "large_natural_outdoor_scenes": "cloud forest mountain plain sea",
    "large_omnivores_and_herbivores": "camel cattle chimpanzee elephant kangaroo",
    "medium_mammals": "fox porcupine possum raccoon skunk",
    "non-insect_invertebrates": "crab lobster snail spider worm",
    "people": "baby boy girl man woman",
    "reptiles": "crocodile dinosaur lizard snake turtle",
    "small_mammals": "hamster mouse rabbit shrew squirrel",
    "trees": "maple_tree oak_tree palm_tree pine_tree willow_tree",
    "vehicles_1": "bicycle bus motorcycle pickup_truck train",
    "vehicles_2": "lawn_mower rocket streetcar tank tractor",
}
"""CIFAR-100's superclasses and their classes (the archive's ``coarse_labels`` and ``fine_labels``)."""


def class_images(label: int, count: int, size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """``uint8 [count, size, size, channels]``: class ``label``'s colour and stripe frequency, plus noise."""
    rng = np.random.default_rng([seed, label])
    colour = np.array([(label * 97) % 256, (label * 57 + 80) % 256, (label * 31 + 160) % 256])[:channels]
    stripes = (np.sin(np.arange(size) * (1 + label % 7) * 0.5) > 0).astype(np.float64)
    base = 0.3 + 0.7 * stripes[None, :, None] * np.ones((size, 1, 1))
    noise = rng.uniform(-25, 25, size=(count, size, size, channels))
    return np.clip(base[None] * colour + noise, 0, 255).astype(np.uint8)


def _save(pixels: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(path)


def make_image_folder(
    root: Path,
    classes_per_split: dict[str, int] | None = None,
    images_per_class: int = 6,
    size: int = 20,
    channels: int = 3,
    layout: str = "splits",
    suffix: str | None = None,
) -> dict[str, list[str]]:
    """``root/<split>/<class>/<n>.png`` (``layout="splits"``), or ``root/<class>/<n>.jpg`` with
    ``root/{train,val,test}.txt`` class lists (``layout="lists"``; ``suffix`` ``.png`` or ``.jpg``
    overrides the format). Images are ``size`` to ``size + 2`` pixels square (they are resized when read),
    grey with ``channels=1``; classes are named ``class000``, ``class001``... across the splits.
    Returns each split's class names."""
    assert layout in ("splits", "lists"), layout
    classes_per_split = classes_per_split or {"train": 6, "val": 5, "test": 5}
    names, label = {}, 0
    for split, count in classes_per_split.items():
        names[split] = []
        for _ in range(count):
            name = f"class{label:03d}"
            names[split].append(name)
            folder = root / split / name if layout == "splits" else root / name
            extension = suffix or (".png" if layout == "splits" else ".jpg")
            for index, pixels in enumerate(class_images(label, images_per_class, size + label % 3, channels)):
                _save(pixels, folder / f"{index}{extension}")
            label += 1
        if layout == "lists":
            (root / f"{split}.txt").write_text("\n".join(names[split]) + "\n")
    return names


def _mini_imagenet_classes(classes: tuple[int, int, int], images_per_class: int):
    label = 0
    for split, count in zip(("train", "val", "test"), classes, strict=True):
        for _ in range(count):
            yield split, f"n{label:08d}", class_images(label, images_per_class, 84)
            label += 1


def make_miniimagenet_pickles(
    root: Path, classes: tuple[int, int, int] = (6, 5, 5), images_per_class: int = 6
) -> dict[str, list[str]]:
    """learn2learn's ``mini-imagenet-cache-{train,validation,test}.pkl``: ``image_data`` ``[N, 84, 84, 3]``
    and ``class_dict`` {class: row indices}, with ``classes`` train, val and test classes (named like
    ImageNet's synsets, ``n00000000``...). Returns each split's class names."""
    root.mkdir(parents=True, exist_ok=True)
    data = {split: {"image_data": [], "class_dict": {}} for split in ("train", "val", "test")}
    for split, name, images in _mini_imagenet_classes(classes, images_per_class):
        start = sum(len(block) for block in data[split]["image_data"])
        data[split]["class_dict"][name] = list(range(start, start + len(images)))
        data[split]["image_data"].append(images)
    for split, file_name in (("train", "train"), ("val", "validation"), ("test", "test")):
        content = {
            "image_data": np.concatenate(data[split]["image_data"]),
            "class_dict": data[split]["class_dict"],
        }
        with open(root / f"mini-imagenet-cache-{file_name}.pkl", "wb") as file:
            pickle.dump(content, file)
    return {split: list(part["class_dict"]) for split, part in data.items()}


def make_miniimagenet_csv(
    root: Path, classes: tuple[int, int, int] = (6, 5, 5), images_per_class: int = 6
) -> dict[str, list[str]]:
    """Ravi & Larochelle's layout: ``images/<file>.jpg`` (84×84 JPEGs, so they decode close to, not
    exactly as, the pickles' pixels) and ``{train,val,test}.csv`` (``filename,label``), the same classes
    as :func:`make_miniimagenet_pickles`. Returns each split's class names."""
    rows = {"train": [], "val": [], "test": []}
    for split, name, images in _mini_imagenet_classes(classes, images_per_class):
        for index, pixels in enumerate(images):
            file_name = f"{name}{index:08d}.jpg"
            _save(pixels, root / "images" / file_name)
            rows[split].append((file_name, name))
    for split, entries in rows.items():
        with open(root / f"{split}.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["filename", "label"])
            writer.writerows(entries)
    return {split: list(dict.fromkeys(label for _, label in entries)) for split, entries in rows.items()}


def make_cifar100(root: Path, images_per_class: int = 5) -> list[str]:
    """torchvision's ``root/cifar-100-python/{train,test,meta}`` with every one of the 100 real class names
    and 20 superclasses (fine and coarse labels in alphabetical order, as the real archive),
    ``images_per_class`` 32×32 images each (one of them in ``test``). Returns the fine label names."""
    fine_names = sorted(name for names in CIFAR100_SUPERCLASSES.values() for name in names.split())
    coarse_names = sorted(CIFAR100_SUPERCLASSES)
    coarse_of = {
        fine: coarse_names.index(c) for c, names in CIFAR100_SUPERCLASSES.items() for fine in names.split()
    }
    parts = {"train": {"data": [], "fine_labels": [], "coarse_labels": []}}
    parts["test"] = {"data": [], "fine_labels": [], "coarse_labels": []}
    for label, name in enumerate(fine_names):
        for index, pixels in enumerate(class_images(label, images_per_class, 32)):
            part = parts["test" if index == 0 else "train"]
            part["data"].append(pixels.transpose(2, 0, 1).reshape(-1))  # CIFAR rows: R, G, B planes
            part["fine_labels"].append(label)
            part["coarse_labels"].append(coarse_of[name])
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        with open(folder / name, "wb") as file:
            pickle.dump({**part, "data": np.stack(part["data"])}, file)
    with open(folder / "meta", "wb") as file:
        pickle.dump({"fine_label_names": fine_names, "coarse_label_names": coarse_names}, file)
    return fine_names
