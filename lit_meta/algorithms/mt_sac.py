"""Multi-task Soft Actor-Critic over VarShare networks (the "VarShare + Reptile" specification).

SAC as in Haarnoja et al. (2018), "Soft Actor-Critic Algorithms and Applications": a tanh-squashed
Gaussian policy, twin Q-functions with Polyak-averaged targets, and automatic entropy tuning; the
temperature is one per task by default, as garage's MT-SAC (Yu et al., 2019, "Meta-World"). Every
network is a :class:`~lit_meta.nn.varshare.VarShareMLP` (task weights ``θ + μ_i``) and
:meth:`MultiTaskSAC.meta_update` is the specification's Reptile meta-update of the policy and both
critics.

Replay is kept per task (:class:`~lit_meta.algorithms.replay.TaskReplayBuffers`), so a task's batch never
holds another task's transitions. No Lightning here: a LightningModule drives :meth:`MultiTaskSAC.update`
with the optimizers built from :meth:`MultiTaskSAC.parameter_groups`.
"""

import copy
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_meta.algorithms.replay import BATCH_KEYS
from lit_meta.algorithms.varshare import TARGET_SYNCS, sync_targets_, varshare_meta_update_
from lit_meta.errors import ConfigError, require, require_positive
from lit_meta.nn.varshare import VarShareMLP

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


def _as_bound(value, action_size: int, name: str) -> Tensor:
    bound = torch.as_tensor(value, dtype=torch.float32)
    require(bound.numel() in (1, action_size), f"{name} must be a number or {action_size} numbers")
    require(bool(torch.isfinite(bound).all()), f"{name} must be finite")
    return bound.reshape(-1).expand(action_size).clone()


