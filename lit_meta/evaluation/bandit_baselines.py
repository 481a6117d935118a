"""Hand-designed bandit algorithms, the yardsticks of RL²'s bandit experiments (Duan et al., 2016, Table 1).

Each baseline plays many Bernoulli bandits at once: a policy holds the statistics of ``T`` bandits of
``K`` arms, ``select(rng)`` picks one arm per bandit and ``update(arms, rewards)`` records the outcomes.

rewards = play_bandits("UCB1", arm_means, pulls=100, rng=np.random.default_rng(0))  # [T, 100]
regret = expected_best(arm_means, 100) - rewards.sum(axis=1)
"""

import numpy as np

from lit_meta.errors import require, require_positive


class UCB1:
    """UCB1 (Auer, Cesa-Bianchi & Fischer, 2002, Figure 1): pull each arm once, then the arm maximising
    its mean reward plus ``sqrt(2 ln t / n_a)``, with ``t`` the pulls so far and ``n_a`` the arm's pulls.
    Ties go to the lowest arm."""

    def __init__(self, num_tasks: int, arms: int) -> None:
        self.counts = np.zeros((num_tasks, arms))
        self.sums = np.zeros((num_tasks, arms))
        self.t = 0

    def index(self) -> np.ndarray:
        """Each arm's upper confidence bound, ``[T, K]``; infinite for an arm never pulled."""
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = self.sums / self.counts + np.sqrt(2.0 * np.log(max(self.t, 1)) / self.counts)
        return np.where(self.counts > 0, bound, np.inf)

    def select(self, rng: np.random.Generator) -> np.ndarray:
        return np.argmax(self.index(), axis=1)

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.arange(len(arms))
        self.counts[rows, arms] += 1
        self.sums[rows, arms] += rewards
        self.t += 1


class ThompsonSampling:
    """Thompson sampling (Thompson, 1933; Chapelle & Li, 2011, Algorithm 2): a Beta(1 + successes,
    1 + failures) posterior per arm, starting from the uniform Beta(1, 1); each pull goes to the arm
    whose posterior draw is largest."""

    def __init__(self, num_tasks: int, arms: int) -> None:
        self.successes = np.zeros((num_tasks, arms))
        self.failures = np.zeros((num_tasks, arms))

    def select(self, rng: np.random.Generator) -> np.ndarray:
        return np.argmax(rng.beta(1.0 + self.successes, 1.0 + self.failures), axis=1)

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.arange(len(arms))
        self.successes[rows, arms] += rewards
        self.failures[rows, arms] += 1.0 - rewards


BANDIT_BASELINES: dict[str, type[UCB1] | type[ThompsonSampling]] = {
    "UCB1": UCB1,
    "Thompson sampling": ThompsonSampling,
}
"""Name -> policy class, constructed as ``cls(num_tasks, arms)``."""


def play_bandits(baseline: str, arm_means: np.ndarray, pulls: int, rng: np.random.Generator) -> np.ndarray:
    """``baseline`` playing ``pulls`` pulls on each of ``T`` Bernoulli bandits with success probabilities
    ``arm_means`` (``[T, K]``): the 0/1 reward of every pull, ``[T, pulls]``, reproducible from ``rng``."""
    require(
        baseline in BANDIT_BASELINES,
        f"unknown bandit baseline '{baseline}'; choose one of {', '.join(BANDIT_BASELINES)}",
    )
    require_positive("the number of pulls", pulls)
    means = np.asarray(arm_means, dtype=float)
    require(means.ndim == 2, f"arm_means must have shape [tasks, arms], got shape {means.shape}")
    require(bool(np.all((means >= 0) & (means <= 1))), "arm_means must be success probabilities in [0, 1]")
    num_tasks, arms = means.shape
    policy = BANDIT_BASELINES[baseline](num_tasks, arms)
    rows = np.arange(num_tasks)
    rewards = np.empty((num_tasks, pulls))
    for pull in range(pulls):
        chosen = policy.select(rng)
        rewards[:, pull] = rng.random(num_tasks) < means[rows, chosen]
        policy.update(chosen, rewards[:, pull])
    return rewards


def play_bandit(baseline: str, arm_means: np.ndarray, pulls: int, rng: np.random.Generator) -> np.ndarray:
    """``baseline`` playing one bandit with success probabilities ``arm_means`` (``[K]``): the reward of
    each pull, ``[pulls]``."""
    means = np.asarray(arm_means, dtype=float)
    require(means.ndim == 1, f"arm_means of one bandit must have shape [arms], got shape {means.shape}")
    return play_bandits(baseline, means[None], pulls, rng)[0]


def expected_best(arm_means: np.ndarray, pulls: int) -> np.ndarray | float:
    """The expected total reward of always pulling the best arm, ``pulls · max_a p_a``: the reference of
    regret. One value per bandit for ``[T, K]`` means, a float for ``[K]``."""
    best = pulls * np.max(np.asarray(arm_means, dtype=float), axis=-1)
    return float(best) if np.ndim(best) == 0 else best
