"""Hand-designed players of random tabular MDPs, the yardsticks of RL²'s Table 2 (Duan et al., 2016):
uniformly random play; posterior sampling for RL (PSRL; Strens, 2000; Osband, Russo & Van Roy, 2013);
optimistic PSRL; greedy and ε-greedy play of the posterior-mean MDP. Each plays many MDPs at once, a trial
of ``episodes`` episodes of ``horizon`` steps from state 0, and plans each episode by finite-horizon value
iteration (:func:`plan`) on an MDP from its posterior: Gaussian mean rewards (prior N(1, 1), unit reward
noise known) and Dirichlet transitions (flat prior), the family's own prior.

returns = play_mdps("PSRL", reward_means, transitions, episodes=10, horizon=10, rng=rng)  # [T, 10]
"""

import numpy as np

from lit_meta.errors import require, require_positive


def plan(reward_means: np.ndarray, transitions: np.ndarray, horizon: int) -> np.ndarray:
    """Finite-horizon optimal action values ``Q[..., h, s, a]`` (``h`` steps taken, ``horizon − h`` to go)
    of MDPs with mean rewards ``[..., S, A]`` and next-state distributions ``[..., S, A, S]``."""
    values = np.zeros(reward_means.shape[:-1])  # [..., S]: nothing to go
    q = []
    for _ in range(horizon):
        action_values = reward_means + np.einsum("...san,...n->...sa", transitions, values)
        q.append(action_values)
        values = action_values.max(-1)
    return np.stack(q[::-1], axis=-3)


class TabularPosterior:
    """The posterior over ``T`` MDPs of ``S`` states and ``A`` actions from their transitions so far."""

    def __init__(self, num_tasks: int, states: int, actions: int) -> None:
        self.counts = np.zeros((num_tasks, states, actions, states))
        self.reward_sums = np.zeros((num_tasks, states, actions))

    @property
    def visits(self) -> np.ndarray:
        return self.counts.sum(-1)

    def update(self, states, actions, rewards, next_states) -> None:
        rows = np.arange(len(states))
        self.counts[rows, states, actions, next_states] += 1
        self.reward_sums[rows, states, actions] += rewards

    def mean_mdp(self) -> tuple[np.ndarray, np.ndarray]:
        """The posterior means: rewards ``(1 + Σr) / (1 + n)``, transitions ``(1 + c_s′) / (S + n)``."""
        visits = self.visits
        return (1.0 + self.reward_sums) / (1.0 + visits), (1.0 + self.counts) / (
            self.counts.shape[-1] + visits[..., None]
        )

    def sample_mdp(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One MDP per task drawn from the posterior (rewards N(mean, 1 / (1 + n)), transitions
        Dirichlet(1 + counts))."""
        reward_mean, _ = self.mean_mdp()
        rewards = reward_mean + rng.standard_normal(reward_mean.shape) / np.sqrt(1.0 + self.visits)
        gammas = rng.gamma(1.0 + self.counts)
        return rewards, gammas / gammas.sum(-1, keepdims=True)


def _psrl(posterior, horizon, rng, samples: int = 1) -> np.ndarray:
    """Action values of ``samples`` posterior MDPs, their elementwise largest (1: PSRL)."""
    return np.max([plan(*posterior.sample_mdp(rng), horizon) for _ in range(samples)], axis=0)


MDP_BASELINES = ("random", "PSRL", "optimistic PSRL", "greedy", "ε-greedy")
"""The players of :func:`play_mdps`, the baselines of the RL² paper's Table 2 that fit a CPU."""
OPTIMISTIC_SAMPLES = 5
"""Posterior MDPs optimistic PSRL plans on; it acts on the largest of their action values."""


def play_mdps(
    player: str,
    reward_means: np.ndarray,
    transitions: np.ndarray,
    episodes: int,
    horizon: int,
    rng: np.random.Generator,
    epsilon: float = 0.1,
) -> np.ndarray:
    """``player`` playing a trial of ``episodes`` episodes of ``horizon`` steps from state 0 on each MDP
    (``reward_means [T, S, A]``, ``transitions [T, S, A, S]``; rewards N(mean, 1)): the return of every
    episode, ``[T, episodes]``, reproducible from ``rng``."""
    require(
        player in MDP_BASELINES, f"unknown MDP baseline '{player}'; choose one of {', '.join(MDP_BASELINES)}"
    )
    require_positive("episodes", episodes)
    require_positive("horizon", horizon)
    require(0 <= epsilon <= 1, f"epsilon must be in [0, 1], got {epsilon}")
    num_tasks, states, actions = reward_means.shape
    posterior, rows = TabularPosterior(num_tasks, states, actions), np.arange(num_tasks)
    cumulative = transitions.cumsum(-1)
    returns = np.zeros((num_tasks, episodes))
    for episode in range(episodes):
        if player in ("PSRL", "optimistic PSRL"):
            q = _psrl(posterior, horizon, rng, OPTIMISTIC_SAMPLES if player == "optimistic PSRL" else 1)
        elif player != "random":
            q = plan(*posterior.mean_mdp(), horizon)
        state = np.zeros(num_tasks, dtype=int)
        for step in range(horizon):
            if player == "random":
                action = rng.integers(0, actions, num_tasks)
            else:
                values = q[rows, step, state]
                best = values >= values.max(-1, keepdims=True)
                action = np.argmax(np.where(best, rng.random(values.shape), -1.0), axis=1)  # ties at random
                if player == "ε-greedy":
                    action = np.where(
                        rng.random(num_tasks) < epsilon, rng.integers(0, actions, num_tasks), action
                    )
            reward = reward_means[rows, state, action] + rng.standard_normal(num_tasks)
            next_state = np.minimum(
                (rng.random(num_tasks)[:, None] > cumulative[rows, state, action]).sum(-1), states - 1
            )
            posterior.update(state, action, reward, next_state)
            returns[:, episode] += reward
            state = next_state
    return returns


__all__ = ["MDP_BASELINES", "TabularPosterior", "plan", "play_mdps"]
