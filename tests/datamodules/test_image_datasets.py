"""Image folders, mini-ImageNet (both layouts), CIFAR-FS and FC100: what they read, how tasks are drawn
from classes of different sizes, the cache, the shipped splits, and every kind of bad data."""

import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from lit_meta.datamodules import (
    CIFARFSDataModule,
    ClassificationTasks,
    FC100DataModule,
    ImageFolderDataModule,
    ImageFormat,
    MiniImageNetDataModule,
    OmniglotDataModule,
    image_datasets,
)
from lit_meta.datamodules.image_datasets import published_split
from lit_meta.datamodules.images import cached
from lit_meta.datamodules.omniglot_files import IMAGE_FORMAT as OMNIGLOT_FORMAT
from lit_meta.errors import ConfigError
from tests.image_fixtures import (
    CIFAR100_SUPERCLASSES,
    make_cifar100,
    make_image_folder,
    make_miniimagenet_csv,
    make_miniimagenet_pickles,
)

SMALL = {"queries": 2, "meta_batch_size": 3}


def old_rectangular_sample(images, ways, num_tasks, generator, shots, queries):
    """The sampler's arithmetic before it learnt ragged classes and channels (one-channel tables)."""
    per_class = shots + queries
    classes = torch.rand(num_tasks, images.shape[0], generator=generator).topk(ways).indices
    picks = torch.rand(num_tasks, ways, images.shape[1], generator=generator).argsort(-1)[..., :per_class]
    rows = (classes[..., None] * images.shape[1] + picks).flatten()
    drawn = images.flatten(0, 1).index_select(0, rows).float().mul_(1 / 255)
    return drawn.view(num_tasks, ways, per_class, 1, *images.shape[2:])


