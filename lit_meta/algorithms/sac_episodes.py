"""The episode loop of multi-task SAC (:class:`~lit_meta.algorithms.mt_sac.MultiTaskSAC`): a training
episode (act, store, one SAC update per environment step, the Reptile meta-update of the VarShare
specification on schedule), deterministic evaluation episodes, and the adaptation of an agent to a task
it has never seen. No Lightning here: a LightningModule schedules these calls.

Episodes interleave acting and learning one environment step at a time, which the vectorised samplers of
:mod:`lit_meta.envs` (whole episodes of a fixed policy) do not do; everything random is drawn from the
episode's seed (actions of the random warm-up and replay batches) or torch's global generator (policy
samples), so the caller seeds or forks that.
"""

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from lit_meta.algorithms.mt_sac import MultiTaskSAC
from lit_meta.algorithms.replay import TaskReplayBuffers
from lit_meta.algorithms.sac import OPTIMIZED_GROUPS, SoftActorCritic
from lit_meta.seeding import stream_generator

ADAPTATION_WARMUP = 64
"""Transitions an unseen task collects (with its policy, not at random) before its first SAC update."""
UNSEEN_TASK = "unseen"
"""The task id an agent gives the task it adapts to (μ = 0: its effective weights are θ)."""


@dataclass(frozen=True)
class MetaUpdates:
    """When training episodes move the shared weights: θ += ε·μ_task for the episode's task (VarShare's
    Reptile meta-update, ε = ``step_size``; ``None``: never) every ``every`` SAC updates counted over the
    run, or (``every=None``) at the end of each episode that updated; the critics' targets follow by
    ``target_sync``."""

    step_size: float | None
    every: int | None = None
    target_sync: str = "copy"


class EpisodeOutcome(NamedTuple):
    """An episode's undiscounted return, the statistics of its last SAC update (empty if none), and the
    run's count of SAC updates after it."""

    episode_return: float
    stats: dict[str, float]
    updates: int


def run_episode(
    agent: SoftActorCritic,
    replay: TaskReplayBuffers,
    env: gym.Env,
    task_id,
    seed: int,
    optimizers: Mapping[str, torch.optim.Optimizer],
    batch_size: int,
    learning_starts: int = 0,
    update_after: int | None = None,
    meta_updates: MetaUpdates | None = None,
    updates: int = 0,
    last_alpha=None,
) -> EpisodeOutcome:
    """One episode of ``agent`` on ``task_id`` in ``env``: at every step act, store the transition in the
    task's buffer and, once it holds ``update_after`` transitions (default: ``batch_size`` and
    ``learning_starts``), take one SAC update on ``batch_size`` of them. While the buffer holds fewer than
    ``learning_starts`` transitions, actions are uniformly random. ``meta_updates`` (training) schedules
    the meta-update, counting SAC updates from ``updates``. ``last_alpha`` (an optimizer wrapper with
    ``step()`` and ``optimizer``, as Lightning's) takes the episode's last temperature step, or a step
    with no gradient if nothing was learnt, so that it steps exactly once per episode."""
    if update_after is None:
        update_after = max(batch_size, learning_starts)
    agent.set_task(task_id)
    rng = stream_generator(seed, 1)  # not the environment's stream (reset below with seed)
    observation, _ = env.reset(seed=seed % 2**31)
    total, stats, done = 0.0, {}, False
    while not done:
        if replay.size(task_id) < learning_starts:
            action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
        else:
            action = agent.act(observation)
        next_observation, reward, terminated, truncated, _ = env.step(action)
        replay.add(task_id, observation, action, reward, next_observation, terminated)
        total += float(reward)
        done = terminated or truncated
        observation = next_observation
        if replay.size(task_id) >= update_after:
            step_optimizers = dict(optimizers)
            if done and last_alpha is not None:
                step_optimizers["alpha"] = last_alpha
            with torch.enable_grad():
                stats = agent.update(replay.sample(task_id, batch_size, rng), step_optimizers)
            updates += 1
            if _meta_update_due(meta_updates, updates):
                agent.meta_update(task_id, meta_updates.step_size, meta_updates.target_sync)
        elif done and last_alpha is not None:
            last_alpha.optimizer.zero_grad()
            last_alpha.step()  # nothing to learn yet; still one step per episode
    if _meta_update_due(meta_updates, None) and stats:
        agent.meta_update(task_id, meta_updates.step_size, meta_updates.target_sync)
    return EpisodeOutcome(total, {name: float(value) for name, value in stats.items()}, updates)


def _meta_update_due(schedule: MetaUpdates | None, updates: int | None) -> bool:
    """Whether ``schedule`` meta-updates after the run's ``updates``-th SAC update (``None``: at the end
    of an episode)."""
    if schedule is None or schedule.step_size is None:
        return False
    if updates is None:
        return schedule.every is None
    return schedule.every is not None and updates % schedule.every == 0


def evaluate_return(agent: SoftActorCritic, env: gym.Env, task_id, seed: int, episodes: int) -> float:
    """Mean return of ``episodes`` deterministic episodes of ``agent`` on ``task_id``, episode ``i`` reset
    with ``seed + i``."""
    agent.set_task(task_id)
    returns = []
    for index in range(episodes):
        observation, _ = env.reset(seed=(seed + index) % 2**31)
        total, done = 0.0, False
        while not done:
            observation, reward, terminated, truncated, _ = env.step(
                agent.act(observation, deterministic=True)
            )
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def adapt_to_new_task(
    agent: MultiTaskSAC,
    env: gym.Env,
    replay: TaskReplayBuffers,
    optimizer_factory: Callable[[list], torch.optim.Optimizer],
    seed: int,
    steps: int,
    episodes: int,
    batch_size: int,
) -> list[float]:
    """Plain SAC on a task ``agent`` has never seen, under the new task id :data:`UNSEEN_TASK` (μ = 0, so
    its effective weights are θ; with per-task temperatures, the temperature starts at the mean of the
    tasks the agent knows, if any): its deterministic return (``episodes`` episodes, reset with ``seed``)
    before and after each of ``steps`` training episodes, ``steps + 1`` numbers. No meta-update and no
    random warm-up; updates on batches drawn with replacement start at the :data:`ADAPTATION_WARMUP`-th
    transition. ``agent`` is copied, not changed; ``optimizer_factory`` builds each group's optimizer."""
    agent = copy.deepcopy(agent)
    agent.set_task(UNSEEN_TASK)
    learned = [value for key, value in agent.log_alpha.items() if key != UNSEEN_TASK]
    if agent.per_task_temperature and learned:
        with torch.no_grad():
            agent.log_alpha[UNSEEN_TASK].copy_(torch.stack(learned).mean())
    groups = agent.parameter_groups()
    optimizers = {name: optimizer_factory(groups[name]) for name in OPTIMIZED_GROUPS}
    row = [evaluate_return(agent, env, UNSEEN_TASK, seed, episodes)]
    for step in range(steps):
        episode_seed = seed + 1000 * (step + 1)
        run_episode(
            agent,
            replay,
            env,
            UNSEEN_TASK,
            episode_seed,
            optimizers,
            batch_size,
            update_after=ADAPTATION_WARMUP,
        )
        row.append(evaluate_return(agent, env, UNSEEN_TASK, seed, episodes))
    return row


__all__ = [
    "ADAPTATION_WARMUP",
    "OPTIMIZED_GROUPS",
    "UNSEEN_TASK",
    "EpisodeOutcome",
    "MetaUpdates",
    "adapt_to_new_task",
    "evaluate_return",
    "run_episode",
]
