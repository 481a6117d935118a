"""Meta-World's ML1 and ML10 as lit-meta task families: the benchmark's own tasks and splits, stepped exactly
as Meta-World steps them, its success flag recorded per episode, and bad input refused in one sentence."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from lit_meta.datamodules import RLTaskDataModule
from lit_meta.envs import UNAVAILABLE_TASK_ENVS, make_task_env
from lit_meta.envs.rollouts import EpisodeSampler, SuccessTracker
from lit_meta.errors import ConfigError

ML1, ML10 = "lit_meta/MetaWorldML1-v0", "lit_meta/MetaWorldML10-v0"
pytestmark = pytest.mark.skipif(ML1 in UNAVAILABLE_TASK_ENVS, reason=UNAVAILABLE_TASK_ENVS.get(ML1, ""))


def _goal(family, task) -> np.ndarray:
    import pickle

    return pickle.loads(family._tasks[int(task["task"])].data)["rand_vec"]


def test_ml1_has_metaworlds_fifty_training_and_fifty_test_goals_disjoint():
    family = make_task_env(ML1).unwrapped
    train, test = family.split_tasks("train"), family.split_tasks("test")
    assert len(train) == len(test) == 50
    assert {t["task"] for t in train}.isdisjoint(t["task"] for t in test)
    train_goals = {tuple(_goal(family, t)) for t in train}
    assert len(train_goals) == 50 and train_goals.isdisjoint(tuple(_goal(family, t)) for t in test)
    assert family.split_tasks("val") == train  # Meta-World has no third split
    assert all(task in train for task in family.sample_tasks(200, np.random.default_rng(0)))


def test_ml10_trains_on_ten_environments_and_tests_on_five_others():
    import metaworld

    family = make_task_env(ML10).unwrapped
    names = {}
    for split in ("train", "test"):
        names[split] = set()
        for task in family.split_tasks(split):
            family.set_task(task)
            names[split].add(family.task_name())
    reference = metaworld.ML10(seed=0)
    assert names["train"] == set(reference.train_classes) and len(names["train"]) == 10
    assert names["test"] == set(reference.test_classes) and len(names["test"]) == 5


def test_a_task_steps_exactly_as_metaworlds_own_environment():
    """The same goal, the same actions: the family's observations, rewards and success flags are
    Meta-World's (observations as float32; the goal hidden, as in Meta-World's ML benchmarks)."""
    import metaworld

    benchmark = metaworld.ML1("reach-v3", seed=0)
    reference = benchmark.train_classes["reach-v3"]()
    reference.set_task(benchmark.test_tasks[7])
    env = make_task_env(ML1, task={"task": 57.0})  # test task 7 follows the 50 training tasks
    expected, _ = reference.reset()
    observation, _ = env.reset(seed=0)
    np.testing.assert_array_equal(observation, expected.astype(np.float32))
    assert not observation[36:].any()  # the goal is not observed
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        expected, expected_reward, _, _, expected_info = reference.step(action)
        observation, reward, terminated, truncated, info = env.step(action)
        np.testing.assert_array_equal(observation, expected.astype(np.float32))
        assert reward == expected_reward and info["success"] == expected_info["success"]
        assert not terminated and not truncated
    assert env.spec.max_episode_steps == 500


class _ReachPolicy:
    """Moves the hand toward the goal it reads from the environment (an oracle), or stays still."""

    def __init__(self, sampler: EpisodeSampler, oracle: bool) -> None:
        self.sampler, self.oracle = sampler, oracle

    def __call__(self, observation):
        actions = torch.zeros(len(observation), 4)
        if self.oracle:
            for index, env in enumerate(self.sampler.envs.envs):
                target = torch.as_tensor(env.unwrapped._active._target_pos, dtype=torch.float32)
                actions[index, :3] = (10 * (target - observation[index, :3])).clamp(-1, 1)
        return _Fixed(actions)


class _Fixed:
    def __init__(self, actions):
        self.actions = actions

    def sample(self):
        return self.actions

    def log_prob(self, actions):
        return torch.zeros(len(actions))


def test_the_sampler_records_metaworlds_success_flag_per_episode():
    """A hand driven to the goal succeeds on every goal; a hand that stays still on none."""
    sampler = EpisodeSampler(lambda: make_task_env(ML1, env_kwargs={"max_episode_steps": 60}), 2)
    for task in ({"task": 3.0}, {"task": 60.0}):
        reached = sampler.sample(_ReachPolicy(sampler, oracle=True), task, seed=0)
        still = sampler.sample(_ReachPolicy(sampler, oracle=False), task, seed=0)
        assert reached.successes.tolist() == [1.0, 1.0]
        assert still.successes.tolist() == [0.0, 0.0]
        assert reached.observations.shape[0] == 60  # Meta-World never terminates: the time limit ends it
    nav = EpisodeSampler(lambda: make_task_env("lit_meta/Navigation2D-v0"), 1)
    still = lambda observation: _Fixed(torch.zeros(len(observation), 2))  # noqa: E731
    assert nav.sample(still, {"goal_x": 0.2, "goal_y": 0.1}, 0).successes is None


def test_success_on_the_step_that_ends_an_episode_is_read_from_final_info():
    tracker = SuccessTracker(3)
    every = np.array([True, True, True])
    running = np.array([True, True, False])  # the third environment's episode is over: it no longer counts
    tracker.update({"success": np.array([0.0, 1.0, 0.0]), "_success": every}, running)
    final = {"success": np.array([1.0, 0.0, 1.0]), "_success": every}
    tracker.update({"final_info": final, "_final_info": every}, running)
    assert tracker.result().tolist() == [1.0, 1.0, 0.0]
    assert SuccessTracker(2).result() is None


def test_the_datamodule_trains_on_distinct_training_goals_and_tests_on_the_test_goals():
    data = RLTaskDataModule(env=ML1, train_tasks=50, test_tasks=50, val_tasks=5, seed=0)
    family = data.template_env().unwrapped
    train = data.fixed_train_tasks()
    assert sorted(t["task"] for t in train) == [t["task"] for t in family.split_tasks("train")]
    assert sorted(t["task"] for t in data.eval_tasks("test", 50)) == [
        t["task"] for t in family.split_tasks("test")
    ]
    assert all(task in family.split_tasks("train") for task in data.eval_tasks("val", 5))
    with pytest.raises(ConfigError, match="has 50 test tasks; ask for at most that many, not 51"):
        data.eval_tasks("test", 51)
    dynamic = RLTaskDataModule(env=ML1, meta_batch_size=20, seed=0)
    batch = next(iter(dynamic.train_dataloader()))
    assert all(task in family.split_tasks("train") for task in batch.task_parameters)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ranges": {"task": [0, 3]}}, "tasks are Meta-World's goal variations: drop ranges"),
        ({"env_kwargs": {"env_name": "reach-v9"}}, "'reach-v9' is not a Meta-World environment"),
        ({"task": {"task": 2.5}}, "a Meta-World task is an index, got task=2.5"),
        ({"task": {"task": 100.0}}, r"task=100.0 is outside its range \[0.0, 99.0\]"),
    ],
)
def test_bad_input_is_refused_in_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_task_env(ML1, **kwargs)


def test_without_metaworld_its_ids_say_how_to_install_it_and_the_rest_works():
    script = """
import sys
sys.modules["metaworld"] = None  # makes `import metaworld` raise ImportError
from lit_meta.errors import ConfigError
import lit_meta.envs as envs

assert "lit_meta/MetaWorldML1-v0" not in envs.TASK_ENVS
try:
    envs.make_task_env("lit_meta/MetaWorldML1-v0")
except ConfigError as error:
    assert "pip install --no-deps metaworld" in str(error), error
else:
    raise AssertionError("no ConfigError")
envs.make_task_env("lit_meta/HalfCheetahVel-v0").reset(seed=0)
"""
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
