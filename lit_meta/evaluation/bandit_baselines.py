"""Hand-designed bandit algorithms, the yardsticks of RL²'s bandit experiments (Duan et al., 2016, Table 1).

Each baseline plays many Bernoulli bandits at once: a policy holds the statistics of ``T`` bandits of
``K`` arms, ``select(rng)`` picks one arm per bandit and ``update(arms, rewards)`` records the outcomes.

rewards = play_bandits("UCB1", arm_means, pulls=100, rng=np.random.default_rng(0))  # [T, 100]
regret = expected_best(arm_means, 100) - rewards.sum(axis=1)
"""

import hashlib
import os
from pathlib import Path

import numpy as np

from lit_meta.errors import require, require_positive
from lit_meta.files import atomic_write


class BetaBernoulli:
    """Per-arm Beta(1 + successes, 1 + failures) posteriors of ``T`` bandits of ``K`` arms, from the uniform
    prior; ``update(arms, rewards)`` records one pull per bandit. The base of the Bayesian players."""

    def __init__(self, num_tasks: int, arms: int) -> None:
        self.successes = np.zeros((num_tasks, arms))
        self.failures = np.zeros((num_tasks, arms))

    def posterior_mean(self) -> np.ndarray:
        return (1.0 + self.successes) / (2.0 + self.successes + self.failures)

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.arange(len(arms))
        self.successes[rows, arms] += rewards
        self.failures[rows, arms] += 1.0 - rewards


