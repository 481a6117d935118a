"""Sine task sampling and the seeded, resumable task streams."""

import math

import pytest
import torch

from lit_meta.datamodules import SineDataModule, SineTasks, TaskStream
from lit_meta.errors import ConfigError


def test_tasks_follow_their_definition():
    tasks = SineTasks(amplitude_range=(0.1, 5.0), phase_range=(0.0, math.pi)).sample(
        500, torch.Generator().manual_seed(0), shots=10, queries=7
    )
    assert tasks.support_x.shape == (500, 10, 1) and tasks.query_x.shape == (500, 7, 1)
    amplitude, phase = tasks.info["amplitude"], tasks.info["phase"]
    assert amplitude.min() >= 0.1 and amplitude.max() <= 5.0
    assert phase.min() >= 0.0 and phase.max() <= math.pi
    assert tasks.support_x.min() >= -5.0 and tasks.query_x.max() <= 5.0
    # y = A sin(x + φ), checked point by point in float64
    x = tasks.query_x.double()
    expected = amplitude.double()[:, None, None] * torch.sin(x + phase.double()[:, None, None])
    torch.testing.assert_close(tasks.query_y.double(), expected, atol=1e-5, rtol=1e-5)


def test_the_stream_resumes_exactly_where_its_state_was_taken():
    tasks = SineTasks()

    def sample(n, generator):
        return tasks.sample(n, generator, shots=5, queries=5)

    uninterrupted = [b.support_y for b in TaskStream(sample, batch_size=4, seed=1, epoch_length=6)]
    first = TaskStream(sample, batch_size=4, seed=1, epoch_length=6)
    iterator = iter(first)
    head = [next(iterator).support_y for _ in range(2)]
    resumed = TaskStream(sample, batch_size=4, seed=123, epoch_length=6)
    resumed.load_state_dict(first.state_dict())
    tail = [b.support_y for b in resumed][:4]
    assert all(torch.equal(a, b) for a, b in zip(uninterrupted, head + tail, strict=True))
    assert first.state_dict()["batches_drawn"] == 2


def test_validation_tasks_are_fixed_and_distinct_from_training_and_test():
    datamodule = SineDataModule(val_tasks=30, test_tasks=30, eval_batch_size=8, seed=3)
    val_once = list(datamodule.val_dataloader())
    val_again = list(datamodule.val_dataloader())
    assert [len(b) for b in val_once] == [8, 8, 8, 6]
    assert all(torch.equal(a.support_x, b.support_x) for a, b in zip(val_once, val_again, strict=True))
    test = next(iter(datamodule.test_dataloader()))
    train = next(iter(datamodule.train_dataloader()))
    assert not torch.equal(val_once[0].info["amplitude"], test.info["amplitude"])
    assert not torch.equal(val_once[0].info["amplitude"][:1], train.info["amplitude"][:1])


def test_train_and_eval_support_sizes_can_differ():
    datamodule = SineDataModule(shots=10, train_shots=50, queries=20, meta_batch_size=2)
    train = next(iter(datamodule.train_dataloader()))
    val = next(iter(datamodule.val_dataloader()))
    assert train.support_x.shape == (2, 50, 1) and val.support_x.shape[1] == 10


def test_the_seed_changes_the_tasks():
    a = next(iter(SineDataModule(seed=0).train_dataloader()))
    b = next(iter(SineDataModule(seed=1).train_dataloader()))
    assert not torch.equal(a.support_x, b.support_x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shots": 0}, "shots must be positive"),
        ({"queries": -1}, "queries must be positive"),
        ({"meta_batch_size": 0}, "meta_batch_size must be positive"),
        ({"amplitude_range": (5.0, 0.1)}, "amplitude_range must be an increasing pair"),
        ({"val_tasks": 0}, "val_tasks must be positive"),
    ],
)
def test_bad_values_are_refused_in_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SineDataModule(**kwargs)
