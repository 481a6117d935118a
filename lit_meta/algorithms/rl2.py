"""RL² (Duan et al. 2016, "RL²: Fast Reinforcement Learning via Slow Reinforcement Learning") trained with
PPO (Schulman et al. 2017, "Proximal Policy Optimization Algorithms"): the update. Trials are collected
by :mod:`lit_meta.envs.trials`; the policy-gradient rules (GAE, normalisation, PPO's clipped surrogate)
are those of :mod:`lit_meta.algorithms.policy_gradient`.

RL²'s objective is the return of the whole trial: the trial is the MDP, so an episode's end inside a trial
is not terminal (the value after it is bootstrapped) and only the trial's end is. The slow learner is PPO
over batches of trials, each treated as one sequence.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lit_meta.algorithms.policy_gradient import generalized_advantages, masked_mean, normalize, ppo_clip_loss
from lit_meta.envs.trials import Trials
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


def trial_advantages(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, gae_lambda: float
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimates over whole trials ``[T, B]`` (only a trial's end is terminal, see
    :func:`~lit_meta.algorithms.policy_gradient.generalized_advantages`), and the value targets
    ``advantages + values``."""
    advantages = generalized_advantages(rewards, values, mask, gamma, gae_lambda)
    return advantages, advantages + values


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
    """PPO's clipped surrogate (:func:`~lit_meta.algorithms.policy_gradient.ppo_clip_loss`) plus
    ``value_coef`` times the squared value error (halved) minus ``entropy_coef`` times the entropy, each
    averaged over the unmasked steps. Also returns statistics: the three terms, an approximate KL and the
    clipped fraction."""
    policy_loss = ppo_clip_loss(log_probs, old_log_probs, advantages, mask, clip_range)
    value_loss = 0.5 * masked_mean((values - returns) ** 2, mask)
    entropy_mean = masked_mean(entropy, mask)
    loss = policy_loss + value_coef * value_loss - entropy_coef * entropy_mean
    with torch.no_grad():
        log_ratio = log_probs - old_log_probs
        ratio = log_ratio.exp()
        stats = {
            "policy_loss": policy_loss.item(),
            "value_loss": value_loss.item(),
            "entropy": entropy_mean.item(),
            "approx_kl": masked_mean((ratio - 1) - log_ratio, mask).item(),  # Schulman's k3 estimator
            "clip_fraction": masked_mean(((ratio - 1).abs() > clip_range).float(), mask).item(),
        }
    return loss, stats


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
    per minibatch, its norm clipped to ``max_grad_norm`` over each of the policy's
    :meth:`~lit_meta.nn.recurrent.RecurrentPolicy.gradient_groups`. ``final_optimizer`` (default
    ``optimizer``) takes the last step, for a caller that counts its steps. Returns the last epoch's mean
    statistics."""
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
        *sequences, action_mask, episodes_done = (x[:, index] for x in inputs)
        output = policy(*sequences, action_mask=action_mask, episodes_done=episodes_done)
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
        groups = policy.gradient_groups()
        norms = [torch.nn.utils.clip_grad_norm_(group, config.max_grad_norm) for group in groups]
        stats["grad_norm"] = norms[0].item()
        if len(norms) > 1:
            stats["critic_grad_norm"] = norms[1].item()
        ((final_optimizer or optimizer) if update == updates - 1 else optimizer).step()
        history.append(stats)
    return {key: float(np.mean([s[key] for s in history])) for key in history[0]}


__all__ = ["PPOConfig", "ppo_loss", "ppo_update", "trial_advantages"]
