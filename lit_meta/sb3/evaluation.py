"""The metric of the "Day 29: Meta-Reinforcement Learning" specification, for SB3 learners: the return
on a new task after 0, 1, ..., K rounds of inner training, starting from the meta-learned initialisation
or from a fresh random one."""

from collections.abc import Callable

import gymnasium as gym
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from lit_meta.errors import require_positive
from lit_meta.sb3.meta_algorithm import BaseMetaAlgorithm
from lit_meta.sb3.updates import collected_timesteps, compute_updates


def adaptation_returns(
    meta_algorithm: BaseMetaAlgorithm,
    make_env: Callable[[], gym.Env],
    seed: int,
    steps: int,
    step_timesteps: int,
    episodes: int,
    from_meta: bool = True,
) -> list[float]:
    """Mean return over ``episodes`` evaluation episodes (deterministic actions, on a separate
    environment of the same task, seeded) before adaptation and after each of ``steps`` rounds of
    ``step_timesteps`` timesteps of SB3 training: ``steps + 1`` numbers.

    The learner is seeded with ``seed`` either way, so meta-learned and fresh initialisations see the
    same inner randomness; only the starting weights differ.
    """
    require_positive("episodes", episodes)
    require_positive("step_timesteps", step_timesteps)
    learner = meta_algorithm.adapt(make_env(), seed, timesteps=0, from_meta=from_meta)
    evaluation_env = Monitor(make_env())  # returns as the episodes really were, whatever other wrappers do
    evaluation_env.reset(seed=seed)  # later resets continue this environment's generator

    def mean_return() -> float:
        mean, _ = evaluate_policy(learner, evaluation_env, n_eval_episodes=episodes, deterministic=True)
        return float(mean)

    returns = [mean_return()]
    for _ in range(steps):
        learner.learn(total_timesteps=step_timesteps, reset_num_timesteps=False)
        returns.append(mean_return())
    return returns


def updates_per_step(meta_algorithm: BaseMetaAlgorithm, step_timesteps: int, steps: int) -> list[int]:
    """Cumulative gradient updates after 0..``steps`` rounds of ``step_timesteps`` (the x-axis).

    Each round's ``learn`` completes its last rollout, so a round collects whole rollouts and the
    learner's timestep count carries over to the next round (off-policy warm-up counts once)."""
    cls, kwargs = meta_algorithm.rl_algorithm, meta_algorithm.rl_algo_kwargs
    per_round = collected_timesteps(cls, step_timesteps, **kwargs)
    return [compute_updates(cls, step * per_round, **kwargs) for step in range(steps + 1)]
