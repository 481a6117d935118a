"""The policy-gradient rules of every RL algorithm in lit-meta, each written once: masked means over
padded sequences, generalised advantage estimation, advantage normalisation, the linear feature baseline,
the low-variance-curvature surrogate of MAML's inner loop and PPO's clipped surrogate (MAML's outer
loop, RL²'s PPO).

All tensors are time-major ``[T, E]``, padded to the longest sequence, with a ``mask`` that is 1 on the
real steps (see :class:`lit_meta.envs.rollouts.Episodes` and :class:`lit_meta.envs.trials.Trials`).
"""

import torch
from torch import Tensor

FEATURE_CLIP = 10.0
"""Observations are clipped to ±this before entering the baseline's features (as in rllab)."""


def linear_baseline_features(observations: Tensor, mask: Tensor) -> Tensor:
    """Features of the linear baseline of Duan et al. 2016 (rllab's ``LinearFeatureBaseline``):
    ``[o, o², t/100, (t/100)², (t/100)³, 1]`` per step, ``[T, E, 2·obs + 4]``; padded steps are zero."""
    steps, episodes = mask.shape
    flat = observations.reshape(steps, episodes, -1).clamp(-FEATURE_CLIP, FEATURE_CLIP)
    time = (torch.arange(steps, dtype=flat.dtype) / 100.0).view(steps, 1, 1).expand(steps, episodes, 1)
    features = torch.cat([flat, flat**2, time, time**2, time**3, torch.ones_like(time)], dim=-1)
    return features * mask.unsqueeze(-1)


def fit_linear_baseline(
    observations: Tensor, mask: Tensor, returns: Tensor, reg_coeff: float = 1e-5
) -> Tensor:
    """Value estimates ``[T, E]`` of the ridge regression of ``returns`` on the baseline features,
    fitted on these same episodes (the MAML paper's baseline, after rllab). As in rllab, the ridge
    coefficient grows tenfold until the normal equations are solvable."""
    features = linear_baseline_features(observations, mask).double()
    flat_features = features.reshape(-1, features.shape[-1])
    targets = (returns * mask).double().reshape(-1)
    gram = flat_features.T @ flat_features
    rhs = flat_features.T @ targets
    identity = torch.eye(gram.shape[0], dtype=gram.dtype)
    for _ in range(5):
        weights, info = torch.linalg.solve_ex(gram + reg_coeff * identity, rhs)
        if info.item() == 0 and torch.isfinite(weights).all():
            break
        reg_coeff *= 10
    return ((features @ weights) * mask.double()).to(returns.dtype)


def discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """Reward-to-go ``Σ_{t' ≥ t} γ^{t'-t} r_{t'}`` within each episode, ``[T, E]``."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = (rewards[t] + gamma * running) * mask[t]
        returns[t] = running
    return returns


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over the steps where ``mask`` is 1 (0 when there are none); the other steps
    count for nothing, even where they hold an overflowed ratio."""
    return torch.where(mask.bool(), values, 0.0).sum() / mask.sum().clamp_min(1.0)


def generalized_advantages(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, gae_lambda: float
) -> Tensor:
    """GAE(γ, λ) of Schulman et al. 2016, ``[T, E]``; masked steps get zero advantage. Only the end of a
    sequence (its last unmasked step) is terminal: the value after it is 0, while every step before it
    bootstraps from the next step's value. Episodes of a task (which end at a goal or at the horizon) are
    such sequences, and so is an RL² trial, whose episode ends inside it are not terminal."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    next_value = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        next_mask = mask[t + 1] if t + 1 < rewards.shape[0] else torch.zeros_like(mask[t])
        delta = rewards[t] + gamma * next_value * next_mask - values[t]
        running = delta + gamma * gae_lambda * running * next_mask
        advantages[t] = running * mask[t]
        next_value = values[t]
    return advantages


def normalize(advantages: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Advantages scaled to zero mean and unit variance over the unmasked steps (zero on the others)."""
    mean = masked_mean(advantages, mask)
    std = masked_mean((advantages - mean) ** 2, mask).sqrt()
    return (advantages - mean) / (std + eps) * mask


def lvc_policy_loss(log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """``−mean_t ρ_t · A_t`` over the unmasked steps, ``ρ_t = π(a_t|s_t) / π_old(a_t|s_t)`` with
    ``log π_old`` the log-probabilities stored when the episodes were sampled (constants): the inner loss.

    This is an importance-weighted REINFORCE surrogate, not learn2learn's ``magic_box`` itself: where
    ``π = π_old`` it has the value (``−mean A``), the gradient (REINFORCE's) and the higher derivatives of
    the per-step DiCE surrogate ``−mean_t magic_box(log π_t)·A_t`` (Foerster et al. 2018), the "low
    variance curvature" estimator of ProMP (Rothfuss et al. 2019): its Hessian keeps the score-function
    term ``∇log π ∇log πᵀ A`` that a plain ``log π · A`` surrogate drops, while each step is weighted by
    its own action's ratio only (full DiCE's cross-time terms are left out, for variance). Away from the
    sampling policy, when the outer loop takes several steps on the same episodes, the ratio
    importance-weights the episodes, where ``magic_box`` would treat them as on-policy.
    """
    return -masked_mean(torch.exp(log_probs - old_log_probs) * advantages, mask)


def ppo_clip_loss(
    log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, mask: Tensor, clip_range: float
) -> Tensor:
    """PPO's clipped surrogate ``−mean_t min(ρ_t A_t, clip(ρ_t, 1 ± ε) A_t)`` over the unmasked steps,
    ``ρ_t = π/π_old``, ``ε = clip_range`` (Schulman et al. 2017). At ``π = π_old`` its gradient is the
    vanilla policy gradient."""
    ratio = torch.exp(log_probs - old_log_probs)
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - clip_range, 1 + clip_range) * advantages)
    return -masked_mean(surrogate, mask)


__all__ = [
    "discounted_returns",
    "fit_linear_baseline",
    "generalized_advantages",
    "linear_baseline_features",
    "lvc_policy_loss",
    "masked_mean",
    "normalize",
    "ppo_clip_loss",
]
