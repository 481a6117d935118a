"""The task families: valid gymnasium environments whose physics follow the task, reproducibly."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lit_meta.envs import TASK_ENVS, CartPoleTaskEnv, PendulumTaskEnv, make_task_env, sample_task_env
from lit_meta.errors import ConfigError


@pytest.mark.parametrize("env_id", sorted(TASK_ENVS))
def test_every_registered_environment_passes_gymnasiums_checker(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)  # no renderer is installed
    assert env.spec.max_episode_steps == TASK_ENVS[env_id][1]


@pytest.mark.parametrize("env_id", sorted(TASK_ENVS))
def test_same_seed_gives_the_same_tasks_and_the_same_episode(env_id):
    def episode(seed):
        env, task = sample_task_env(env_id, seed)
        observation, _ = env.reset(seed=1)
        env.action_space.seed(1)
        trace = [observation]
        for _ in range(30):
            observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            trace += [observation, np.array([reward])]
            if terminated or truncated:
                break
        return task, np.concatenate(trace)

    (task_a, trace_a), (task_b, trace_b) = episode(3), episode(3)
    assert task_a == task_b
    # another seed draws another task (a family of two tasks, HalfCheetahDir, may repeat one by chance)
    assert any(sample_task_env(env_id, seed)[1] != task_a for seed in range(4, 9))
    np.testing.assert_array_equal(trace_a, trace_b)


def test_cartpole_dynamics_follow_the_task():
    """The pole's angular acceleration is gymnasium's formula with the task's gravity, mass and length."""
    task = {"length": 0.9, "masspole": 0.4, "gravity": 11.0}
    env = CartPoleTaskEnv(task=task)
    env.reset(seed=0)
    env.state = np.array([0.0, 0.0, 0.1, 0.0])
    env.step(1)
    theta, force = 0.1, env.force_mag
    total = 1.0 + task["masspole"]
    temp = (force + task["masspole"] * task["length"] * 0.0) / total
    theta_acc = (task["gravity"] * np.sin(theta) - np.cos(theta) * temp) / (
        task["length"] * (4.0 / 3.0 - task["masspole"] * np.cos(theta) ** 2 / total)
    )
    assert env.state[3] == pytest.approx(env.tau * theta_acc, rel=1e-6)
    assert env.get_task() == task


def test_pendulum_dynamics_follow_the_task():
    task = {"mass": 1.3, "length": 0.7, "gravity": 9.0}
    env = PendulumTaskEnv(task=task)
    env.reset(seed=0)
    env.state = np.array([0.5, 0.0])
    env.step(np.array([1.0], dtype=np.float32))
    expected = (
        3 * task["gravity"] / (2 * task["length"]) * np.sin(0.5) + 3.0 / (task["mass"] * task["length"] ** 2)
    ) * env.dt
    assert env.state[1] == pytest.approx(expected, rel=1e-5)


def test_sampled_tasks_stay_in_their_ranges():
    env = make_task_env("lit_meta/PendulumTask-v0", ranges={"mass": [0.9, 1.1]})
    for task in env.unwrapped.sample_tasks(50, np.random.default_rng(0)):
        assert 0.9 <= task["mass"] <= 1.1 and 0.5 <= task["length"] <= 1.5


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: make_task_env("lit_meta/Nope-v0"), "unknown task environment 'lit_meta/Nope-v0'"),
        (lambda: CartPoleTaskEnv(task={"length": 3.0}), "task parameter length=3.0 is outside its range"),
        (lambda: CartPoleTaskEnv(task={"mass": 1.0}), "CartPoleTaskEnv has no task parameter mass"),
        (lambda: CartPoleTaskEnv(ranges={"gravity": [12, 7]}), "must have low <= high"),
        (lambda: PendulumTaskEnv(ranges={"friction": [0, 1]}), "has no task parameter 'friction'"),
    ],
)
def test_bad_tasks_are_refused_in_one_sentence(make, message):
    with pytest.raises(ConfigError, match=message):
        make()
