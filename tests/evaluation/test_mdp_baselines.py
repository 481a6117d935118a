"""The tabular-MDP players of RL²'s Table 2: value iteration against a brute-force recursion, the
posterior's closed forms, and the players' ordering on random MDPs."""

import itertools

import numpy as np
import pytest

from lit_meta.envs.tabular_mdp import random_mdp
from lit_meta.errors import ConfigError
from lit_meta.evaluation.mdp_baselines import MDP_BASELINES, TabularPosterior, plan, play_mdps


def brute_force_value(rewards, transitions, state, steps) -> float:
    """The best expected return of ``steps`` steps from ``state``, by trying every action at every step."""
    if steps == 0:
        return 0.0
    return max(
        rewards[state, action]
        + sum(
            p * brute_force_value(rewards, transitions, nxt, steps - 1)
            for nxt, p in enumerate(transitions[state, action])
        )
        for action in range(rewards.shape[1])
    )


def test_value_iteration_matches_a_brute_force_recursion():
    rewards, transitions = random_mdp(3, 3, 2)
    q = plan(rewards, transitions, 4)
    assert q.shape == (4, 3, 2)
    for step, state in itertools.product(range(4), range(3)):
        assert q[step, state].max() == pytest.approx(brute_force_value(rewards, transitions, state, 4 - step))
    batched = plan(np.stack([rewards, rewards + 1]), np.stack([transitions, transitions]), 4)
    np.testing.assert_allclose(
        batched[1] - batched[0], (4 - np.arange(4))[:, None, None] * np.ones((4, 3, 2))
    )


def test_the_posterior_starts_at_the_prior_and_follows_its_closed_form():
    posterior = TabularPosterior(1, 3, 2)
    rewards, transitions = posterior.mean_mdp()
    np.testing.assert_allclose(rewards, 1.0)
    np.testing.assert_allclose(transitions, 1 / 3)
    for reward, nxt in [(2.0, 1), (4.0, 1), (0.5, 2)]:
        posterior.update(np.array([0]), np.array([1]), np.array([reward]), np.array([nxt]))
    rewards, transitions = posterior.mean_mdp()
    assert rewards[0, 0, 1] == pytest.approx((1 + 6.5) / (1 + 3))  # prior N(1, 1), unit noise
    np.testing.assert_allclose(transitions[0, 0, 1], [1 / 6, 3 / 6, 2 / 6])  # Dirichlet(1, 1, 1) + counts
    draws = [posterior.sample_mdp(np.random.default_rng(seed)) for seed in range(4000)]
    assert np.mean([d[0][0, 0, 1] for d in draws]) == pytest.approx(7.5 / 4, abs=0.03)
    assert np.var([d[0][0, 0, 1] for d in draws]) == pytest.approx(1 / 4, rel=0.1)
    np.testing.assert_allclose(np.mean([d[1][0, 0, 1] for d in draws], 0), [1 / 6, 3 / 6, 2 / 6], atol=0.01)


def test_learning_players_improve_over_the_trial_and_beat_random_play():
    """300 random MDPs, trials of 10 episodes: random play earns about 10 per episode (rewards of mean 1)
    in every episode; the players that learn earn more in the last episode than in the first."""
    drawn = [random_mdp(seed, 10, 5) for seed in range(300)]
    means, transitions = (np.stack(part) for part in zip(*drawn, strict=True))
    returns = {
        name: play_mdps(name, means, transitions, 10, 10, np.random.default_rng(0)) for name in MDP_BASELINES
    }
    assert returns["random"].mean() == pytest.approx(means.mean() * 10, abs=0.5)
    for name in ("PSRL", "optimistic PSRL", "greedy", "ε-greedy"):
        assert returns[name][:, -1].mean() > returns[name][:, 0].mean() + 3, name
        assert returns[name].sum(1).mean() > returns["random"].sum(1).mean() + 20, name
    again = play_mdps("PSRL", means, transitions, 10, 10, np.random.default_rng(0))
    np.testing.assert_array_equal(again, returns["PSRL"])


def test_unknown_players_are_refused():
    means, transitions = random_mdp(0, 3, 2)
    with pytest.raises(ConfigError, match="unknown MDP baseline 'UCRL2'"):
        play_mdps("UCRL2", means[None], transitions[None], 2, 2, np.random.default_rng(0))