class MultiTaskSAC(nn.Module):
    """SAC's policy, twin critics, their targets and the temperatures, all per task through VarShare.

    Call :meth:`set_task` before :meth:`act`, :meth:`losses` or :meth:`update`. Every task a run will
    see should be in ``task_ids`` before the optimizers are built: a task first met in :meth:`set_task`
    gets new parameters (zero μ, a new temperature) that existing optimizers do not hold.
    """

    def __init__(
        self,
        observation_size: int,
        action_size: int,
        action_low,
        action_high,
        task_ids: Iterable,
        hidden_sizes: Sequence[int] = (256, 256),
        gamma: float = 0.99,
        tau: float = 0.005,
        init_temperature: float = 1.0,
        per_task_temperature: bool = True,
        target_entropy: float | None = None,
        mu_penalty: float = 0.0,
    ) -> None:
        super().__init__()
        require_positive("observation_size", observation_size)
        require_positive("action_size", action_size)
        low = _as_bound(action_low, action_size, "action_low")
        high = _as_bound(action_high, action_size, "action_high")
        require(bool((low < high).all()), "action_low must be below action_high in every dimension")
        require(0 <= gamma <= 1, f"gamma must be in [0, 1], got {gamma}")
        require(0 < tau <= 1, f"tau must be in (0, 1], got {tau}")
        require_positive("init_temperature", init_temperature)
        require(mu_penalty >= 0, f"mu_penalty must not be negative, got {mu_penalty}")
        task_ids = list(task_ids)
        require(len(task_ids) > 0, "task_ids must name at least one task")
        self.observation_size, self.action_size = observation_size, action_size
        self.gamma, self.tau, self.mu_penalty = gamma, tau, mu_penalty
        self.init_temperature, self.per_task_temperature = init_temperature, per_task_temperature
        self.target_entropy = float(-action_size if target_entropy is None else target_entropy)
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)
        hidden_sizes = list(hidden_sizes)
        self.policy = VarShareMLP(observation_size, 2 * action_size, hidden_sizes, task_ids=task_ids)
        self.q1 = VarShareMLP(observation_size + action_size, 1, hidden_sizes, task_ids=task_ids)
        self.q2 = VarShareMLP(observation_size + action_size, 1, hidden_sizes, task_ids=task_ids)
        self.q1_target = copy.deepcopy(self.q1).requires_grad_(False)
        self.q2_target = copy.deepcopy(self.q2).requires_grad_(False)
        self.log_alpha = nn.ParameterDict()
        self.active_task = None
        for task_id in task_ids if per_task_temperature else ["shared"]:
            self._add_temperature(str(task_id))

    # --- tasks -------------------------------------------------------------------------------------------

    def _add_temperature(self, key: str) -> None:
        if key not in self.log_alpha:
            device = self.action_scale.device
            self.log_alpha[key] = nn.Parameter(torch.tensor(math.log(self.init_temperature), device=device))

    def _alpha_key(self, task_id) -> str:
        return str(task_id) if self.per_task_temperature else "shared"

    def networks(self) -> dict[str, VarShareMLP]:
        """The policy, the critics and their targets, by attribute name."""
        names = ("policy", "q1", "q2", "q1_target", "q2_target")
        return {name: getattr(self, name) for name in names}

    def set_task(self, task_id) -> None:
        """Make ``task_id`` active in all networks; a new task gets μ = 0 everywhere (its weights are θ)
        and, with per-task temperatures, a temperature of ``init_temperature``."""
        for name, network in self.networks().items():
            network.set_task(task_id)
            if name.endswith("_target"):
                network.requires_grad_(False)
        self._add_temperature(self._alpha_key(task_id))
        self.active_task = task_id

    def _require_task(self) -> str:
        require(self.active_task is not None, "call set_task before using the multi-task SAC agent")
        return str(self.active_task)

    def log_temperature(self, task_id=None) -> Tensor:
        """``log α`` of ``task_id`` (the active task by default)."""
        task_id = self._require_task() if task_id is None else task_id
        key = self._alpha_key(task_id)
        require(key in self.log_alpha, f"task {task_id!r} has no temperature; call set_task first")
        return self.log_alpha[key]

    # --- policy ------------------------------------------------------------------------------------------

    def _sample(self, obs: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Action ``tanh(m + σ·ε)·scale + bias`` and its log-probability for the active task, ε = ``noise``
        (standard normal when None). The log-probability is the Gaussian's minus
        ``Σ log(scale·(1 − tanh(u)²))``, with ``log(1 − tanh(u)²) = 2(log 2 − u − softplus(−2u))``."""
        self._require_task()
        mean, log_std = self.policy(obs).chunk(2, dim=-1)
        std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
        noise = torch.randn_like(mean) if noise is None else noise
        pre_tanh = mean + std * noise
        action = torch.tanh(pre_tanh) * self.action_scale + self.action_bias
        gaussian = torch.distributions.Normal(mean, std).log_prob(pre_tanh)
        log_det = 2 * (math.log(2) - pre_tanh - F.softplus(-2 * pre_tanh)) + self.action_scale.log()
        return action, (gaussian - log_det).sum(-1)

    @torch.no_grad()
    def act(self, observation: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action(s) for ``observation`` (one ``[O]`` or a batch ``[N, O]``) in the active task: a sample
        of the policy, or ``tanh(mean)`` rescaled when ``deterministic``."""
        obs = torch.as_tensor(np.asarray(observation), dtype=torch.float32, device=self.action_scale.device)
        if deterministic:
            self._require_task()
            mean = self.policy(obs).chunk(2, dim=-1)[0]
            action = torch.tanh(mean) * self.action_scale + self.action_bias
        else:
            action = self._sample(obs)[0]
        return action.cpu().numpy()

    # --- losses ------------------------------------------------------------------------------------------

    @staticmethod
    def _q(network: nn.Module, obs: Tensor, action: Tensor) -> Tensor:
        return network(torch.cat([obs, action], dim=-1)).squeeze(-1)

    @torch.no_grad()
    def critic_target(self, batch: Mapping[str, Tensor]) -> Tensor:
        """``y = r + γ(1 − terminated)(min_k Q_k^target(s′, a′) − α log π(a′|s′))``, ``a′ ~ π(·|s′)``."""
        next_action, next_log_prob = self._sample(batch["next_obs"])
        next_q = torch.min(
            self._q(self.q1_target, batch["next_obs"], next_action),
            self._q(self.q2_target, batch["next_obs"], next_action),
        )
        alpha = self.log_temperature().exp()
        return batch["reward"] + self.gamma * (1 - batch["terminated"]) * (next_q - alpha * next_log_prob)

    def losses(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """SAC's critic, actor and temperature losses on ``batch`` (keys :data:`BATCH_KEYS`) for the active
        task, plus detached statistics. With ``mu_penalty > 0`` the critic and actor losses add
        ``mu_penalty · Σ‖μ_task‖²`` of their networks."""
        task = self._require_task()
        missing = [key for key in BATCH_KEYS if key not in batch]
        require(not missing, f"the SAC batch lacks {', '.join(missing)}")
        log_alpha = self.log_temperature()
        alpha = log_alpha.detach().exp()
        target = self.critic_target(batch)
        q1 = self._q(self.q1, batch["obs"], batch["action"])
        q2 = self._q(self.q2, batch["obs"], batch["action"])
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        action, log_prob = self._sample(batch["obs"])
        q_pi = torch.min(self._q(self.q1, batch["obs"], action), self._q(self.q2, batch["obs"], action))
        actor_loss = (alpha * log_prob - q_pi).mean()
        alpha_loss = -(log_alpha * (log_prob + self.target_entropy).detach()).mean()
        if self.mu_penalty > 0:
            critic_loss = critic_loss + self.mu_penalty * (
                self.q1.mu_penalty(task) + self.q2.mu_penalty(task)
            )
            actor_loss = actor_loss + self.mu_penalty * self.policy.mu_penalty(task)
        stats = {
            "critic_loss": critic_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "alpha_loss": alpha_loss.detach(),
            "alpha": alpha,
            "q1": q1.detach().mean(),
            "q2": q2.detach().mean(),
            "target_q": target.mean(),
            "entropy": -log_prob.detach().mean(),
        }
        return critic_loss, actor_loss, alpha_loss, stats

    # --- updates -----------------------------------------------------------------------------------------

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The parameters each optimizer steps: ``actor`` (policy), ``critic`` (Q1 and Q2), ``alpha``."""
        return {
            "actor": list(self.policy.parameters()),
            "critic": [*self.q1.parameters(), *self.q2.parameters()],
            "alpha": list(self.log_alpha.parameters()),
        }

    def update(self, batch: Mapping[str, Tensor], optimizers: Mapping[str, torch.optim.Optimizer]) -> dict:
        """One gradient step of each optimizer (``critic``, ``actor``, ``alpha``) on the losses of the same
        batch (simultaneous, as softlearning's SAC), then :meth:`polyak_update_`. Each loss reaches only its
        own group's parameters; parameters it does not use (other tasks' μ) get no gradient, so no
        optimizer moves them. Returns the statistics of :meth:`losses`."""
        missing = [name for name in ("critic", "actor", "alpha") if name not in optimizers]
        require(not missing, f"update needs the optimizers {', '.join(missing)}")
        critic_loss, actor_loss, alpha_loss, stats = self.losses(batch)
        groups = self.parameter_groups()
        for name, loss in (("critic", critic_loss), ("actor", actor_loss), ("alpha", alpha_loss)):
            params = groups[name]
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            optimizers[name].zero_grad(set_to_none=True)
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad
        for name in ("critic", "actor", "alpha"):
            optimizers[name].step()
        self.polyak_update_()
        return stats

    @torch.no_grad()
    def polyak_update_(self) -> None:
        """``target ← (1 − τ)·target + τ·online`` for every parameter (θ, every task's μ) of both critics."""
        for online, target in ((self.q1, self.q1_target), (self.q2, self.q2_target)):
            online_params = dict(online.named_parameters())
            target_params = dict(target.named_parameters())
            require(
                online_params.keys() == target_params.keys(),
                "a target critic has other tasks than its critic",
            )
            for name, param in target_params.items():
                param.lerp_(online_params[name], self.tau)

    def meta_update(self, task_id, alpha: float = 0.05, target_sync: str = "copy") -> None:
        """The specification's Reptile meta-update of the policy and both critics for ``task_id`` (θ += α·μ_i,
        μ_i −= α·μ_i), then the targets follow: ``copy`` loads the critics into them, ``shift`` applies
        the critics' shifts (see :func:`~lit_meta.algorithms.varshare.sync_targets_`)."""
        if target_sync not in TARGET_SYNCS:
            raise ConfigError(f"unknown target sync '{target_sync}'; choose one of {', '.join(TARGET_SYNCS)}")
        require(0 < alpha <= 1, f"alpha must be in (0, 1], got {alpha}")
        known = all(
            str(task_id) in layer.mus for net in self.networks().values() for layer in net.varshare_layers()
        )
        require(known, f"task {task_id!r} was never seen by the SAC networks")
        shifts = [
            varshare_meta_update_([network], task_id, alpha) for network in (self.policy, self.q1, self.q2)
        ]
        sync_targets_([self.q1, self.q2], [self.q1_target, self.q2_target], task_id, shifts[1:], target_sync)


__all__ = ["MultiTaskSAC"]
