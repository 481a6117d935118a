"""The meta-RL benchmark families: 2D navigation, Bernoulli bandits and the HalfCheetah velocity and
direction tasks follow their papers' dynamics and rewards, reproducibly, and refuse bad input."""

import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lit_meta.envs import (
    TASK_ENVS,
    UNAVAILABLE_TASK_ENVS,
    BernoulliBanditEnv,
    CartPoleTaskEnv,
    Navigation2DEnv,
    check_env_id,
    make_task_env,
)
from lit_meta.errors import ConfigError

needs_mujoco = pytest.mark.skipif(
    "lit_meta/HalfCheetahVel-v0" in UNAVAILABLE_TASK_ENVS,
    reason="MuJoCo is not installed (pip install lit-meta[mujoco])",
)
NEW_FAMILIES = [
    ("lit_meta/Navigation2D-v0", "Navigation2DEnv", 100),
    ("lit_meta/BernoulliBandit-v0", "BernoulliBanditEnv", 1),
    pytest.param("lit_meta/HalfCheetahVel-v0", "HalfCheetahVelEnv", 200, marks=needs_mujoco),
    pytest.param("lit_meta/HalfCheetahDir-v0", "HalfCheetahDirEnv", 200, marks=needs_mujoco),
]


@pytest.mark.parametrize(("env_id", "class_name", "horizon"), NEW_FAMILIES)
def test_each_family_is_registered_and_passes_gymnasiums_checker(env_id, class_name, horizon):
    assert check_env_id(env_id).__name__ == class_name and TASK_ENVS[env_id][1] == horizon
    env = gym.make(env_id)
    assert env.spec.max_episode_steps == horizon
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize(("env_id", "class_name", "horizon"), NEW_FAMILIES)
def test_same_seed_gives_the_same_tasks_and_the_same_episode(env_id, class_name, horizon):
    def run(seed):
        env = make_task_env(env_id)
        tasks = env.unwrapped.sample_tasks(5, np.random.default_rng(seed))
        env.unwrapped.set_task(tasks[-1])
        observation, _ = env.reset(seed=seed)
        actions = np.random.default_rng(seed)
        trace = [observation.astype(float)]
        for _ in range(40):
            if isinstance(env.action_space, gym.spaces.Discrete):
                action = int(actions.integers(env.action_space.n))
            else:
                action = actions.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
            observation, reward, terminated, truncated, _ = env.step(action)
            trace += [observation.astype(float), [reward]]
            if terminated or truncated:
                observation, _ = env.reset()
        return tasks, np.concatenate(trace)

    (tasks_a, trace_a), (tasks_b, trace_b), (tasks_c, trace_c) = run(7), run(7), run(8)
    assert tasks_a == tasks_b and tasks_a != tasks_c
    np.testing.assert_array_equal(trace_a, trace_b)
    assert not np.array_equal(trace_a, trace_c)


def test_navigation_clips_moves_rewards_minus_the_distance_and_ends_at_the_goal():
    env = Navigation2DEnv(task={"goal_x": 0.25, "goal_y": -0.105})
    observation, _ = env.reset(seed=0)
    np.testing.assert_array_equal(observation, [0.0, 0.0])

    observation, reward, terminated, _, _ = env.step(np.array([0.5, -0.04], dtype=np.float32))
    assert observation.dtype == np.float32
    np.testing.assert_allclose(observation, [0.1, -0.04], rtol=1e-6)  # x clipped from 0.5 to 0.1
    assert reward == pytest.approx(-np.hypot(0.1 - 0.25, -0.04 + 0.105))
    assert not terminated

    _, reward, terminated, _, _ = env.step(np.array([0.1, -0.1], dtype=np.float32))
    np.testing.assert_allclose(env.position(), [0.2, -0.14])
    assert reward == pytest.approx(-np.hypot(0.05, 0.035)) and not terminated

    # within 0.01 of the goal along both axes: (0.245, -0.105) is 0.005 short along x
    _, reward, terminated, _, _ = env.step(np.array([0.045, 0.035], dtype=np.float32))
    assert terminated and reward == pytest.approx(-0.005, abs=1e-6)

    # a new episode starts again at the origin
    assert np.array_equal(env.reset()[0], [0.0, 0.0]) and np.array_equal(env.position(), [0.0, 0.0])


