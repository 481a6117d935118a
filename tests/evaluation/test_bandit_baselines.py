"""UCB1 and Thompson sampling: their choices follow their papers' rules, and they play bandits well."""

import numpy as np
import pytest

from lit_meta.errors import ConfigError
from lit_meta.evaluation.bandit_baselines import (
    BANDIT_BASELINES,
    UCB1,
    ThompsonSampling,
    expected_best,
    play_bandit,
    play_bandits,
)

EASY = np.array([0.9, 0.1, 0.1, 0.1, 0.1])


def test_ucb1_pulls_every_arm_once_then_the_largest_upper_confidence_bound():
    policy = UCB1(num_tasks=1, arms=3)
    for arm, reward in [(0, 1.0), (1, 0.0), (2, 1.0)]:
        assert policy.select(np.random.default_rng()).tolist() == [arm]
        policy.update(np.array([arm]), np.array([reward]))
    policy.update(np.array([0]), np.array([0.0]))  # arm 0 again: counts [2, 1, 1], sums [1, 0, 1], t = 4

    bonus = np.sqrt(2 * np.log(4) / np.array([2.0, 1.0, 1.0]))
    expected = np.array([0.5, 0.0, 1.0]) + bonus
    np.testing.assert_allclose(policy.index()[0], expected)
    assert policy.select(np.random.default_rng()).tolist() == [2]

    # arm 2 fails three times: its bound 0.25 + sqrt(2 ln 7 / 4) ≈ 1.23 falls below arm 0's 0.5 + 1.39
    for _ in range(3):
        policy.update(np.array([2]), np.array([0.0]))
    assert policy.index()[0, 0] == pytest.approx(0.5 + np.sqrt(2 * np.log(7) / 2))
    assert policy.select(np.random.default_rng()).tolist() == [1]  # the least pulled: 0 + sqrt(2 ln 7) ≈ 1.97


def test_ucb1_starts_with_one_pull_of_each_arm_in_order():
    """On a bandit with deterministic arms, the rewards of the first pulls are the arms' own."""
    rewards = play_bandit("UCB1", np.array([0.0, 1.0, 0.0, 0.0, 1.0]), pulls=5, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(rewards, [0, 1, 0, 0, 1])


def test_thompson_sampling_draws_from_beta_posteriors_of_its_successes_and_failures():
    policy = ThompsonSampling(num_tasks=2, arms=3)
    policy.update(np.array([0, 2]), np.array([1.0, 0.0]))
    policy.update(np.array([0, 2]), np.array([1.0, 1.0]))
    policy.update(np.array([1, 2]), np.array([0.0, 0.0]))
    np.testing.assert_array_equal(policy.successes, [[2, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(policy.failures, [[0, 1, 0], [0, 0, 2]])

    # the choice is the argmax of one Beta(1 + successes, 1 + failures) draw per arm
    draws = np.random.default_rng(5).beta([[3, 1, 1], [1, 1, 2]], [[1, 2, 1], [1, 1, 3]])
    np.testing.assert_array_equal(policy.select(np.random.default_rng(5)), draws.argmax(axis=1))


def test_thompson_sampling_settles_on_the_only_paying_arm():
    rewards = play_bandit(
        "Thompson sampling", np.array([0.0, 1.0, 0.0]), pulls=60, rng=np.random.default_rng(0)
    )
    assert rewards[-30:].tolist() == [1.0] * 30 and rewards.sum() >= 50


@pytest.mark.parametrize("baseline", sorted(BANDIT_BASELINES))
def test_both_baselines_earn_close_to_the_optimum_and_far_more_than_random_play(baseline):
    rewards = play_bandits(baseline, np.tile(EASY, (200, 1)), pulls=400, rng=np.random.default_rng(0))
    assert rewards.shape == (200, 400) and set(np.unique(rewards)) <= {0.0, 1.0}
    optimum, random_play = EASY.max(), EASY.mean()  # 0.9 and 0.26 per pull
    assert rewards.mean() > 0.75 and rewards.mean() > 2.5 * random_play
    assert rewards[:, -100:].mean() > 0.84 and rewards[:, -100:].mean() <= optimum + 0.03
    np.testing.assert_allclose(expected_best(np.tile(EASY, (200, 1)), 400), 360.0)


@pytest.mark.parametrize("baseline", sorted(BANDIT_BASELINES))
def test_the_same_seed_plays_the_same_pulls(baseline):
    means = np.random.default_rng(0).random((50, 5))
    first = play_bandits(baseline, means, 100, np.random.default_rng(1))
    assert np.array_equal(first, play_bandits(baseline, means, 100, np.random.default_rng(1)))
    assert not np.array_equal(first, play_bandits(baseline, means, 100, np.random.default_rng(2)))
    single = play_bandit(baseline, means[0], 100, np.random.default_rng(1))
    assert np.array_equal(single, play_bandit(baseline, means[0], 100, np.random.default_rng(1)))


def test_expected_best_is_pulls_times_the_best_arm():
    assert expected_best(np.array([0.2, 0.7, 0.5]), 100) == pytest.approx(70.0)
    np.testing.assert_allclose(expected_best(np.array([[0.2, 0.7], [0.9, 0.1]]), 10), [7.0, 9.0])


@pytest.mark.parametrize(
    ("play", "message"),
    [
        (
            lambda: play_bandit("Gittins", EASY, 10, np.random.default_rng(0)),
            "unknown bandit baseline 'Gittins'",
        ),
        (lambda: play_bandit("UCB1", EASY, 0, np.random.default_rng(0)), "number of pulls must be positive"),
        (lambda: play_bandit("UCB1", EASY[None], 10, np.random.default_rng(0)), "must have shape \\[arms\\]"),
        (
            lambda: play_bandits("UCB1", EASY, 10, np.random.default_rng(0)),
            "must have shape \\[tasks, arms\\]",
        ),
        (
            lambda: play_bandit("UCB1", EASY + 0.5, 10, np.random.default_rng(0)),
            "probabilities in \\[0, 1\\]",
        ),
    ],
)
def test_bad_input_is_refused_in_one_sentence(play, message):
    with pytest.raises(ConfigError, match=message):
        play()
