"""The RL² paper's bandit baselines (Table 1): their choices follow their papers' rules, the Gittins
indices match Gittins' published table, tuning picks the best value of a grid, and they play bandits well."""

import numpy as np
import pytest

from lit_meta.errors import ConfigError
from lit_meta.evaluation.bandit_baselines import (
    BANDIT_BASELINES,
    TUNED_PARAMETERS,
    UCB1,
    EpsilonGreedy,
    GittinsIndex,
    OptimisticThompsonSampling,
    ThompsonSampling,
    expected_best,
    gittins_indices,
    play_bandit,
    play_bandits,
    tune_baseline,
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


@pytest.mark.parametrize("baseline", sorted(set(BANDIT_BASELINES) - {"greedy"}))
def test_the_baselines_earn_close_to_the_optimum_and_far_more_than_random_play(baseline):
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


# Gittins (1979), as reprinted in Christian & Griffiths, "Algorithms to Live By" (2016), chapter 2: the
# index of an arm with w wins and l losses under a uniform prior, discount 0.9
PUBLISHED_GITTINS_09 = {(0, 0): 0.7029, (1, 1): 0.6346, (2, 2): 0.6010, (9, 1): 0.8695, (9, 6): 0.6300}


def test_gittins_indices_match_the_published_table(tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_META_CACHE", str(tmp_path))
    table = gittins_indices(0.9, 20)
    for (wins, losses), published in PUBLISHED_GITTINS_09.items():
        assert table[wins, losses] == pytest.approx(published, abs=6e-5), (wins, losses)
    assert list(tmp_path.glob("gittins/*.npy"))  # cached: the second call reads the file
    np.testing.assert_array_equal(gittins_indices(0.9, 20), table)


def test_gittins_indices_are_optimistic_and_monotone(tmp_path, monkeypatch):
    """An index is above its posterior mean (the value of learning), rises with wins, falls with losses,
    and rises with the discount (the longer the future, the more exploring is worth)."""
    monkeypatch.setenv("LIT_META_CACHE", str(tmp_path))
    table, patient = gittins_indices(0.9, 12), gittins_indices(0.98, 12)
    wins, losses = np.meshgrid(np.arange(13), np.arange(13), indexing="ij")
    inside = wins + losses <= 12
    assert np.all(table[inside] > ((1 + wins) / (2 + wins + losses))[inside])
    assert np.all(np.isnan(table[~inside]))
    assert np.all(np.diff(table[:6, :6], axis=0) > 0) and np.all(np.diff(table[:6, :6], axis=1) < 0)
    assert np.all(patient[inside] > table[inside])


def test_the_gittins_player_explores_where_greedy_exploits(tmp_path, monkeypatch):
    """A fresh arm (mean 0.5, index 0.7029) against one at 9 wins and 6 losses (mean 0.588, index 0.6300):
    the Gittins player tries the fresh arm, the greedy one stays."""
    monkeypatch.setenv("LIT_META_CACHE", str(tmp_path))
    gittins, greedy = GittinsIndex(1, 2, discount=0.9, max_pulls=20), EpsilonGreedy(1, 2)
    for player in (gittins, greedy):
        player.successes[0, 1], player.failures[0, 1] = 9, 6
    assert gittins.select(np.random.default_rng(0)).tolist() == [0]
    assert greedy.select(np.random.default_rng(0)).tolist() == [1]


def test_greedy_finds_the_paying_arm_of_a_deterministic_bandit_and_stays():
    """Arms paying 0, 1, 0: each losing arm is left after one loss (its mean 1/3 < 1/2), so at most two
    pulls are lost, and once the paying arm has paid it is never left."""
    rewards = play_bandits("greedy", np.tile([0.0, 1.0, 0.0], (500, 1)), 10, np.random.default_rng(0))
    assert rewards.sum(1).min() >= 8
    first_win = rewards.argmax(1)
    assert all(rewards[i, first_win[i] :].all() for i in range(500))
    # ties at the start are broken at random: every arm is somebody's first pull
    assert set(np.unique(rewards[:, 0])) == {0.0, 1.0}


def test_epsilon_greedy_explores_at_rate_epsilon():
    """On a bandit whose arm 0 always pays, ε-greedy leaves it on a share ε·(K−1)/K of its pulls."""
    rewards = play_bandits(
        "ε-greedy", np.tile([1.0, 0, 0, 0], (2000, 1)), 50, np.random.default_rng(0), epsilon=0.2
    )
    assert 1 - rewards[:, 10:].mean() == pytest.approx(0.2 * 3 / 4, abs=0.01)


def test_optimistic_thompson_sampling_never_values_an_arm_below_its_mean():
    """A uniform arm (mean 0.5) against a well-known worse one (Beta(40, 60), mean 0.4): Thompson sampling
    picks the uniform arm when its draw is higher, about 60% of the time; optimistic Thompson sampling
    values the uniform arm at 0.5 or more, so picks it nearly always."""
    plain, optimistic = ThompsonSampling(20000, 2), OptimisticThompsonSampling(20000, 2)
    for player in (plain, optimistic):
        player.successes[:, 1], player.failures[:, 1] = 39, 59
    assert plain.select(np.random.default_rng(0)).mean() == pytest.approx(0.4, abs=0.02)  # arm 1: 40%
    assert optimistic.select(np.random.default_rng(0)).mean() < 0.03


def test_ucb1_without_exploration_exploits_its_first_estimates():
    rewards = play_bandit(
        "UCB1", np.array([0.0, 1.0, 0.0, 1.0]), 12, np.random.default_rng(0), exploration=0.0
    )
    assert rewards.tolist() == [0.0, 1.0, 0.0, 1.0] + [1.0] * 8


@pytest.mark.parametrize(
    ("name", "expected"), [("ε-greedy", {"epsilon": 0.0}), ("UCB1 (tuned)", {"exploration": 0.0})]
)
def test_tuning_picks_the_least_exploration_where_exploring_never_pays(name, expected):
    """Deterministic bandits with one paying arm: once it is found, every exploring pull is lost."""
    means = np.zeros((300, 5))
    means[np.arange(300), np.random.default_rng(0).integers(0, 5, 300)] = 1.0
    assert tune_baseline(name, means, 30, np.random.default_rng(0)) == expected
    assert tune_baseline("Thompson sampling", means, 30, np.random.default_rng(0)) == {}


def test_tuning_gives_gittins_a_longer_discount_for_a_longer_horizon(tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_META_CACHE", str(tmp_path))
    monkeypatch.setitem(TUNED_PARAMETERS, "Gittins index", ("discount", (0.5, 0.7, 0.9)))  # quick tables
    means = np.random.default_rng(0).random((1000, 5))
    short = tune_baseline("Gittins index", means, 5, np.random.default_rng(1))["discount"]
    long = tune_baseline("Gittins index", means, 100, np.random.default_rng(1))["discount"]
    assert short < long
