"""Omniglot tasks: the sampler's guarantees, the splits, the decoding, and learn2learn's task pipeline."""

import io
import shutil
import zipfile

import learn2learn as l2l
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from lit_meta.datamodules import ClassificationTasks, OmniglotDataModule
from lit_meta.datamodules.omniglot import class_table, split_characters
from lit_meta.errors import ConfigError

from ..conftest import OMNIGLOT_ROOT, requires_omniglot


def coded_table(classes: int, per_class: int = 20) -> torch.Tensor:
    """A table whose every image says where it came from: pixel 0 = class, pixel 1 = example."""
    table = torch.zeros(classes, per_class, 4, 4, dtype=torch.uint8)
    table[:, :, 0, 0] = torch.arange(classes, dtype=torch.uint8)[:, None]
    table[:, :, 0, 1] = torch.arange(per_class, dtype=torch.uint8)[None, :]
    return table


def origins(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(class, example) of each image of a coded table, from ``[..., 1, 4, 4]`` floats."""
    codes = (images[..., 0, 0, :2] * 255).round().long()
    return codes[..., 0], codes[..., 1]


def test_sampled_tasks_have_n_distinct_classes_and_disjoint_k_plus_q_images():
    sampler = ClassificationTasks(coded_table(30), ways=5, split="train")
    tasks = sampler.sample(50, torch.Generator().manual_seed(0), shots=2, queries=3)
    assert tasks.support_x.shape == (50, 10, 1, 4, 4) and tasks.query_x.shape == (50, 15, 1, 4, 4)
    assert torch.equal(tasks.support_y, torch.arange(5).repeat_interleave(2).expand(50, -1))
    assert torch.equal(tasks.query_y, torch.arange(5).repeat_interleave(3).expand(50, -1))
    support_class, support_example = origins(tasks.support_x)
    query_class, query_example = origins(tasks.query_x)
    for t in range(50):
        classes = tasks.info["classes"][t]
        assert len(set(classes.tolist())) == 5  # N distinct classes
        # every image of label k comes from the task's k-th class
        assert torch.equal(support_class[t], classes[tasks.support_y[t]])
        assert torch.equal(query_class[t], classes[tasks.query_y[t]])
        for label in range(5):
            drawn = support_example[t][tasks.support_y[t] == label].tolist()
            held = query_example[t][tasks.query_y[t] == label].tolist()
            assert len(set(drawn + held)) == 5  # K + Q distinct images, support and query disjoint


def test_every_class_and_image_is_drawn_uniformly():
    sampler = ClassificationTasks(coded_table(10), ways=2, split="train")
    tasks = sampler.sample(4000, torch.Generator().manual_seed(1), shots=1, queries=1)
    class_counts = torch.bincount(tasks.info["classes"].flatten(), minlength=10).float()
    assert (class_counts / class_counts.sum() - 0.1).abs().max() < 0.015  # 8,000 draws, sd ~0.003
    _, example = origins(tasks.support_x)
    example_counts = torch.bincount(example.flatten(), minlength=20).float()
    assert (example_counts / example_counts.sum() - 0.05).abs().max() < 0.015


def test_same_seed_same_tasks_other_seed_other_tasks():
    sampler = ClassificationTasks(coded_table(30), ways=5, split="train")
    first = sampler.sample(8, torch.Generator().manual_seed(3), shots=1, queries=2)
    again = sampler.sample(8, torch.Generator().manual_seed(3), shots=1, queries=2)
    other = sampler.sample(8, torch.Generator().manual_seed(4), shots=1, queries=2)
    assert torch.equal(first.support_x, again.support_x) and torch.equal(first.query_x, again.query_x)
    assert not torch.equal(first.info["classes"], other.info["classes"])


def test_rotations_make_four_classes_per_character():
    characters = torch.randint(0, 256, (3, 20, 5, 5), dtype=torch.uint8)
    table = class_table(characters, rotations=True)
    assert table.shape == (12, 20, 5, 5)
    for k in range(4):
        assert torch.equal(table[3 * k : 3 * (k + 1)], torch.rot90(characters, k, dims=(-2, -1)))
    assert torch.equal(class_table(characters, rotations=False), characters)


def test_sampler_refuses_impossible_tasks():
    sampler = ClassificationTasks(coded_table(4), ways=3, split="val")
    with pytest.raises(ConfigError, match="shots \\+ queries = 21 is more than the 20 images"):
        sampler.check_shots(6, 15)
    with pytest.raises(ConfigError, match="ways=5 is more than the 4 classes of the val split"):
        ClassificationTasks(coded_table(4), ways=5, split="val")
    with pytest.raises(ConfigError, match="ways must be at least 2"):
        ClassificationTasks(coded_table(4), ways=1, split="val")


def test_alphabet_splits_are_disjoint_and_validated():
    alphabets = ["A"] * 3 + ["B"] * 2 + ["C"] * 4 + ["D"] * 1
    splits = split_characters(alphabets, "small", ["B"], ["C", "D"])
    assert splits["train"].tolist() == [0, 1, 2]
    assert splits["val"].tolist() == [3, 4] and splits["test"].tolist() == [5, 6, 7, 8, 9]
    with pytest.raises(ConfigError, match="test_alphabets names Klingon, not in this Omniglot subset"):
        split_characters(alphabets, "small", ["B"], ["Klingon"])
    with pytest.raises(ConfigError, match="in both val_alphabets and test_alphabets"):
        split_characters(alphabets, "small", ["B"], ["B"])
    with pytest.raises(ConfigError, match="nothing is left for meta-training"):
        split_characters(alphabets, "small", ["A", "B"], ["C", "D"])


def test_full_set_is_split_by_character_position_as_the_maml_protocol():
    splits = split_characters(["x"] * 1623, "full", None, None)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [1100, 100, 423]
    assert splits["val"][0] == 1100 and splits["test"][0] == 1200


@requires_omniglot
def test_small_subset_keeps_meta_test_alphabets_out_of_meta_training(omniglot):
    description = omniglot.describe()
    assert description["subset"] == "small"
    train, val, test = (set(description[f"{s}_alphabets"]) for s in ("train", "val", "test"))
    assert train.isdisjoint(test) and train.isdisjoint(val) and val.isdisjoint(test)
    assert train == {"Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"}
    # 242 distinct characters (Greek and Latin are in both zips and read once), 4 rotations each
    assert sum(description[f"{s}_classes"] for s in ("train", "val", "test")) == 4 * 242
    # no drawing of a meta-test class appears among the meta-training classes
    train_images = {bytes(row.numpy()) for row in omniglot.tasks["train"].images.flatten(0, 1).flatten(1)}
    test_images = omniglot.tasks["test"].images.flatten(0, 1).flatten(1)
    assert not any(bytes(row.numpy()) in train_images for row in test_images)


@requires_omniglot
def test_decoding_matches_learn2learns_omniglot_transform(omniglot):
    """learn2learn's Omniglot benchmark: Resize(28, LANCZOS), ToTensor, 1 - x, from the PNG itself."""
    transform = T.Compose(
        [T.Resize(28, interpolation=T.InterpolationMode.LANCZOS), T.ToTensor(), lambda x: 1 - x]
    )
    with zipfile.ZipFile(OMNIGLOT_ROOT / "images_background_small1.zip") as bundle:
        prefix = "images_background_small1/Balinese/character01/"
        names = sorted(n for n in bundle.namelist() if n.startswith(prefix) and n.endswith(".png"))
        reference = torch.stack(
            [transform(Image.open(io.BytesIO(bundle.read(n))).convert("L")) for n in names]
        )
    ours = omniglot.tasks["train"].images[0].float() / 255  # Balinese character01, unrotated
    assert reference.shape == (20, 1, 28, 28)
    assert (ours - reference[:, 0]).abs().max() <= 1 / 255 + 1e-6


@requires_omniglot
def test_tasks_have_the_structure_of_learn2learns_task_pipeline(omniglot):
    """The same classes through learn2learn's NWays/KShots/LoadData/RemapLabels/ConsecutiveLabels."""
    table = omniglot.tasks["test"].images[:40]
    dataset = torch.utils.data.TensorDataset(
        table.flatten(0, 1).unsqueeze(1).float() / 255, torch.arange(40).repeat_interleave(20)
    )
    meta = l2l.data.MetaDataset(dataset)
    transforms = [
        l2l.data.transforms.NWays(meta, 5),
        l2l.data.transforms.KShots(meta, 1 + 3),
        l2l.data.transforms.LoadData(meta),
        l2l.data.transforms.RemapLabels(meta),
        l2l.data.transforms.ConsecutiveLabels(meta),
    ]
    reference_x, reference_y = l2l.data.TaskDataset(meta, transforms, num_tasks=10).sample()
    sampler = ClassificationTasks(table, ways=5, split="test")
    ours = sampler.sample(1, torch.Generator().manual_seed(0), shots=1, queries=3)
    ours_x = torch.cat([ours.support_x[0], ours.query_x[0]])
    ours_y = torch.cat([ours.support_y[0], ours.query_y[0]])
    assert ours_x.shape == reference_x.shape and ours_x.dtype == reference_x.dtype
    assert sorted(ours_y.tolist()) == sorted(reference_y.tolist())  # labels 0..N-1, K + Q of each
    for labels in (ours.support_y[0], ours.query_y[0], reference_y):  # each label in one consecutive block
        changes = (labels[1:] != labels[:-1]).sum().item()
        assert changes == len(set(labels.tolist())) - 1
    assert ours_x.min() >= 0 and ours_x.max() <= 1 and reference_x.min() >= 0 and reference_x.max() <= 1


@requires_omniglot
def test_stream_state_round_trip_resumes_the_same_tasks(omniglot):
    stream = omniglot.train_dataloader()
    iterator = iter(stream)
    next(iterator)
    state = {
        key: value.clone() if torch.is_tensor(value) else value for key, value in stream.state_dict().items()
    }
    expected = [next(iterator) for _ in range(2)]
    stream.load_state_dict(state)
    resumed = iter(stream)
    for batch in expected:
        again = next(resumed)
        assert torch.equal(again.support_x, batch.support_x) and torch.equal(again.query_x, batch.query_x)


@requires_omniglot
def test_the_decoded_cache_is_reused_and_a_stale_one_rebuilt(omniglot_cache):
    cache = next(omniglot_cache.glob("omniglot-small-28px.pt"))
    first = cache.stat().st_mtime_ns
    OmniglotDataModule(root=str(OMNIGLOT_ROOT), cache_dir=str(omniglot_cache))
    assert cache.stat().st_mtime_ns == first  # read, not rewritten
    stale = torch.load(cache, weights_only=True)
    stale["key"] = "another source"
    torch.save(stale, cache)
    rebuilt = OmniglotDataModule(root=str(OMNIGLOT_ROOT), cache_dir=str(omniglot_cache))
    assert torch.load(cache, weights_only=True)["key"] != "another source"
    assert rebuilt.describe()["train_classes"] == 544


@requires_omniglot
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ways": 69}, "ways=69 is more than the 68 classes of the val split"),
        ({"ways": 20, "rotations": False}, "ways=20 is more than the 17 classes of the val split"),
        ({"shots": 6, "queries": 15}, "shots \\+ queries = 21 is more than the 20 images"),
        ({"train_shots": 10, "queries": 15}, "train_shots \\+ queries = 25 is more than the 20 images"),
        (
            {"test_alphabets": ["Klingon"], "val_alphabets": ["Tagalog"]},
            "Klingon, not in this Omniglot subset",
        ),
        ({"subset": "full"}, "no Omniglot data in .*: put images_background.zip and images_evaluation.zip"),
    ],
)
def test_bad_settings_are_refused_in_one_sentence(settings, message, omniglot_cache):
    with pytest.raises(ConfigError, match=message):
        OmniglotDataModule(root=str(OMNIGLOT_ROOT), cache_dir=str(omniglot_cache), **settings)


def test_a_root_without_omniglot_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"no Omniglot data in .*or pass --data\.download true"):
        OmniglotDataModule(root=str(tmp_path))
    with pytest.raises(ConfigError, match="does not exist"):
        OmniglotDataModule(root=str(tmp_path / "missing"))


@requires_omniglot
def test_a_corrupted_zip_is_refused_and_left_alone(tmp_path):
    for name in ("images_background_small1.zip", "images_background_small2.zip"):
        shutil.copy(OMNIGLOT_ROOT / name, tmp_path / name)
    damaged = tmp_path / "images_background_small2.zip"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=r"images_background_small2\.zip is corrupt: its md5 is"):
        OmniglotDataModule(root=str(tmp_path))
    assert damaged.read_bytes() == bytes(data)
    assert not list(tmp_path.glob("*.pt"))