@pytest.mark.parametrize(
    ("classes", "examples", "ways", "shots", "queries"), [(12, 7, 4, 2, 3), (40, 20, 5, 1, 15)]
)
def test_a_rectangular_table_draws_the_same_tasks_as_before(classes, examples, ways, shots, queries):
    images = torch.randint(
        0, 256, (classes, examples, 5, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    generator = torch.Generator().manual_seed(3)
    sampler = ClassificationTasks(images, ways=ways, split="train")
    first, second = (sampler.sample(6, generator, shots, queries) for _ in range(2))
    reference = torch.Generator().manual_seed(3)
    for tasks in (first, second):  # the same random numbers, call after call
        expected = old_rectangular_sample(images, ways, 6, reference, shots, queries)
        assert torch.equal(tasks.support_x, expected[:, :, :shots].reshape(6, ways * shots, 1, 5, 5))
        assert torch.equal(tasks.query_x, expected[:, :, shots:].reshape(6, ways * queries, 1, 5, 5))
        assert torch.equal(tasks.query_y, torch.arange(ways).repeat_interleave(queries).expand(6, -1))
    assert torch.equal(generator.get_state(), reference.get_state())


def test_a_colour_table_draws_the_same_classes_and_images_as_a_grey_one():
    grey = torch.randint(0, 256, (9, 6, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    colour = torch.stack([grey, 255 - grey, grey // 2], dim=2)  # [classes, examples, 3, H, W]
    one = ClassificationTasks(grey, ways=3, split="val").sample(5, torch.Generator().manual_seed(0), 1, 2)
    three = ClassificationTasks(colour, ways=3, split="val").sample(5, torch.Generator().manual_seed(0), 1, 2)
    assert three.support_x.shape == (5, 3, 3, 4, 4) and three.query_x.shape == (5, 6, 3, 4, 4)
    assert torch.equal(three.info["classes"], one.info["classes"])
    assert torch.equal(three.support_x[:, :, :1], one.support_x) and torch.equal(
        three.query_x[:, :, :1], one.query_x
    )


def test_equal_ragged_classes_draw_as_a_rectangular_table():
    table = torch.randint(
        0, 256, (7, 5, 1, 3, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(4)
    )
    rectangular = ClassificationTasks(table, ways=3, split="train")
    ragged = ClassificationTasks.from_ragged(table.flatten(0, 1), torch.full((7,), 5), 3, "train")
    a, b = (s.sample(4, torch.Generator().manual_seed(9), 2, 2) for s in (rectangular, ragged))
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)


def test_ragged_classes_never_draw_padding_and_reach_every_image():
    counts = torch.tensor([3, 6, 4])  # images of class c are c*10 + i
    images = torch.cat([torch.arange(n) + 10 * c for c, n in enumerate(counts.tolist())]).to(torch.uint8)
    table = images.view(-1, 1, 1, 1)
    sampler = ClassificationTasks.from_ragged(
        table, counts, ways=2, split="train", class_names=["a", "b", "c"]
    )
    assert sampler.num_classes == 3 and sampler.examples_per_class == 6 and sampler.image_shape == (1, 1, 1)
    batch = sampler.sample(400, torch.Generator().manual_seed(0), shots=1, queries=2)
    values = torch.cat([batch.support_x, batch.query_x], 1).mul(255).round().long().flatten(1)
    labels = torch.cat([batch.support_y, batch.query_y], 1)
    classes = batch.info["classes"]
    for task in range(400):
        for value, label in zip(values[task].tolist(), labels[task].tolist(), strict=True):
            assert value // 10 == classes[task, label] and value % 10 < counts[value // 10]
        assert len(set(values[task].tolist())) == values.shape[1]  # distinct images within a task
    assert set(values.flatten().tolist()) == set(images.tolist())
    with pytest.raises(ConfigError, match="more than the 3 images of class a of the train split"):
        sampler.check_shots(2, 2)


def test_higher_way_training_tasks():
    images = torch.zeros(10, 4, 2, 2, dtype=torch.uint8)
    sampler = ClassificationTasks(images, ways=3, split="train")
    batch = sampler.sample(2, torch.Generator().manual_seed(0), 1, 1, ways=8)
    assert batch.support_y.tolist() == [list(range(8))] * 2 and batch.info["classes"].shape == (2, 8)
    with pytest.raises(ConfigError, match="ways=11 is more than the 10 classes of the train split"):
        sampler.sample(2, torch.Generator().manual_seed(0), 1, 1, ways=11)


def test_higher_way_meta_training_and_held_out_ways(tmp_path):
    make_image_folder(tmp_path / "data", {"train": 8, "val": 3, "test": 3})
    data = ImageFolderDataModule(str(tmp_path / "data"), image_size=8, ways=3, train_ways=7, **SMALL)
    assert (data.ways, data.train_ways, data.shots, data.queries) == (3, 7, 1, 2)
    batch = next(iter(data.train_dataloader()))
    assert batch.support_x.shape == (3, 7, 3, 8, 8) and batch.query_y[0].tolist() == sorted(
        list(range(7)) * 2
    )
    held_out = data.val_dataloader()[0]
    assert held_out.support_x.shape[1] == 3 and held_out.query_x.shape[1] == 6
    data.setup("fit")  # without a trainer the tables stay on the CPU
    assert data.tasks["train"].images.device.type == "cpu"


def test_omniglot_decodes_exactly_as_before():
    """Omniglot's drawings: the decoding its cached tables and reference runs were made with."""

    def old_decode_png(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            small = image.convert("L").resize((28, 28), Image.Resampling.LANCZOS)
        return 255 - np.asarray(small, dtype=np.uint8)

    rng = np.random.default_rng(0)
    for mode, shape in (("L", (105, 105)), ("1", (105, 105)), ("RGB", (40, 60, 3))):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).convert(mode).save(buffer, "PNG")
        ours = OMNIGLOT_FORMAT.decode(buffer.getvalue(), "drawing.png")
        assert ours.shape == (1, 28, 28) and ours.dtype == np.uint8
        assert np.array_equal(ours[0], old_decode_png(buffer.getvalue()))
    assert ImageFormat(28, 1, invert=True) == OMNIGLOT_FORMAT


@pytest.mark.parametrize("layout", ["splits", "lists"])
def test_an_image_folder_in_either_layout(layout, tmp_path):
    names = make_image_folder(tmp_path / "data", layout=layout, channels=3)
    lists = {split: f"{split}.txt" for split in names} if layout == "lists" else None
    data = ImageFolderDataModule(
        str(tmp_path / "data"), image_size=12, channels=1, class_lists=lists, **SMALL
    )
    assert data.class_names == names
    batch = next(iter(data.train_dataloader()))
    assert batch.support_x.shape == (3, 5, 1, 12, 12) and batch.support_x.dtype == torch.float32
    assert batch.query_y.tolist() == [[0, 0, 1, 1, 2, 2, 3, 3, 4, 4]] * 3
    assert data.describe()["val_classes"] == 5 and data.describe()["channels"] == 1
    expected = ImageFormat(12, 1).decode_file(sorted((tmp_path / "data").rglob("class000/*"))[0])
    assert torch.equal(data.tasks["train"].images[0], torch.tensor(expected))


def test_the_decoded_table_is_cached_and_reused(tmp_path, monkeypatch):
    make_image_folder(tmp_path / "data")
    first = ImageFolderDataModule(
        str(tmp_path / "data"), image_size=10, cache_dir=str(tmp_path / "cache"), **SMALL
    )
    assert len(list((tmp_path / "cache").glob("images-10px-3ch-*.pt"))) == 1

    def never(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(image_datasets, "_decode_classes", never)
    monkeypatch.setattr(ImageFormat, "decode", never)
    again = ImageFolderDataModule(
        str(tmp_path / "data"), image_size=10, cache_dir=str(tmp_path / "cache"), **SMALL
    )
    assert torch.equal(first.tasks["test"].images, again.tasks["test"].images)
    monkeypatch.undo()
    (tmp_path / "data" / "test" / "class015" / "0.png").unlink()  # the data changed: decoded again
    changed = ImageFolderDataModule(
        str(tmp_path / "data"), image_size=10, cache_dir=str(tmp_path / "cache"), **SMALL
    )
    assert changed.tasks["test"].counts.tolist() == [6, 6, 6, 6, 5]
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1  # replaced, not piled up


def test_the_mini_imagenet_jpegs_are_decoded_once(tmp_path, monkeypatch):
    make_miniimagenet_csv(tmp_path / "mini")
    first = MiniImageNetDataModule(str(tmp_path / "mini"), **SMALL)
    assert len(list((tmp_path / "mini").glob("mini-imagenet-84px-*.pt"))) == 1

    def never(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(ImageFormat, "decode", never)
    again = MiniImageNetDataModule(str(tmp_path / "mini"), **SMALL)
    assert torch.equal(first.tasks["train"].images, again.tasks["train"].images)


def test_the_cache_survives_damage_and_read_only_folders(tmp_path):
    builds = []

    def build():
        builds.append(1)
        return {"table": torch.arange(4)}

    path = tmp_path / "table.pt"
    assert torch.equal(cached(path, "k", build)["table"], torch.arange(4)) and path.is_file()
    cached(path, "k", build)
    assert len(builds) == 1
    path.write_bytes(b"half a file")  # an unreadable cache is rebuilt, never trusted
    assert torch.equal(cached(path, "k", build)["table"], torch.arange(4)) and len(builds) == 2
    cached(path, "another source", build)
    assert len(builds) == 3 and torch.load(path, weights_only=True)["key"] == "another source"
    (tmp_path / "a-file").write_text("")  # a cache folder that cannot be made: decode every time
    assert torch.equal(cached(tmp_path / "a-file" / "table.pt", "k", build)["table"], torch.arange(4))


@pytest.mark.parametrize("builder", [make_miniimagenet_pickles, make_miniimagenet_csv])
def test_mini_imagenet_in_either_layout(builder, tmp_path):
    builder(tmp_path / "mini")
    data = MiniImageNetDataModule(str(tmp_path / "mini"), **SMALL)
    assert [data.tasks[s].num_classes for s in ("train", "val", "test")] == [6, 5, 5]
    batch = next(iter(data.train_dataloader()))
    assert batch.support_x.shape == (3, 5, 3, 84, 84)
    assert data.describe()["layout"] == ("learn2learn pickles" if builder is make_miniimagenet_pickles else
                                         "Ravi & Larochelle csv")  # fmt: skip


def test_both_mini_imagenet_layouts_hold_the_same_images(tmp_path):
    names = make_miniimagenet_pickles(tmp_path / "pickles")
    assert make_miniimagenet_csv(tmp_path / "csv") == names
    with open(tmp_path / "pickles" / "mini-imagenet-cache-train.pkl", "rb") as file:
        stored = pickle.load(file)
    pickles = MiniImageNetDataModule(str(tmp_path / "pickles"), **SMALL)
    first = stored["class_dict"]["n00000000"]
    assert torch.equal(  # the pickles' pixels as they are, channels first
        pickles.tasks["train"].images[0], torch.from_numpy(stored["image_data"][first[0]]).permute(2, 0, 1)
    )
    jpegs = MiniImageNetDataModule(str(tmp_path / "csv"), **SMALL)
    assert jpegs.class_names == pickles.class_names == names
    for split in ("train", "val", "test"):
        ours, theirs = jpegs.tasks[split], pickles.tasks[split]
        assert torch.equal(ours.counts, theirs.counts) and ours.images.shape == theirs.images.shape
        # the same images, as (lossy) JPEGs: each is nearest to an image of its own class in the pickles
        nearest = torch.cdist(ours.images.flatten(1).float(), theirs.images.flatten(1).float()).argmin(1)
        classes = torch.arange(len(theirs.counts)).repeat_interleave(theirs.counts)
        assert torch.equal(classes[nearest], classes)


def test_the_shipped_cifar_splits_are_the_published_ones(tmp_path):
    cifarfs, fc100 = published_split("cifarfs"), published_split("fc100")
    assert [len(cifarfs[s]) for s in ("train", "val", "test")] == [64, 16, 20]
    assert [len(fc100[s]) for s in ("train", "val", "test")] == [12, 4, 4]
    for split in (cifarfs, fc100):  # disjoint, no name twice
        names = [name for s in ("train", "val", "test") for name in split[s]]
        assert len(names) == len(set(names))
    fine = {name for names in CIFAR100_SUPERCLASSES.values() for name in names.split()}
    assert set().union(*cifarfs.values()) == fine and set().union(*fc100.values()) == set(
        CIFAR100_SUPERCLASSES
    )
    assert {"whale", "poppy", "woman", "rocket"} <= set(cifarfs["test"])
    assert set(fc100["test"]) == {"aquatic_mammals", "insects", "medium_mammals", "people"}
    make_cifar100(tmp_path / "cifar", images_per_class=4)
    data = CIFARFSDataModule(str(tmp_path / "cifar"), **SMALL)
    assert data.class_names["test"] == sorted(cifarfs["test"])
    superclasses = FC100DataModule(str(tmp_path / "cifar"), shots=1, **SMALL)
    held_out = {fine for s in fc100["test"] for fine in CIFAR100_SUPERCLASSES[s].split()}
    assert set(superclasses.class_names["test"]) == held_out and len(held_out) == 20
    assert [superclasses.tasks[s].num_classes for s in ("train", "val", "test")] == [60, 20, 20]
    assert superclasses.tasks["train"].image_shape == (3, 32, 32)
    assert superclasses.tasks["train"].counts.tolist() == [4] * 60  # CIFAR's train and test parts together


def test_cifar_from_the_archive_or_its_extracted_folder(tmp_path):
    fine_names = make_cifar100(tmp_path / "cifar")
    batch = next(iter(CIFARFSDataModule(str(tmp_path / "cifar"), **SMALL).train_dataloader()))
    (tmp_path / "packed").mkdir()
    with tarfile.open(tmp_path / "packed" / "cifar-100-python.tar.gz", "w:gz") as bundle:
        bundle.add(tmp_path / "cifar" / "cifar-100-python", arcname="cifar-100-python")
    packed = CIFARFSDataModule(str(tmp_path / "packed"), **SMALL)
    inside = CIFARFSDataModule(str(tmp_path / "cifar" / "cifar-100-python"), **SMALL)
    for other in (packed, inside):
        again = next(iter(other.train_dataloader()))
        assert torch.equal(batch.support_x, again.support_x) and torch.equal(batch.query_x, again.query_x)
    # pixels: CIFAR's rows are the R, G and B planes of a 32×32 image
    with open(tmp_path / "cifar" / "cifar-100-python" / "test", "rb") as file:
        part = pickle.load(file)
    first = part["fine_labels"].index(fine_names.index("whale"))
    whale, table = packed.class_names["test"].index("whale"), packed.tasks["test"]
    last = table.offsets[whale] + table.counts[whale] - 1  # the train part first, then the test part
    assert torch.equal(table.images[last], torch.from_numpy(part["data"][first].reshape(3, 32, 32)))


def test_formats_for_new_images_need_no_data():
    assert OmniglotDataModule.image_format({}) == ImageFormat(28, 1, invert=True)
    assert MiniImageNetDataModule.image_format({}) == ImageFormat(84, 3)
    assert CIFARFSDataModule.image_format({}) == FC100DataModule.image_format({}) == ImageFormat(32, 3)
    assert ImageFolderDataModule.image_format({"image_size": 50, "channels": 1}) == ImageFormat(50, 1)


def test_bad_data_is_one_sentence_naming_the_files(tmp_path):
    refused("image folder .* does not exist", lambda: ImageFolderDataModule(str(tmp_path / "absent")))
    (tmp_path / "bare").mkdir()
    refused("has no train, val, test folder", lambda: ImageFolderDataModule(str(tmp_path / "bare")))
    make_image_folder(tmp_path / "data", images_per_class=3)
    broken = sorted((tmp_path / "data" / "val").rglob("*.png"))[0]
    broken.write_bytes(b"not an image")
    refused(
        f"{broken} is not a readable image", lambda: ImageFolderDataModule(str(tmp_path / "data"), **SMALL)
    )
    make_image_folder(tmp_path / "few", images_per_class=3)
    refused("shots \\+ queries = 4 is more than the 3 images",
            lambda: ImageFolderDataModule(str(tmp_path / "few"), shots=2, queries=2))  # fmt: skip
    make_image_folder(tmp_path / "lists", layout="lists")
    (tmp_path / "lists" / "val.txt").write_text("class000\nmissing\n")
    lists = {split: f"{split}.txt" for split in ("train", "val", "test")}
    refused(
        "val.txt names missing", lambda: ImageFolderDataModule(str(tmp_path / "lists"), class_lists=lists)
    )
    refused("no mini-ImageNet in .*mini-imagenet-cache-train.pkl.*images/ folder with train.csv",
            lambda: MiniImageNetDataModule(str(tmp_path)))  # fmt: skip
    make_miniimagenet_pickles(tmp_path / "mini")
    (tmp_path / "mini" / "mini-imagenet-cache-test.pkl").write_bytes(b"garbage")
    refused("mini-imagenet-cache-test.pkl is not a readable mini-ImageNet pickle",
            lambda: MiniImageNetDataModule(str(tmp_path / "mini")))  # fmt: skip
    refused("no CIFAR-100 in .*cifar-100-python.tar.gz", lambda: CIFARFSDataModule(str(tmp_path)))
    few = str(tmp_path / "few")
    refused("train_ways=40 is more than the 6 classes", lambda: ImageFolderDataModule(few, train_ways=40))


def refused(message, build):
    with pytest.raises(ConfigError, match=message) as error:
        build()
    assert "\n" not in str(error.value)  # one sentence


def test_a_class_with_too_few_images_is_named_with_its_split(tmp_path):
    make_image_folder(tmp_path / "data")
    for extra in (3, 4, 5):  # class017 of the test split keeps 3 of its 6 images
        (tmp_path / "data" / "test" / "class014" / f"{extra}.png").unlink()
    root = str(tmp_path / "data")
    refused("shots \\+ queries = 4 is more than the 3 images of class class014 of the test split",
            lambda: ImageFolderDataModule(root, image_size=8, shots=2, queries=2))  # fmt: skip
    refused("train_shots \\+ queries = 7 is more than the 6 images of class class000 of the train split",
            lambda: ImageFolderDataModule(root, image_size=8, train_shots=5, queries=2))  # fmt: skip
    data = ImageFolderDataModule(root, image_size=8, shots=1, queries=2, meta_batch_size=2)
    refused("shots \\+ queries = 5 is more than the 3 images of class class014 of the test split",
            lambda: data.eval_tasks("test", 2, 2, shots=3))  # fmt: skip


def test_every_kind_of_bad_folder_is_one_sentence(tmp_path):
    make_image_folder(tmp_path / "data")
    shutil.rmtree(tmp_path / "data" / "test")
    refused(r"data has no test folder: lay the images out as .*<train\|val\|test>/<class>/<image>",
            lambda: ImageFolderDataModule(str(tmp_path / "data")))  # fmt: skip
    (tmp_path / "data" / "test" / "empty").mkdir(parents=True)
    refused(
        "class folder .*empty holds no PNG or JPEG images",
        lambda: ImageFolderDataModule(str(tmp_path / "data")),
    )
    shutil.copytree(tmp_path / "data" / "val" / "class006", tmp_path / "data" / "test" / "class006")
    shutil.rmtree(tmp_path / "data" / "test" / "empty")
    refused("classes class006 are in both the val and test splits",
            lambda: ImageFolderDataModule(str(tmp_path / "data"), image_size=8, **SMALL))  # fmt: skip
    make_image_folder(tmp_path / "lists", layout="lists")
    lists = {split: f"{split}.txt" for split in ("train", "val", "test")}
    only_train = {"train": "train.txt"}
    refused("class_lists must name train, val and test",
            lambda: ImageFolderDataModule(str(tmp_path / "lists"), class_lists=only_train))  # fmt: skip
    (tmp_path / "lists" / "test.txt").unlink()
    refused("the test class list .*test.txt does not exist",
            lambda: ImageFolderDataModule(str(tmp_path / "lists"), class_lists=lists))  # fmt: skip
    (tmp_path / "lists" / "test.txt").write_text("class011\nclass012\nclass011\n")
    refused("test.txt names class011 more than once",
            lambda: ImageFolderDataModule(str(tmp_path / "lists"), class_lists=lists))  # fmt: skip
    (tmp_path / "lists" / "test.txt").write_text("class011\nclass012\nclass013\n")
    broken = tmp_path / "lists" / "class012" / "2.jpg"
    broken.write_bytes(broken.read_bytes()[:200])  # a truncated JPEG
    refused(f"{broken} is not a readable image",
            lambda: ImageFolderDataModule(str(tmp_path / "lists"), class_lists=lists, **SMALL))  # fmt: skip


def test_every_kind_of_bad_mini_imagenet_is_one_sentence(tmp_path):
    make_miniimagenet_csv(tmp_path / "csv")
    (tmp_path / "csv" / "test.csv").unlink()
    pickles = ", ".join(f"mini-imagenet-cache-{part}.pkl" for part in ("train", "validation", "test"))
    refused(rf"no mini-ImageNet in .*csv \(test.csv missing\): put learn2learn's {pickles} there, "
            r"or Ravi & Larochelle's images/ folder with train.csv, val.csv, test.csv",
            lambda: MiniImageNetDataModule(str(tmp_path / "csv")))  # fmt: skip
    refused("no mini-ImageNet in .*absent, which does not exist",
            lambda: MiniImageNetDataModule(str(tmp_path / "absent")))  # fmt: skip
    (tmp_path / "csv" / "test.csv").write_text("file,class\nx.jpg,n1\n")
    refused("test.csv must start with the header 'filename,label'",
            lambda: MiniImageNetDataModule(str(tmp_path / "csv")))  # fmt: skip
    (tmp_path / "csv" / "test.csv").write_text("filename,label\nnowhere.jpg,n00000099\n")
    refused("test.csv lists nowhere.jpg, which is not in .*images",
            lambda: MiniImageNetDataModule(str(tmp_path / "csv")))  # fmt: skip
    make_miniimagenet_csv(tmp_path / "corrupt")
    broken = tmp_path / "corrupt" / "images" / "n0000000700000003.jpg"
    broken.write_bytes(b"\xff\xd8 not really a JPEG")
    refused(f"{broken} is not a readable image", lambda: MiniImageNetDataModule(str(tmp_path / "corrupt")))
    make_miniimagenet_pickles(tmp_path / "pickles")
    path = tmp_path / "pickles" / "mini-imagenet-cache-validation.pkl"
    with open(path, "rb") as file:
        content = pickle.load(file)
    content["class_dict"]["n00000006"] = [0, 1, 999]
    with open(path, "wb") as file:
        pickle.dump(content, file)
    refused("mini-imagenet-cache-validation.pkl is damaged: class n00000006 names rows outside its 30 images",
            lambda: MiniImageNetDataModule(str(tmp_path / "pickles")))  # fmt: skip
    with open(path, "wb") as file:
        pickle.dump({"images": content["image_data"]}, file)
    refused("mini-imagenet-cache-validation.pkl is not a readable mini-ImageNet pickle",
            lambda: MiniImageNetDataModule(str(tmp_path / "pickles")))  # fmt: skip


def test_every_kind_of_bad_cifar_is_one_sentence(tmp_path):
    refused(r"no CIFAR-100 in .*: put torchvision's cifar-100-python.tar.gz there, or its extracted "
            r"cifar-100-python/ folder \(train, test and meta\)",
            lambda: FC100DataModule(str(tmp_path)))  # fmt: skip
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"not a tar file")
    refused("the CIFAR-100 files in .*cifar-100-python.tar.gz cannot be read",
            lambda: CIFARFSDataModule(str(tmp_path)))  # fmt: skip
    make_cifar100(tmp_path / "other")
    with open(tmp_path / "other" / "cifar-100-python" / "meta", "wb") as file:
        pickle.dump({"fine_label_names": [f"thing{i}" for i in range(100)], "coarse_label_names": []}, file)
    refused("CIFAR-100 has no class apple, .*: is .*other CIFAR-100?",
            lambda: CIFARFSDataModule(str(tmp_path / "other")))  # fmt: skip


def test_same_seed_same_tasks(tmp_path):
    make_image_folder(tmp_path / "data")
    first, second = (ImageFolderDataModule(str(tmp_path / "data"), image_size=8, **SMALL) for _ in range(2))
    a, b = next(iter(first.train_dataloader())), next(iter(second.train_dataloader()))
    assert torch.equal(a.support_x, b.support_x) and np.array_equal(a.info["classes"], b.info["classes"])
