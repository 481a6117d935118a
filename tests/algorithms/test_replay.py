"""Per-task replay: a task's batch holds only its own transitions, batches of transitions are added at
once, the state survives ``torch.load(weights_only=True)`` and bad input is refused."""

import io

import numpy as np
import pytest
import torch

from lit_meta.algorithms.replay import BATCH_KEYS, TaskReplayBuffers
from lit_meta.errors import ConfigError

OBS, ACT = 3, 2


def fill(buffers: TaskReplayBuffers, task_id, n: int, start: int = 0) -> None:
    """Transitions whose every field encodes (task, index), so a sample's origin can be read back."""
    for i in range(start, start + n):
        value = 100.0 * task_id + i
        buffers.add(task_id, np.full(OBS, value), np.full(ACT, value), value, np.full(OBS, -value), i % 2)


def test_sampling_a_task_never_returns_another_tasks_transitions():
    buffers = TaskReplayBuffers(OBS, ACT, capacity=7)
    fill(buffers, 0, 4)
    fill(buffers, 1, 12)  # wraps: indices 5..11 remain
    fill(buffers, 2, 3)
    assert [buffers.size(t) for t in (0, 1, 2, 3)] == [4, 7, 3, 0]
    rng = np.random.default_rng(0)
    for task, expected in ((0, range(4)), (1, range(5, 12)), (2, range(3))):
        batch = buffers.sample(task, 500, rng)
        assert set(batch) == set(BATCH_KEYS) and all(v.dtype == torch.float32 for v in batch.values())
        assert batch["obs"].shape == (500, OBS) and batch["reward"].shape == (500,)
        assert set(batch["reward"].tolist()) == {100.0 * task + i for i in expected}
        torch.testing.assert_close(batch["obs"][:, 0], batch["reward"])
        torch.testing.assert_close(batch["next_obs"][:, 0], -batch["reward"])
        torch.testing.assert_close(batch["terminated"], (batch["reward"] - 100.0 * task) % 2)


def test_replay_state_round_trips_through_weights_only_torch_load():
    buffers = TaskReplayBuffers(OBS, ACT, capacity=5)
    fill(buffers, 0, 8)
    fill(buffers, 3, 2)
    file = io.BytesIO()
    torch.save(buffers.state_dict(), file)
    file.seek(0)
    restored = TaskReplayBuffers(OBS, ACT, capacity=5)
    restored.load_state_dict(torch.load(file, weights_only=True))
    assert restored.task_ids == ["0", "3"] and restored.size("3") == 2
    for copy in (buffers, restored):  # the write position is restored too
        fill(copy, 0, 1, start=20)
        fill(copy, 3, 1, start=30)
    first, second = (
        buffers.sample(0, 64, np.random.default_rng(7)),
        restored.sample(0, 64, np.random.default_rng(7)),
    )
    assert all(torch.equal(first[key], second[key]) for key in BATCH_KEYS)
    assert 20.0 in first["reward"].tolist() and 3.0 not in first["reward"].tolist()  # 20 overwrote index 3
    with pytest.raises(ConfigError, match="capacity"):
        TaskReplayBuffers(OBS, ACT, capacity=6).load_state_dict(buffers.state_dict())


def test_replay_adds_batches_of_transitions():
    buffers = TaskReplayBuffers(OBS, ACT, capacity=4)
    buffers.add(0, np.ones((3, OBS)), np.ones((3, ACT)), [1.0, 2.0, 3.0], np.zeros((3, OBS)), [0, 0, 1])
    assert buffers.size(0) == 3
    batch = buffers.sample(0, 200, np.random.default_rng(1))
    assert set(batch["reward"].tolist()) == {1.0, 2.0, 3.0}


def test_bad_input_is_refused_with_one_sentence():
    buffers = TaskReplayBuffers(OBS, ACT, capacity=3)
    with pytest.raises(ConfigError, match="empty"):
        buffers.sample(0, 4, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="action"):
        buffers.add(0, np.zeros(OBS), np.zeros(ACT + 1), 0.0, np.zeros(OBS), False)


def test_clearing_a_task_forgets_only_its_transitions():
    import numpy as np

    from lit_meta.algorithms.replay import TaskReplayBuffers

    buffers = TaskReplayBuffers(2, 1, capacity=5)
    for task in (0, 1):
        buffers.add(
            task, np.ones((3, 2)) * task, np.zeros((3, 1)), np.arange(3), np.zeros((3, 2)), np.zeros(3)
        )
    buffers.clear(0)
    assert buffers.size(0) == 0 and buffers.size(1) == 3
    buffers.add(0, np.full((1, 2), 7.0), np.zeros((1, 1)), [4.0], np.zeros((1, 2)), [0.0])
    batch = buffers.sample(0, 10, np.random.default_rng(0))
    assert (batch["obs"] == 7.0).all() and (batch["reward"] == 4.0).all()  # nothing from before the clear
