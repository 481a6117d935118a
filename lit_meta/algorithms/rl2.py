"""RL² (Duan et al. 2016, "RL²: Fast Reinforcement Learning via Slow Reinforcement Learning") trained with
PPO (Schulman et al. 2017, "Proximal Policy Optimization Algorithms").

A *trial* is ``episodes`` consecutive episodes of one task played by a recurrent policy whose hidden state
is zero at the start of the trial and carried across its episode boundaries. RL²'s objective is the
return of the whole trial: the trial is the MDP, so an episode's end inside a trial is not terminal (the
value after it is bootstrapped) and only the trial's end is. The slow learner is PPO over batches of
trials, each treated as one sequence.

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

from lit_meta.errors import require
from lit_meta.nn.recurrent import RecurrentPolicy


@dataclass(frozen=True)
class PPOConfig:
    """PPO's settings (names as in Schulman et al. 2017 and CleanRL's ``ppo.py``)."""

    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    epochs: int = 4
    minibatches: int = 4
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    max_grad_norm: float = 0.5
    normalize_advantages: bool = True

    def __post_init__(self) -> None:
        require(0 <= self.gamma <= 1, f"gamma must be in [0, 1], got {self.gamma}")
        require(0 <= self.gae_lambda <= 1, f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        require(self.clip_range > 0, f"clip_range must be positive, got {self.clip_range}")
        require(self.epochs > 0, f"ppo_epochs must be positive, got {self.epochs}")
        require(self.minibatches > 0, f"minibatches must be positive, got {self.minibatches}")
        require(self.value_coef >= 0, f"value_coef must be non-negative, got {self.value_coef}")
        require(self.entropy_coef >= 0, f"entropy_coef must be non-negative, got {self.entropy_coef}")
        require(self.max_grad_norm > 0, f"max_grad_norm must be positive, got {self.max_grad_norm}")


@dataclass
class Trials:
    """A batch of ``B`` trials as time-major sequences ``[T, B, ...]``, ``T`` the longest trial's length.

    ``dones[t]`` is 1 where an episode ended at step ``t``; ``mask[t]`` is 1 where step ``t`` belongs to the
    trial (a trial that ended before ``T`` is padded with steps that count for nothing); ``hiddens[t]`` is
    the policy's hidden state before step ``t``; ``episode_returns`` is ``[B, episodes]``.
    """

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    dones: Tensor
    log_probs: Tensor
    values: Tensor
    mask: Tensor
    hiddens: Tensor
    episode_returns: Tensor

    def policy_inputs(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """What the policy read at each step: ``(observation, previous action, previous reward, previous
        done, previous-action mask)``; nothing came before the first step (zeros, action masked)."""
        action_mask = torch.ones_like(self.rewards)
        action_mask[0] = 0
        return self.observations, _shift(self.actions), _shift(self.rewards), _shift(self.dones), action_mask

    def __len__(self) -> int:
        return self.rewards.shape[1]


def _shift(sequence: Tensor) -> Tensor:
    """``sequence`` delayed by one step, zeros first."""
    return torch.cat([torch.zeros_like(sequence[:1]), sequence[:-1]])


def trial_rngs(seeds: Sequence[int]) -> tuple[list[int], list[np.random.Generator]]:
    """Each trial's environment reset seed and action-noise generator, two independent streams of its seed."""
    streams = [np.random.SeedSequence(int(seed)).spawn(2) for seed in seeds]
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
    steps: dict[str, list[Tensor]] = {
        key: [] for key in ("obs", "act", "rew", "done", "logp", "val", "mask", "h")
    }
    while (finished < episodes).any():
        active = finished < episodes
        observation_tensor = torch.as_tensor(observation)
        output = policy.step(
            observation_tensor, previous_action, previous_reward, previous_done, hidden, action_mask
        )
        action = policy.sample(output.distribution, _noise(policy, noise_rngs))[0]
        log_prob = output.distribution.log_prob(action.unsqueeze(0))[0]
        env_action = action.numpy()
        if not policy.discrete:
            env_action = np.clip(env_action, policy.action_space.low, policy.action_space.high)
        observation, reward, terminated, truncated, _ = envs.step(env_action)
        done = np.logical_or(terminated, truncated)
        running += reward
        for index in np.flatnonzero(done & active):
            returns[index, finished[index]] = running[index]
            finished[index] += 1
        running[done] = 0.0
        previous_reward = torch.as_tensor(reward, dtype=torch.float32)
        previous_done = torch.as_tensor(done, dtype=torch.float32)
        for key, value in {
            "obs": observation_tensor, "act": action, "rew": previous_reward, "done": previous_done,
            "logp": log_prob, "val": output.values[0], "mask": torch.as_tensor(active, dtype=torch.float32),
            "h": hidden[0],
        }.items():  # fmt: skip
            steps[key].append(value)
        hidden, previous_action, action_mask = output.hidden, action, torch.ones(count)
    stack = lambda key: torch.stack(steps[key])  # noqa: E731
    return Trials(
        observations=stack("obs"), actions=stack("act"), rewards=stack("rew"), dones=stack("done"),
        log_probs=stack("logp"), values=stack("val"), mask=stack("mask"), hiddens=stack("h"),
        episode_returns=torch.as_tensor(returns, dtype=torch.float64),
    )  # fmt: skip


