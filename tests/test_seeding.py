"""Every seed derivation lit-meta uses against NumPy's ``SeedSequence`` written out here, the reference
the former per-module derivations computed; distinct names give distinct seeds."""

import itertools

import numpy as np
import pytest
import torch

from lit_meta.datamodules import TaskStream
from lit_meta.envs.trials import trial_rngs
from lit_meta.seeding import (
    derive_generator,
    derive_seed,
    derive_seeds,
    draw_seeds,
    meta_step_seed,
    seeded_torch,
    spawn,
    stream_generator,
)
from lit_meta.tasks import TASK_SEED, TaskBatch

SEEDS = [0, 1, 7, 12345, 2**31 - 1, 2**32 - 1]
NAMES = ["train", "val", "test", "revisits", "random-init", "evaluation-val-3", "épisode"]


def reference_seed(seed: int, name: str) -> int:
    """The seed of a named stream: the first 32-bit word of ``SeedSequence([seed, *utf8(name)])``."""
    return int(np.random.SeedSequence([seed, *name.encode()]).generate_state(1)[0])


@pytest.mark.parametrize("seed", SEEDS)
def test_a_named_stream_seed_is_the_seed_sequence_of_the_seed_and_the_names_bytes(seed):
    for name in NAMES:
        assert derive_seed(seed, name) == reference_seed(seed, name)
        reference = np.random.default_rng(reference_seed(seed, name))
        assert derive_generator(seed, name).random() == reference.random()


@pytest.mark.parametrize("seed", SEEDS)
def test_meta_step_seeds_are_31_bit_seed_sequence_words(seed):
    for purpose, meta_step, index in itertools.product(("task", "learner", "trial"), (0, 3, 1000), (0, 5)):
        entropy = [seed, *purpose.encode(), meta_step, index]
        expected = int(np.random.SeedSequence(entropy).generate_state(1)[0] % 2**31)
        assert derive_seed(seed, purpose, meta_step, index, bits=31) == expected
        assert meta_step_seed(seed, purpose, meta_step, index) == expected < 2**31


@pytest.mark.parametrize("seed", SEEDS)
def test_a_batchs_task_seeds_are_the_seed_sequence_of_the_seed_and_the_batch_index(seed):
    for batches_drawn, count in ((0, 1), (4, 8), (99, 3)):
        expected = np.random.SeedSequence([seed, batches_drawn]).generate_state(count)
        np.testing.assert_array_equal(derive_seeds(seed, batches_drawn, count=count), expected)


def test_the_task_stream_stamps_each_task_with_its_derived_seed():
    def sample(count: int, generator: torch.Generator) -> TaskBatch:
        return TaskBatch(torch.zeros(count, 1), torch.zeros(count), torch.zeros(count, 1), torch.zeros(count))

    stream = TaskStream(sample, batch_size=3, seed=11, epoch_length=2)
    for drawn, batch in enumerate(stream):
        expected = np.random.SeedSequence([11, drawn]).generate_state(3).astype(np.int64)
        np.testing.assert_array_equal(batch.info[TASK_SEED].numpy(), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_fixed_list_of_task_seeds_is_drawn_from_the_named_streams_generator(seed):
    expected = np.random.default_rng(reference_seed(seed, "train")).integers(2**31, size=6)
    assert draw_seeds(seed, "train", count=6) == [int(value) for value in expected]


@pytest.mark.parametrize("seed", [0, 5, 2**31 - 1])
def test_a_trials_two_streams_are_the_seed_sequences_children(seed):
    children = np.random.SeedSequence(seed).spawn(2)
    ours = spawn(seed, count=2)
    for mine, reference in zip(ours, children, strict=True):
        np.testing.assert_array_equal(mine.generate_state(4), reference.generate_state(4))
    env_seeds, noise = trial_rngs([seed, seed + 1])
    assert env_seeds[0] == int(children[0].generate_state(1)[0])
    assert noise[0].random() == np.random.default_rng(children[1]).random()
    assert env_seeds[1] != env_seeds[0]


def test_different_names_give_different_seeds():
    named = [derive_seed(seed, name) for seed in SEEDS for name in NAMES]
    assert len(set(named)) == len(named)
    per_step = [
        derive_seed(3, purpose, step, index, bits=31)
        for purpose in ("task", "learner") for step in range(20) for index in range(10)
    ]  # fmt: skip
    assert len(set(per_step)) == len(per_step)
    assert derive_seed(0, 1) != derive_seed(0, "1")  # a number is itself, a string its bytes
    assert derive_seed(0, "train") != derive_seed(1, "train")
    batches = [int(s) for batch in range(2) for s in derive_seeds(0, batch, count=50)]
    assert len(set(batches)) == 100


def test_a_stream_generator_is_numpys_generator_on_the_names_seed_sequence():
    expected = np.random.default_rng(np.random.SeedSequence([12345, 1])).uniform(size=4)
    assert np.array_equal(stream_generator(12345, 1).uniform(size=4), expected)
    assert not np.array_equal(stream_generator(12345, 2).uniform(size=4), expected)


def test_seeded_torch_draws_from_the_seed_and_leaves_the_global_generator_alone():
    torch.manual_seed(3)
    expected_after = torch.rand(2)
    torch.manual_seed(3)
    with seeded_torch(11):
        inside = torch.rand(2)
    assert torch.equal(inside, torch.rand(2, generator=torch.Generator().manual_seed(11)))
    assert torch.equal(torch.rand(2), expected_after)
