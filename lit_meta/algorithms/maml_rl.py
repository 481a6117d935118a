"""MAML for reinforcement learning (Finn, Abbeel & Levine 2017, section 5.3) on top of :class:`MAML`.

A task's support data are episodes of the policy before each inner step, its query data episodes of
the adapted policy. The inner loss is an importance-weighted REINFORCE surrogate ``−mean ρ_t A_t``
(GAE over a linear feature baseline) which, at the policy that sampled the episodes, has the value and
every derivative of the per-step DiCE surrogate built on learn2learn's ``magic_box``, so the
meta-gradient's second-order terms are right (see
:func:`~lit_meta.algorithms.policy_gradient.lvc_policy_loss`); the outer loss is PPO's clipped surrogate
on the post-adaptation episodes. :func:`collect_task` samples the episodes; :class:`MAML`'s ``meta_gradient``
then differentiates through the inner updates exactly as for supervised tasks.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import learn2learn as l2l
import torch
from torch import Tensor, nn

from lit_meta.algorithms.policy_gradient import (
    discounted_returns,
    fit_linear_baseline,
    generalized_advantages,
    lvc_policy_loss,
    normalize,
    ppo_clip_loss,
)
from lit_meta.envs.rollouts import Episodes, EpisodeSampler


@dataclass(frozen=True)
class AdvantageEstimator:
    """GAE(γ, λ) over a linear feature baseline fitted on the same episodes, normalised per batch."""

    gamma: float = 0.99
    gae_lambda: float = 1.0

    def __call__(self, episodes: Episodes) -> Tensor:
        returns = discounted_returns(episodes.rewards, episodes.mask, self.gamma)
        values = fit_linear_baseline(episodes.observations, episodes.mask, returns)
        advantages = generalized_advantages(
            episodes.rewards, values, episodes.mask, self.gamma, self.gae_lambda
        )
        return normalize(advantages, episodes.mask)


def log_probs(policy: nn.Module, episodes: Episodes) -> Tensor:
    """``log π(a_t | s_t)`` of ``policy`` on every step of ``episodes``, ``[T, E]``."""
    return policy(episodes.observations).log_prob(episodes.actions)


def inner_loss(policy: nn.Module, episodes: Episodes, advantages: Tensor) -> Tensor:
    """The adaptation loss: the importance-weighted REINFORCE surrogate of ``policy`` on ``episodes``
    (DiCE's per-step surrogate at the sampling policy), see
    :func:`~lit_meta.algorithms.policy_gradient.lvc_policy_loss`."""
    return lvc_policy_loss(log_probs(policy, episodes), episodes.log_probs, advantages, episodes.mask)


@dataclass
class PolicyGradientTask:
    """One RL task as an :class:`~lit_meta.algorithms.base.AdaptationTask`.

    ``support[k]`` are the episodes sampled before inner step ``k``; ``query`` those sampled after the
    last one (with their sampling log-probabilities, PPO's π_old); advantages are fixed at collection.
    """

    support: list[Episodes]
    support_advantages: list[Tensor]
    query: Episodes
    query_advantages: Tensor
    clip_range: float = 0.2

    def support_loss(self, model: nn.Module, step: int) -> Tensor:
        return inner_loss(model, self.support[step], self.support_advantages[step])

    def query_loss(self, model: nn.Module) -> tuple[Tensor, None]:
        query = self.query
        loss = ppo_clip_loss(
            log_probs(model, query), query.log_probs, self.query_advantages, query.mask, self.clip_range
        )
        return loss, None

    @property
    def return_before(self) -> float:
        """Mean return of the episodes of the unadapted policy."""
        return (self.support[0] if self.support else self.query).returns.mean().item()

    @property
    def return_after(self) -> float:
        """Mean return of the episodes of the adapted policy."""
        return self.query.returns.mean().item()


def adaptation_steps(
    wrapper: l2l.algorithms.MAML,
    sampler: EpisodeSampler,
    task: dict,
    seed: int,
    steps: int,
    advantages: AdvantageEstimator,
) -> Iterator[tuple[Episodes, Tensor]]:
    """Episodes of the policy adapted 0, 1, ..., ``steps`` times to ``task`` (each with its advantages),
    each step a policy-gradient update on the episodes just yielded. No meta-gradient is kept."""
    adapted = wrapper.clone()
    for step in range(steps + 1):
        episodes = sampler.sample(adapted, task, seed + step * sampler.num_envs)
        task_advantages = advantages(episodes)
        yield episodes, task_advantages
        if step < steps:
            with torch.enable_grad():
                adapted.adapt(inner_loss(adapted, episodes, task_advantages), first_order=True)


def collect_task(
    wrapper: l2l.algorithms.MAML,
    sampler: EpisodeSampler,
    task: dict,
    seed: int,
    inner_steps: int,
    advantages: AdvantageEstimator,
    clip_range: float = 0.2,
) -> PolicyGradientTask:
    """Sample the support episodes (before each of ``inner_steps`` updates) and the query episodes (after
    them) of one task. ``inner_steps=0`` gives a task of the unadapted policy alone (joint training)."""
    *support, (query, query_advantages) = adaptation_steps(
        wrapper, sampler, task, seed, inner_steps, advantages
    )
    return PolicyGradientTask(
        support=[episodes for episodes, _ in support],
        support_advantages=[advantage for _, advantage in support],
        query=query,
        query_advantages=query_advantages,
        clip_range=clip_range,
    )


__all__ = [
    "AdvantageEstimator",
    "PolicyGradientTask",
    "adaptation_steps",
    "collect_task",
    "inner_loss",
    "log_probs",
]
