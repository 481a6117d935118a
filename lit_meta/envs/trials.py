"""RL² trials (Duan et al. 2016, "RL²: Fast Reinforcement Learning via Slow Reinforcement Learning"),
collected from vectorised gymnasium environments as time-major tensors.

A *trial* is ``episodes`` consecutive episodes of one task played by a recurrent policy whose hidden state
is zero at the start of the trial and carried across its episode boundaries.

Randomness is owned by the caller: each trial has a seed, from which its environment's reset seed and its
own action-noise generator are derived, so a trial's outcome depends on its seed and the policy only
(not on the batch it is played in, nor on any global generator).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from torch import Tensor

from lit_meta.envs.rollouts import SuccessTracker
from lit_meta.errors import require
from lit_meta.nn.recurrent import RecurrentPolicy
from lit_meta.seeding import spawn


@dataclass
class Trials:
    """A batch of ``B`` trials as time-major sequences ``[T, B, ...]``, ``T`` the longest trial's length.

    ``dones[t]`` is 1 where an episode ended at step ``t``; ``mask[t]`` is 1 where step ``t`` belongs to the
    trial (a trial that ended before ``T`` is padded with steps that count for nothing); ``hiddens[t]`` is
    the policy's hidden state before step ``t``; ``episodes_done[t]`` the episodes of the trial completed
    before step ``t`` (the count the policy read while acting); ``episode_returns`` is ``[B, episodes]``.
    """

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    dones: Tensor
    log_probs: Tensor
    values: Tensor
    mask: Tensor
    hiddens: Tensor
    episodes_done: Tensor
    episode_returns: Tensor
    episode_successes: Tensor | None = None
    """``[B, episodes]``: 1 for an episode in which some step reported success (Meta-World); ``None`` when
    the task family reports none."""

    def policy_inputs(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """What the policy read at each step: ``(observation, previous action, previous reward, previous
        done, previous-action mask, episodes done)``; nothing came before the first step (zeros, action
        masked)."""
        action_mask = torch.ones_like(self.rewards)
        action_mask[0] = 0
        previous = (_shift(self.actions), _shift(self.rewards), _shift(self.dones))
        return self.observations, *previous, action_mask, self.episodes_done

    def __len__(self) -> int:
        return self.rewards.shape[1]


def _shift(sequence: Tensor) -> Tensor:
    """``sequence`` delayed by one step, zeros first."""
    return torch.cat([torch.zeros_like(sequence[:1]), sequence[:-1]])


def trial_rngs(seeds: Sequence[int]) -> tuple[list[int], list[np.random.Generator]]:
    """Each trial's environment reset seed and action-noise generator, two independent streams of its seed."""
    streams = [spawn(seed, count=2) for seed in seeds]
    env_seeds = [int(env.generate_state(1)[0]) for env, _ in streams]
    return env_seeds, [np.random.default_rng(noise) for _, noise in streams]


def trial_envs(env_fns: Sequence[Callable[[], gym.Env]]) -> SyncVectorEnv:
    """Environments stepped together for :func:`collect_trials`: a gymnasium ``SyncVectorEnv`` that resets an
    environment in the step that ends its episode (``SAME_STEP`` autoreset), so the next observation is
    already the new episode's first and the policy reads the episode's end in its done flag."""
    return SyncVectorEnv(list(env_fns), autoreset_mode=AutoresetMode.SAME_STEP)


@torch.no_grad()
def collect_trials(
    policy: RecurrentPolicy, envs: SyncVectorEnv, episodes: int, seeds: Sequence[int]
) -> Trials:
    """Play one trial of ``episodes`` episodes in each of ``envs`` (made by :func:`trial_envs`, each set to
    its trial's task), trial ``i`` seeded ``seeds[i]``. Environments whose trial is over keep being
    stepped, masked out, until every trial is over."""
    require(episodes > 0, f"episodes per trial must be positive, got {episodes}")
    require(len(seeds) == envs.num_envs, f"{envs.num_envs} environments were given {len(seeds)} trial seeds")
    require(
        envs.metadata.get("autoreset_mode") == AutoresetMode.SAME_STEP,
        "collect_trials needs environments that reset in the step that ends an episode (see trial_envs)",
    )
    return _play(policy, envs, episodes, seeds)