def test_navigation_goals_are_sampled_in_the_square_and_may_be_negative():
    env = make_task_env("lit_meta/Navigation2D-v0")
    goals = np.array(
        [[t["goal_x"], t["goal_y"]] for t in env.unwrapped.sample_tasks(500, np.random.default_rng(0))]
    )
    assert goals.min() >= -0.5 and goals.max() <= 0.5 and goals.min() < -0.4 and goals.max() > 0.4
    left = Navigation2DEnv(ranges={"goal_x": [-1.0, -0.5]})
    assert all(-1.0 <= t["goal_x"] <= -0.5 for t in left.sample_tasks(20, np.random.default_rng(0)))


def test_bandit_pays_each_arm_with_its_probability_reproducibly():
    task = {"p0": 0.1, "p1": 0.75, "p2": 0.4}
    env = make_task_env("lit_meta/BernoulliBandit-v0", task=task, env_kwargs={"arms": 3})
    assert env.action_space == gym.spaces.Discrete(3) and env.spec.max_episode_steps == 1
    np.testing.assert_array_equal(env.unwrapped.arm_means(), [0.1, 0.75, 0.4])

    def pulls(arm, n, seed):
        rewards = []
        observation, _ = env.reset(seed=seed)
        for _ in range(n):
            assert np.array_equal(observation, [0.0])
            observation, reward, terminated, _, _ = env.step(arm)
            assert terminated and reward in (0.0, 1.0)  # (truncated too: the time limit is one step)
            rewards.append(reward)
            observation, _ = env.reset()
        return np.array(rewards)

    for arm, p in enumerate(task.values()):
        # 4000 pulls: the standard error of the frequency is below 0.008, the margin is over 4 of them
        assert pulls(arm, 4000, seed=arm).mean() == pytest.approx(p, abs=0.035)
    np.testing.assert_array_equal(pulls(1, 50, seed=3), pulls(1, 50, seed=3))
    assert not np.array_equal(pulls(1, 50, seed=3), pulls(1, 50, seed=4))


def test_bandit_tasks_are_one_uniform_probability_per_arm():
    env = BernoulliBanditEnv(arms=4)
    tasks = env.sample_tasks(300, np.random.default_rng(0))
    assert all(sorted(task) == ["p0", "p1", "p2", "p3"] for task in tasks)
    means = np.array([list(task.values()) for task in tasks])
    assert means.min() >= 0 and means.max() <= 1 and abs(means.mean() - 0.5) < 0.05
    env.set_task(tasks[0])
    np.testing.assert_array_equal(env.arm_means(), list(tasks[0].values()))
    assert env.get_task() == tasks[0]


def _random_actions(env, n, seed):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, *env.action_space.shape)).astype(np.float32)


@needs_mujoco
def test_half_cheetah_velocity_reward_is_minus_the_speed_error_minus_the_control_cost():
    env = make_task_env("lit_meta/HalfCheetahVel-v0", task={"velocity": 1.3}).unwrapped
    _, info = env.reset(seed=0)
    x_before = info["x_position"]
    for action in _random_actions(env, 20, seed=0):
        observation, reward, terminated, _, info = env.step(action)
        assert observation.shape == (17,) and not terminated
        velocity = (info["x_position"] - x_before) / env.dt
        assert info["x_velocity"] == pytest.approx(velocity)
        assert reward == pytest.approx(
            -abs(velocity - 1.3) - 0.05 * float(np.sum(np.square(action.astype(float))))
        )
        x_before = info["x_position"]


@needs_mujoco
def test_half_cheetah_direction_reward_is_the_signed_velocity_minus_the_control_cost():
    def rewards(direction):
        env = make_task_env("lit_meta/HalfCheetahDir-v0", task={"direction": direction}).unwrapped
        env.reset(seed=1)
        trace = []
        for action in _random_actions(env, 20, seed=1):
            _, reward, _, _, info = env.step(action)
            ctrl_cost = 0.05 * float(np.sum(np.square(action.astype(float))))
            assert reward == pytest.approx(direction * info["x_velocity"] - ctrl_cost)
            trace.append((reward, info["x_velocity"], ctrl_cost))
        return np.array(trace)

    forward, backward = rewards(1.0), rewards(-1.0)
    np.testing.assert_allclose(forward[:, 1:], backward[:, 1:])  # the same motion, only the reward differs
    np.testing.assert_allclose(forward[:, 0] + forward[:, 2], -(backward[:, 0] + backward[:, 2]))


