"""Random tabular MDPs (RL²'s Table 2 family): the MDP of a seed, its rewards and transitions as drawn,
episodes of 10 steps from state 0, and bad input refused in one sentence."""

import gymnasium as gym
import numpy as np
import pytest

from lit_meta.envs import make_task_env
from lit_meta.envs.tabular_mdp import RandomTabularMDPEnv, random_mdp
from lit_meta.errors import ConfigError

ENV = "lit_meta/TabularMDP-v0"


def test_a_task_is_the_mdp_of_its_seed():
    env = make_task_env(ENV, task={"mdp": 7.0}).unwrapped
    means, transitions = random_mdp(7, 10, 5)
    np.testing.assert_array_equal(env.reward_means, means)
    np.testing.assert_array_equal(env.transitions, transitions)
    assert transitions.shape == (10, 5, 10) and np.allclose(transitions.sum(-1), 1.0)
    assert not np.array_equal(random_mdp(8, 10, 5)[0], means)
    tasks = env.sample_tasks(500, np.random.default_rng(0))
    assert len({task["mdp"] for task in tasks}) == 500 and all(task["mdp"].is_integer() for task in tasks)


def test_the_family_draws_means_from_n11_and_transitions_from_a_flat_dirichlet():
    """Over 400 MDPs: mean rewards have mean 1 and variance 1; a flat Dirichlet over 10 states gives each
    next state probability 1/10 on average with variance (1/10)(9/10)/11."""
    means, transitions = zip(*(random_mdp(seed, 10, 5) for seed in range(400)), strict=True)
    means, transitions = np.stack(means), np.stack(transitions)
    assert means.mean() == pytest.approx(1.0, abs=0.03) and means.var() == pytest.approx(1.0, abs=0.05)
    assert transitions.mean() == pytest.approx(0.1, abs=1e-9)
    assert transitions.var() == pytest.approx(0.1 * 0.9 / 11, rel=0.05)


def test_steps_follow_the_mdp():
    """From state 0, action 2, 20,000 times: the rewards are N(mean, 1) around the drawn mean and the next
    states follow the drawn distribution; observations are one-hot; an episode lasts 10 steps."""
    env = gym.make(ENV, task={"mdp": 3.0})
    mdp = env.unwrapped
    rewards, next_states = [], []
    observation, _ = env.reset(seed=0)
    assert observation.tolist() == [1.0] + [0.0] * 9
    for _ in range(20000):
        mdp.reset()
        observation, reward, terminated, truncated, _ = mdp.step(2)
        rewards.append(reward)
        next_states.append(int(observation.argmax()))
        assert observation.sum() == 1.0 and not terminated and not truncated
    assert np.mean(rewards) == pytest.approx(mdp.reward_means[0, 2], abs=0.03)
    assert np.std(rewards) == pytest.approx(1.0, abs=0.03)
    frequencies = np.bincount(next_states, minlength=10) / 20000
    np.testing.assert_allclose(frequencies, mdp.transitions[0, 2], atol=0.012)
    env.reset(seed=1)
    lengths = [env.step(0)[3] for _ in range(10)]
    assert lengths == [False] * 9 + [True]  # the registered horizon: 10 steps


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RandomTabularMDPEnv(ranges={"mdp": (0, 5)}), "tasks are MDP seeds: drop ranges"),
        (lambda: RandomTabularMDPEnv(states=1), "states must be at least 2"),
        (lambda: RandomTabularMDPEnv(task={"mdp": 1.5}), "a tabular MDP task is a seed"),
        (lambda: RandomTabularMDPEnv().step(5), "action 5 does not exist"),
    ],
)
def test_bad_input_is_refused_in_one_sentence(make, message):
    with pytest.raises(ConfigError, match=message):
        make()