def argmax_random_ties(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The arm of largest value per row, ties broken uniformly at random."""
    best = values >= values.max(axis=1, keepdims=True)
    return np.argmax(np.where(best, rng.random(values.shape), -1.0), axis=1)


class UCB1(BetaBernoulli):
    """UCB1 (Auer, Cesa-Bianchi & Fischer, 2002, Figure 1): pull each arm once, then the arm maximising
    its mean reward plus ``c · sqrt(2 ln t / n_a)``, with ``t`` the pulls so far and ``n_a`` the arm's pulls;
    ``c = 1`` is the paper's, the RL² paper tunes it. Ties go to the lowest arm."""

    def __init__(self, num_tasks: int, arms: int, exploration: float = 1.0) -> None:
        super().__init__(num_tasks, arms)
        require(exploration >= 0, f"UCB1's exploration constant must not be negative, got {exploration}")
        self.exploration, self.t = exploration, 0

    def index(self) -> np.ndarray:
        """Each arm's upper confidence bound, ``[T, K]``; infinite for an arm never pulled."""
        counts = self.successes + self.failures
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = self.exploration * np.sqrt(2.0 * np.log(max(self.t, 1)) / counts)
            bound = self.successes / counts + bonus
        return np.where(counts > 0, bound, np.inf)

    def select(self, rng: np.random.Generator) -> np.ndarray:
        return np.argmax(self.index(), axis=1)

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        super().update(arms, rewards)
        self.t += 1


class ThompsonSampling(BetaBernoulli):
    """Thompson sampling (Thompson, 1933; Chapelle & Li, 2011, Algorithm 2): each pull goes to the arm
    whose draw from its Beta posterior is largest."""

    def select(self, rng: np.random.Generator) -> np.ndarray:
        return np.argmax(rng.beta(1.0 + self.successes, 1.0 + self.failures), axis=1)


class OptimisticThompsonSampling(BetaBernoulli):
    """Optimistic Thompson sampling (May, Korda, Lee & Leslie, 2012): as Thompson sampling, but a draw
    below its arm's posterior mean counts as the mean."""

    def select(self, rng: np.random.Generator) -> np.ndarray:
        draws = rng.beta(1.0 + self.successes, 1.0 + self.failures)
        return np.argmax(np.maximum(draws, self.posterior_mean()), axis=1)


class EpsilonGreedy(BetaBernoulli):
    """With probability ``epsilon`` a uniformly random arm, otherwise the arm of largest posterior mean
    (ties at random); ``epsilon = 0`` is the greedy player."""

    def __init__(self, num_tasks: int, arms: int, epsilon: float = 0.0) -> None:
        super().__init__(num_tasks, arms)
        require(0 <= epsilon <= 1, f"epsilon must be in [0, 1], got {epsilon}")
        self.epsilon = epsilon

    def select(self, rng: np.random.Generator) -> np.ndarray:
        greedy = argmax_random_ties(self.posterior_mean(), rng)
        explore = rng.random(len(greedy)) < self.epsilon
        return np.where(explore, rng.integers(0, self.successes.shape[1], len(greedy)), greedy)


class GittinsIndex(BetaBernoulli):
    """The Gittins index policy (Gittins, 1979) for Beta-Bernoulli arms under discount ``discount``: each
    pull goes to the arm of largest index ν(successes, failures) (:func:`gittins_indices`, ties at random).
    Bayes-optimal for the infinite discounted bandit; the RL² paper plays it on finite horizons with a tuned
    discount. ``max_pulls`` bounds the counts the index table covers."""

    def __init__(self, num_tasks: int, arms: int, discount: float = 0.9, max_pulls: int = 100) -> None:
        super().__init__(num_tasks, arms)
        # one table per discount serves every horizon up to the next hundred pulls (its cost is the depth)
        self.table = gittins_indices(discount, 100 * max(1, -(-max_pulls // 100)))

    def select(self, rng: np.random.Generator) -> np.ndarray:
        last = self.table.shape[0] - 1
        require(
            bool((self.successes + self.failures).max() < last),
            f"the Gittins index table covers {last} pulls of an arm; build the player with more max_pulls",
        )
        indices = self.table[self.successes.astype(int), self.failures.astype(int)]
        return argmax_random_ties(indices, rng)


GITTINS_GRID = 2001
"""Retirement rates λ on an even grid over [0, 1] at which :func:`gittins_indices` values every state; the
index is interpolated between the two grid rates around it."""
GITTINS_TRUNCATION = 1e-5
"""The look-ahead of :func:`gittins_indices` stops where ``discount ** depth`` falls below it."""


def gittins_indices(discount: float, max_pulls: int) -> np.ndarray:
    """The Gittins indices ν[s, f] of a Bernoulli arm with posterior Beta(1 + s, 1 + f), for ``s + f ≤
    max_pulls``, ``[max_pulls + 1, max_pulls + 1]`` (NaN beyond), by calibration (Gittins, 1979): ν is
    the success rate λ of a known arm at which pulling the unknown arm once more, then playing optimally,
    is worth exactly as much as switching to the known arm for good, ``λ / (1 − discount)``.

    For every λ of a grid (:data:`GITTINS_GRID`), one backward induction over the posterior states
    ``s + f ≤ max_pulls + depth`` (``discount ** depth`` < :data:`GITTINS_TRUNCATION`; beyond, an arm is
    valued at its mean) gives each state's advantage of pulling over switching, which falls as λ rises;
    the index is where it crosses zero, interpolated between grid rates. Cached on disk per (discount,
    max_pulls), in ``$LIT_META_CACHE`` or ``~/.cache/lit-meta``."""
    require(0 < discount < 1, f"the Gittins discount must be in (0, 1), got {discount}")
    require_positive("max_pulls", max_pulls)
    cache = Path(os.environ.get("LIT_META_CACHE", Path.home() / ".cache" / "lit-meta")) / "gittins"
    key = hashlib.sha256(f"{discount!r}-{max_pulls}-{GITTINS_GRID}-{GITTINS_TRUNCATION}".encode())
    path = cache / f"indices-{key.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    rates = np.linspace(0.0, 1.0, GITTINS_GRID)[:, None]  # [G, 1]
    switch = rates / (1 - discount)
    last = max_pulls + int(np.ceil(np.log(GITTINS_TRUNCATION) / np.log(discount)))
    successes = np.arange(last + 1)[None]
    value = np.maximum(switch, (1.0 + successes) / (2.0 + last) / (1 - discount))  # level `last`
    table = np.full((max_pulls + 1, max_pulls + 1), np.nan)
    for pulls in range(last - 1, -1, -1):  # the states of `pulls` pulls: s = 0..pulls successes
        mean = (1.0 + successes[:, : pulls + 1]) / (2.0 + pulls)
        pull = mean * (1 + discount * value[:, 1:]) + (1 - mean) * discount * value[:, :-1]
        if pulls <= max_pulls:
            advantage = pull - switch  # [G, pulls + 1], falling along G
            above = (advantage >= 0).sum(0) - 1  # the last grid rate at which pulling is still as good
            below = np.minimum(above + 1, GITTINS_GRID - 1)
            columns = np.arange(pulls + 1)
            lo, hi = advantage[above, columns], advantage[below, columns]
            step = np.where(below > above, lo / np.where(lo > hi, lo - hi, 1.0), 0.0)
            index = rates[above, 0] + step * (rates[below, 0] - rates[above, 0])
            table[columns, pulls - columns] = index
        value = np.maximum(switch, pull)
    cache.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda file: np.save(file, table))
    return table


BANDIT_BASELINES: dict[str, type[BetaBernoulli]] = {
    "UCB1": UCB1,
    "Thompson sampling": ThompsonSampling,
    "optimistic Thompson sampling": OptimisticThompsonSampling,
    "greedy": EpsilonGreedy,
    "ε-greedy": EpsilonGreedy,
    "UCB1 (tuned)": UCB1,
    "Gittins index": GittinsIndex,
}
"""Name -> policy class, constructed as ``cls(num_tasks, arms, **parameters)``; the tuned players'
parameters come from :func:`tune_baseline` (ε-greedy's ε, UCB1's constant, Gittins' discount)."""

TUNED_PARAMETERS: dict[str, tuple[str, tuple[float, ...]]] = {
    "ε-greedy": ("epsilon", (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)),
    "UCB1 (tuned)": ("exploration", (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)),
    "Gittins index": ("discount", (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)),
}
"""The players whose parameter the RL² paper tunes, that parameter and the grid it is tuned over."""


def tune_baseline(name: str, arm_means: np.ndarray, pulls: int, rng: np.random.Generator) -> dict:
    """The value of the tuned parameter of ``name`` (:data:`TUNED_PARAMETERS`) earning the most reward in
    ``pulls`` pulls of the training bandits ``arm_means`` ``[T, K]`` (the same draws for every value),
    as ``{parameter: value}``; ``{}`` for a player without one."""
    if name not in TUNED_PARAMETERS:
        return {}
    parameter, grid = TUNED_PARAMETERS[name]
    seed = int(rng.integers(2**32))
    totals = [
        play_bandits(name, arm_means, pulls, np.random.default_rng(seed), **{parameter: value}).sum(1).mean()
        for value in grid
    ]
    return {parameter: grid[int(np.argmax(totals))]}


def play_bandits(
    baseline: str, arm_means: np.ndarray, pulls: int, rng: np.random.Generator, **parameters: float
) -> np.ndarray:
    """``baseline`` (with ``parameters``, e.g. ``epsilon``) playing ``pulls`` pulls on each of ``T``
    Bernoulli bandits with success probabilities ``arm_means`` (``[T, K]``): the 0/1 reward of every pull,
    ``[T, pulls]``, reproducible from ``rng``."""
    require(
        baseline in BANDIT_BASELINES,
        f"unknown bandit baseline '{baseline}'; choose one of {', '.join(BANDIT_BASELINES)}",
    )
    require_positive("the number of pulls", pulls)
    means = np.asarray(arm_means, dtype=float)
    require(means.ndim == 2, f"arm_means must have shape [tasks, arms], got shape {means.shape}")
    require(bool(np.all((means >= 0) & (means <= 1))), "arm_means must be success probabilities in [0, 1]")
    num_tasks, arms = means.shape
    if baseline == "Gittins index":
        parameters = {"max_pulls": pulls, **parameters}
    policy = BANDIT_BASELINES[baseline](num_tasks, arms, **parameters)
    rows = np.arange(num_tasks)
    rewards = np.empty((num_tasks, pulls))
    for pull in range(pulls):
        chosen = policy.select(rng)
        rewards[:, pull] = rng.random(num_tasks) < means[rows, chosen]
        policy.update(chosen, rewards[:, pull])
    return rewards


def play_bandit(
    baseline: str, arm_means: np.ndarray, pulls: int, rng: np.random.Generator, **parameters: float
) -> np.ndarray:
    """``baseline`` (with ``parameters``) playing one bandit with success probabilities ``arm_means``
    (``[K]``): the reward of each pull, ``[pulls]``."""
    means = np.asarray(arm_means, dtype=float)
    require(means.ndim == 1, f"arm_means of one bandit must have shape [arms], got shape {means.shape}")
    return play_bandits(baseline, means[None], pulls, rng, **parameters)[0]


def expected_best(arm_means: np.ndarray, pulls: int) -> np.ndarray | float:
    """The expected total reward of always pulling the best arm, ``pulls · max_a p_a``: the reference of
    regret. One value per bandit for ``[T, K]`` means, a float for ``[K]``."""
    best = pulls * np.max(np.asarray(arm_means, dtype=float), axis=-1)
    return float(best) if np.ndim(best) == 0 else best