def _noise(policy: RecurrentPolicy, rngs: list[np.random.Generator]) -> Tensor:
    """One draw per trial from its own generator: uniform (categorical) or standard normal (Gaussian)."""
    if policy.discrete:
        return torch.tensor([rng.random() for rng in rngs]).unsqueeze(0)
    return torch.tensor(
        np.stack([rng.standard_normal(policy.action_size) for rng in rngs]), dtype=torch.float32
    )[None]


def trial_advantages(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, gae_lambda: float
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimates (Schulman et al. 2016) over whole trials ``[T, B]``, and the value
    targets ``advantages + values``.

    Only the end of a trial (its last unmasked step) is terminal; episode ends inside it are bootstrapped
    through, as RL²'s objective is the trial's return. Masked steps get zero advantage.
    """
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        next_mask = mask[t + 1] if t + 1 < rewards.shape[0] else torch.zeros_like(mask[t])
        next_value = values[t + 1] if t + 1 < rewards.shape[0] else torch.zeros_like(values[t])
        delta = rewards[t] + gamma * next_value * next_mask - values[t]
        running = delta + gamma * gae_lambda * next_mask * running
        advantages[t] = running * mask[t]
    return advantages, advantages + values


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def ppo_loss(
    log_probs: Tensor,
    old_log_probs: Tensor,
    advantages: Tensor,
    values: Tensor,
    returns: Tensor,
    entropy: Tensor,
    mask: Tensor,
    clip_range: float,
    value_coef: float,
    entropy_coef: float,
) -> tuple[Tensor, dict[str, float]]:
    """PPO's clipped surrogate, ``-min(r A, clip(r, 1 ± ε) A)`` with ``r = π/π_old``, plus ``value_coef``
    times the squared value error (halved) minus ``entropy_coef`` times the entropy, each averaged over the
    unmasked steps. Also returns statistics: the three terms, an approximate KL and the clipped fraction."""
    log_ratio = log_probs - old_log_probs
    ratio = log_ratio.exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - clip_range, 1 + clip_range) * advantages)
    policy_loss = -masked_mean(surrogate, mask)
    value_loss = 0.5 * masked_mean((values - returns) ** 2, mask)
    entropy_mean = masked_mean(entropy, mask)
    loss = policy_loss + value_coef * value_loss - entropy_coef * entropy_mean
    with torch.no_grad():
        stats = {
            "policy_loss": policy_loss.item(),
            "value_loss": value_loss.item(),
            "entropy": entropy_mean.item(),
            "approx_kl": masked_mean((ratio - 1) - log_ratio, mask).item(),  # Schulman's k3 estimator
            "clip_fraction": masked_mean(((ratio - 1).abs() > clip_range).float(), mask).item(),
        }
    return loss, stats


def normalize(advantages: Tensor, mask: Tensor) -> Tensor:
    """Advantages standardised over the unmasked steps."""
    mean = masked_mean(advantages, mask)
    std = masked_mean((advantages - mean) ** 2, mask).sqrt()
    return (advantages - mean) / (std + 1e-8) * mask


def ppo_update(
    policy: RecurrentPolicy,
    optimizer: torch.optim.Optimizer,
    trials: Trials,
    config: PPOConfig,
    generator: torch.Generator,
    final_optimizer=None,
) -> dict[str, float]:
    """``config.epochs`` passes of PPO over ``trials``, each split at random (``generator``) into
    ``config.minibatches`` minibatches of whole trials, replayed from a zero hidden state; one gradient step
    (norm clipped to ``max_grad_norm``) per minibatch. ``final_optimizer`` (default ``optimizer``) takes the
    last step, for a caller that counts its steps. Returns the last epoch's mean statistics."""
    require(
        config.minibatches <= len(trials),
        f"minibatches ({config.minibatches}) cannot exceed the trials per update ({len(trials)})",
    )
    advantages, returns = trial_advantages(
        trials.rewards, trials.values, trials.mask, config.gamma, config.gae_lambda
    )
    inputs = trials.policy_inputs()
    updates = config.epochs * config.minibatches
    history: list[dict[str, float]] = []
    for update in range(updates):
        if update % config.minibatches == 0:
            order = torch.randperm(len(trials), generator=generator)
            history = []
        index = order.tensor_split(config.minibatches)[update % config.minibatches]
        *sequences, action_mask = (x[:, index] for x in inputs)
        output = policy(*sequences, action_mask=action_mask)
        mask = trials.mask[:, index]
        minibatch_advantages = advantages[:, index]
        if config.normalize_advantages:
            minibatch_advantages = normalize(minibatch_advantages, mask)
        loss, stats = ppo_loss(
            output.distribution.log_prob(trials.actions[:, index]), trials.log_probs[:, index],
            minibatch_advantages, output.values, returns[:, index], output.distribution.entropy(), mask,
            config.clip_range, config.value_coef, config.entropy_coef,
        )  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        stats["grad_norm"] = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm).item()
        ((final_optimizer or optimizer) if update == updates - 1 else optimizer).step()
        history.append(stats)
    return {key: float(np.mean([s[key] for s in history])) for key in history[0]}