def _play(policy: RecurrentPolicy, envs: SyncVectorEnv, episodes: int, seeds: Sequence[int]) -> Trials:
    count = envs.num_envs
    env_seeds, noise_rngs = trial_rngs(seeds)
    observation, _ = envs.reset(seed=env_seeds)
    hidden = policy.initial_state(count)
    action_shape = () if policy.discrete else (policy.action_size,)
    previous_action = torch.zeros(
        count, *action_shape, dtype=torch.long if policy.discrete else torch.float32
    )
    previous_reward, previous_done, action_mask = torch.zeros(count), torch.zeros(count), torch.zeros(count)
    finished = np.zeros(count, dtype=np.int64)  # episodes completed by each trial
    running = np.zeros(count)
    returns = np.zeros((count, episodes))
    successes, tracker = np.zeros((count, episodes)), SuccessTracker(count)
    steps: dict[str, list[Tensor]] = {
        key: [] for key in ("obs", "act", "rew", "done", "logp", "val", "mask", "h", "episodes")
    }
    while (finished < episodes).any():
        active = finished < episodes
        observation_tensor, episodes_done = torch.as_tensor(observation), torch.as_tensor(finished).float()
        output = policy.step(
            observation_tensor, previous_action, previous_reward, previous_done, hidden, action_mask,
            episodes_done,
        )  # fmt: skip
        action = policy.sample(output.distribution, _noise(policy, noise_rngs))[0]
        log_prob = output.distribution.log_prob(action.unsqueeze(0))[0]
        env_action = action.numpy()
        if not policy.discrete:
            env_action = np.clip(env_action, policy.action_space.low, policy.action_space.high)
        observation, reward, terminated, truncated, info = envs.step(env_action)
        done = np.logical_or(terminated, truncated)
        running += reward
        tracker.update(info, active)
        for index in np.flatnonzero(done & active):
            returns[index, finished[index]] = running[index]
            successes[index, finished[index]] = tracker.succeeded[index]
            finished[index] += 1
        tracker.succeeded[done] = False
        running[done] = 0.0
        previous_reward = torch.as_tensor(reward, dtype=torch.float32)
        previous_done = torch.as_tensor(done, dtype=torch.float32)
        for key, value in {
            "obs": observation_tensor, "act": action, "rew": previous_reward, "done": previous_done,
            "logp": log_prob, "val": output.values[0], "mask": torch.as_tensor(active, dtype=torch.float32),
            "h": hidden[0], "episodes": episodes_done,
        }.items():  # fmt: skip
            steps[key].append(value)
        hidden, previous_action, action_mask = output.hidden, action, torch.ones(count)
    stack = lambda key: torch.stack(steps[key])  # noqa: E731
    return Trials(
        observations=stack("obs"), actions=stack("act"), rewards=stack("rew"), dones=stack("done"),
        log_probs=stack("logp"), values=stack("val"), mask=stack("mask"), hiddens=stack("h"),
        episodes_done=stack("episodes"),
        episode_returns=torch.as_tensor(returns, dtype=torch.float64),
        episode_successes=torch.as_tensor(successes) if tracker.reported else None,
    )  # fmt: skip


def _noise(policy: RecurrentPolicy, rngs: list[np.random.Generator]) -> Tensor:
    """One draw per trial from its own generator: uniform (categorical) or standard normal (Gaussian)."""
    if policy.discrete:
        return torch.tensor([rng.random() for rng in rngs]).unsqueeze(0)
    return torch.tensor(
        np.stack([rng.standard_normal(policy.action_size) for rng in rngs]), dtype=torch.float32
    )[None]


__all__ = ["Trials", "collect_trials", "trial_envs", "trial_rngs"]
