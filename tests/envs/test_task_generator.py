"""TaskGenerator: revisit policies, origin bookkeeping, reproducibility and resumption."""

from collections import Counter
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
from scipy import stats

from lit_meta.envs import sample_task_env
from lit_meta.envs.task_generator import TaskGenerator
from lit_meta.errors import ConfigError

CARTPOLE = partial(sample_task_env, "lit_meta/CartPoleTask-v0")


def static_generator(policy, weights=None, seed=0, count=4):
    envs = [(gym.make("CartPole-v1"), {"name": f"task{i}"}) for i in range(count)]
    return TaskGenerator(tasks=envs, revisit_policy=policy, weights=weights, seed=seed)


def visited(generator, draws):
    return [generator.get_task(step)[1]["task_index"] for step in range(draws)]


def test_cyclic_visits_static_tasks_in_order():
    assert visited(static_generator("cyclic"), 10) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def test_random_is_seeded_and_reproducible():
    first, again, other = (visited(static_generator("random", seed=s), 40) for s in (5, 5, 6))
    assert first == again and first != other
    assert set(first) == {0, 1, 2, 3}


def test_weighted_follows_its_weights():
    weights = [0.1, 0.2, 0.3, 0.4]
    counts = Counter(visited(static_generator("weighted", weights=weights, seed=0), 4000))
    observed = [counts[i] for i in range(4)]
    _, p_value = stats.chisquare(observed, [4000 * w for w in weights])
    assert p_value > 0.01, observed
    # and the test has power: uniform weights are clearly rejected by the same draws
    _, p_uniform = stats.chisquare(observed, [1000] * 4)
    assert p_uniform < 1e-6


def test_static_tasks_have_no_origin_and_return_their_info():
    env, info, origin = static_generator("cyclic").get_task(7)
    assert origin is None and info == {"name": "task0", "task_index": 0} and isinstance(env, gym.Env)


def test_dynamic_tasks_record_the_meta_step_they_first_appeared():
    generator = TaskGenerator(task_callable=CARTPOLE, revisit_policy="cyclic", revisit_prob=0.5, seed=1)
    origins, new = [], 0
    for step in range(30):
        _, info, origin = generator.get_task(step)
        if origin == step:
            new += 1
        origins.append((info["task_seed"], origin))
    # a revisited task comes back with the step it first appeared at, and the same parameters
    first_seen = {}
    for task_seed, origin in origins:
        first_seen.setdefault(task_seed, origin)
        assert origin == first_seen[task_seed]
    assert 0 < new < 30 and len(generator.history) == new


def test_a_dynamic_task_is_its_seed():
    generator = TaskGenerator(task_callable=CARTPOLE, seed=0)
    env_a, info_a, _ = generator.get_task(0, seed=11)
    env_b, info_b, _ = generator.get_task(1, seed=11)
    assert info_a == info_b and env_a.unwrapped.get_task() == env_b.unwrapped.get_task()


def test_weighted_revisits_of_dynamic_tasks_follow_weight_fn():
    generator = TaskGenerator(
        task_callable=CARTPOLE,
        revisit_policy="weighted",
        weight_fn=lambda info: 3.0 if info["task_seed"] == 101 else 0.0,
    )
    generator.get_task(0, seed=100)
    generator.get_task(1, seed=101)
    generator.revisit_prob = 1.0  # from now on every draw revisits, by weight
    assert all(generator.get_task(step)[1]["task_seed"] == 101 for step in range(2, 12))


def test_reset_history_and_state_dict_resume_the_same_draws():
    generator = TaskGenerator(task_callable=CARTPOLE, revisit_prob=0.3, seed=4)
    for step in range(5):
        generator.get_task(step)
    state = generator.state_dict()
    expected = [generator.get_task(step)[1] for step in range(5, 12)]
    restored = TaskGenerator(task_callable=CARTPOLE, revisit_prob=0.3, seed=4)
    restored.load_state_dict(state)
    assert [restored.get_task(step)[1] for step in range(5, 12)] == expected
    restored.reset_history()
    assert (
        restored.history == []
        and restored.state_dict()["rng"] == TaskGenerator(task_callable=CARTPOLE, seed=4).state_dict()["rng"]
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task_callable": CARTPOLE, "revisit_policy": "greedy"}, "unknown revisit policy 'greedy'"),
        ({}, "either a static list of tasks or a task_callable"),
        ({"task_callable": CARTPOLE, "revisit_policy": "weighted"}, "need a weight_fn"),
        ({"tasks": [gym.make("CartPole-v1")], "revisit_policy": "weighted"}, "needs weights"),
        (
            {"tasks": ["CartPole-v1"]},
            r"static task 0 must be an environment or a tuple \(gymnasium.Env, dict\)",
        ),
        ({"task_callable": CARTPOLE, "revisit_prob": 1.5}, r"revisit_prob must be in \[0, 1\]"),
    ],
)
def test_bad_settings_are_refused_in_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TaskGenerator(**kwargs)


@pytest.mark.parametrize(
    ("task_callable", "message"),
    [
        (
            lambda seed: gym.make("CartPole-v1"),
            r"must be a tuple \(gymnasium.Env, dict\), got CartPoleEnv|got TimeLimit",
        ),
        (lambda seed: (gym.make("CartPole-v1"), {}, 3), r"got tuple of 3 items"),
        (lambda: (gym.make("CartPole-v1"), {}), "task_callable must accept a seed keyword"),
    ],
)
def test_task_callables_that_return_the_wrong_thing_are_refused(task_callable, message):
    with pytest.raises(ConfigError, match=message):
        TaskGenerator(task_callable=task_callable).get_task(0)


def test_rng_state_is_plain_data():
    state = TaskGenerator(task_callable=CARTPOLE).state_dict()
    assert isinstance(state["rng"]["state"]["state"], int) and np.isscalar(state["cursor"])


def test_cyclic_revisits_of_dynamic_tasks_go_round_the_history_oldest_first():
    generator = TaskGenerator(task_callable=CARTPOLE, revisit_policy="cyclic", seed=0)
    made = [generator.get_task(step, seed=50 + step)[1]["task_seed"] for step in range(3)]
    generator.revisit_prob = 1.0
    revisited = [generator.get_task(step)[1]["task_seed"] for step in range(3, 10)]
    assert revisited == [made[i % 3] for i in range(7)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task_callable": CARTPOLE, "weights": [1.0]}, "weights apply to a static task list"),
        ({"tasks": [gym.make("CartPole-v1")], "revisit_prob": 0.5}, "apply to dynamic tasks"),
        ({"tasks": [gym.make("CartPole-v1")], "weight_fn": len}, "apply to dynamic tasks"),
    ],
)
def test_settings_that_would_be_ignored_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TaskGenerator(**kwargs)