@needs_mujoco
def test_half_cheetah_tasks_follow_the_maml_distributions_and_survive_pickling():
    from lit_meta.envs import HalfCheetahDirEnv, HalfCheetahVelEnv

    directions = [t["direction"] for t in HalfCheetahDirEnv().sample_tasks(400, np.random.default_rng(0))]
    assert set(directions) == {-1.0, 1.0} and abs(np.mean(directions)) < 0.15
    assert {
        t["direction"]
        for t in HalfCheetahDirEnv(ranges={"direction": [1, 1]}).sample_tasks(20, np.random.default_rng(0))
    } == {1.0}
    velocities = [t["velocity"] for t in HalfCheetahVelEnv().sample_tasks(400, np.random.default_rng(0))]
    assert 0 <= min(velocities) < 0.1 and 1.9 < max(velocities) <= 2.0

    env = HalfCheetahVelEnv(task={"velocity": 0.4}, reset_noise_scale=0.0)
    env.set_task({"velocity": 1.7})
    copy = pickle.loads(pickle.dumps(env))
    assert copy.get_task() == {"velocity": 1.7} and copy._reset_noise_scale == 0.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Navigation2DEnv(task={"goal_x": 0.7}), r"goal_x=0.7 is outside its range \[-0.5, 0.5\]"),
        (lambda: Navigation2DEnv(task={"goal_z": 0.1}), "Navigation2DEnv has no task parameter goal_z"),
        (lambda: Navigation2DEnv(ranges={"goal": [0, 1]}), "has no task parameter 'goal'"),
        (lambda: BernoulliBanditEnv(arms=1), "a bandit needs at least 2 arms, got 1"),
        (lambda: BernoulliBanditEnv(arms=3, task={"p3": 0.5}), "BernoulliBanditEnv has no task parameter p3"),
        (lambda: BernoulliBanditEnv(task={"p0": 1.5}), "p0=1.5 is outside its range"),
        (lambda: BernoulliBanditEnv(ranges={"p1": [0.5, 1.2]}), r"range of p1 must lie within \[0.0, 1.0\]"),
        (lambda: BernoulliBanditEnv().step(5), "arm 5 does not exist; this bandit has arms 0 to 4"),
        (lambda: CartPoleTaskEnv(ranges={"length": [-1, 1]}), "range of length must be positive"),
        pytest.param(
            lambda: make_task_env("lit_meta/HalfCheetahVel-v0", ranges={"velocity": [0, 3]}),
            r"range of velocity must lie within \[0.0, 2.0\]",
            marks=needs_mujoco,
        ),
        pytest.param(
            lambda: make_task_env("lit_meta/HalfCheetahDir-v0", task={"direction": 0.5}),
            r"the direction must be -1 \(backward\) or 1 \(forward\), got 0.5",
            marks=needs_mujoco,
        ),
        pytest.param(
            lambda: make_task_env("lit_meta/HalfCheetahDir-v0", ranges={"direction": [-0.5, 0.5]}),
            r"the range of direction must contain -1 or 1",
            marks=needs_mujoco,
        ),
        pytest.param(
            lambda: make_task_env(
                "lit_meta/HalfCheetahDir-v0", task={"direction": 1}, ranges={"direction": [-1, -1]}
            ),
            r"direction=1 is outside its range \[-1.0, -1.0\]",
            marks=needs_mujoco,
        ),
    ],
)
def test_bad_input_is_refused_in_one_sentence(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_without_mujoco_the_cheetah_ids_say_how_to_install_it_and_the_rest_works():
    """Run in a fresh interpreter in which ``import mujoco`` fails."""
    script = """
import sys
sys.modules["mujoco"] = None  # makes `import mujoco` raise ImportError
import gymnasium as gym
from lit_meta.errors import ConfigError
import lit_meta.envs as envs

assert "lit_meta/HalfCheetahVel-v0" not in envs.TASK_ENVS
for attempt in (
    lambda: envs.check_env_id("lit_meta/HalfCheetahVel-v0"),
    lambda: envs.make_task_env("lit_meta/HalfCheetahDir-v0"),
    lambda: gym.make("lit_meta/HalfCheetahVel-v0"),
    lambda: envs.HalfCheetahVelEnv,
):
    try:
        attempt()
    except ConfigError as error:
        assert "pip install lit-meta[mujoco]" in str(error), error
        print(error)
    else:
        raise AssertionError("no ConfigError")
envs.make_task_env("lit_meta/Navigation2D-v0").reset(seed=0)
from lit_meta.envs import *  # noqa
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (
        "lit_meta/HalfCheetahVel-v0 cannot be made: the HalfCheetah task families need MuJoCo"
        in result.stdout
    )
