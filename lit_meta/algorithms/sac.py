"""Soft Actor-Critic (Haarnoja et al., 2018, "Soft Actor-Critic Algorithms and Applications"): a
tanh-squashed Gaussian policy, twin Q-functions with Polyak-averaged targets and automatic entropy
tuning. One agent, written once: multi-task SAC over VarShare networks
(:class:`~lit_meta.algorithms.mt_sac.MultiTaskSAC`) builds its networks differently and keeps one
temperature per task; PEARL (:mod:`lit_meta.algorithms.pearl`) conditions it on a latent context.

No Lightning here: a LightningModule steps the optimizers built from :meth:`SoftActorCritic.parameter_groups`.
"""

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_meta.algorithms.replay import BATCH_KEYS
from lit_meta.errors import require, require_positive
from lit_meta.nn.mlp import MLP

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
SHARED_TEMPERATURE = "shared"
"""The key of the one temperature of an agent that does not keep one per task."""
OPTIMIZED_GROUPS = ("actor", "critic", "alpha")
"""The parameter groups of :meth:`SoftActorCritic.parameter_groups`, each stepped by its own optimizer."""

NetworkFactory = Callable[[int, int, Sequence[int]], nn.Module]


def _as_bound(value, action_size: int, name: str) -> Tensor:
    bound = torch.as_tensor(value, dtype=torch.float32)
    require(bound.numel() in (1, action_size), f"{name} must be a number or {action_size} numbers")
    require(bool(torch.isfinite(bound).all()), f"{name} must be finite")
    return bound.reshape(-1).expand(action_size).clone()


def bounded_target_entropy(action_low, action_high, action_size: int, per_dimension: float = -1.0) -> float:
    """SAC's target entropy of ``per_dimension`` nats per action dimension (Haarnoja et al. 2018: −1, so
    ``−|A|`` in all) measured on actions rescaled to [−1, 1], as SB3 measures it: ``Σ_i (per_dimension +
    log((high_i − low_i)/2))`` on the environment's own actions.
    The plain ``−|A|`` is unreachable when the bounds are narrow (a uniform policy over ``[−0.1, 0.1]²``
    has entropy ``log 0.04 ≈ −3.2 < −2``), and the temperature then grows without end."""
    low = np.broadcast_to(np.asarray(action_low, dtype=np.float64), (action_size,))
    high = np.broadcast_to(np.asarray(action_high, dtype=np.float64), (action_size,))
    return float(np.sum(np.log((high - low) / 2) + per_dimension))


def relu_mlp(in_features: int, out_features: int, hidden_sizes: Sequence[int]) -> nn.Module:
    """The default network of every SAC part: a ReLU MLP on inputs ``[O]`` or ``[B, O]``."""
    layers = list(MLP(in_features, out_features, list(hidden_sizes), "relu"))
    return nn.Sequential(*(layer for layer in layers if not isinstance(layer, nn.Flatten)))


def step_groups(
    losses: Mapping[str, Tensor],
    groups: Mapping[str, list[nn.Parameter]],
    optimizers: Mapping[str, torch.optim.Optimizer],
) -> None:
    """One step of each optimizer on the gradient of its own loss with respect to its own group only, all
    gradients taken before any parameter moves (simultaneous updates, as softlearning's SAC). A parameter
    a loss does not reach (another task's μ) gets no gradient, so its optimizer leaves it alone."""
    missing = [name for name in losses if name not in optimizers]
    require(not missing, f"the update needs the optimizers {', '.join(missing)}")
    gradients = {
        name: torch.autograd.grad(loss, groups[name], allow_unused=True, retain_graph=True)
        for name, loss in losses.items()
    }
    for name, grads in gradients.items():
        optimizers[name].zero_grad(set_to_none=True)
        for param, grad in zip(groups[name], grads, strict=True):
            param.grad = grad
    for name in losses:
        optimizers[name].step()


class SoftActorCritic(nn.Module):
    """SAC's policy, twin critics, their targets and the temperature.

    :param network_factory: ``(in_features, out_features, hidden_sizes) -> module`` for the policy and
        both critics (default: ReLU MLPs), built in that order.
    :param temperature_keys: the temperatures to create, by key (one shared temperature by default).
    """

    per_task_temperature = False

    def __init__(
        self,
        observation_size: int,
        action_size: int,
        action_low,
        action_high,
        hidden_sizes: Sequence[int] = (256, 256),
        gamma: float = 0.99,
        tau: float = 0.005,
        init_temperature: float = 1.0,
        target_entropy: float | None = None,
        network_factory: NetworkFactory = relu_mlp,
        temperature_keys: Iterable[str] = (SHARED_TEMPERATURE,),
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
        self.observation_size, self.action_size = observation_size, action_size
        self.gamma, self.tau, self.init_temperature = gamma, tau, init_temperature
        self.target_entropy = float(-action_size if target_entropy is None else target_entropy)
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)
        hidden_sizes = list(hidden_sizes)
        self.policy = network_factory(observation_size, 2 * action_size, hidden_sizes)
        self.q1 = network_factory(observation_size + action_size, 1, hidden_sizes)
        self.q2 = network_factory(observation_size + action_size, 1, hidden_sizes)
        self.q1_target = copy.deepcopy(self.q1).requires_grad_(False)
        self.q2_target = copy.deepcopy(self.q2).requires_grad_(False)
        self.log_alpha = nn.ParameterDict()
        for key in temperature_keys:
            self._add_temperature(str(key))

    # --- tasks: one set of weights for every task -----------------------------------------------------

    def set_task(self, task_id) -> None:
        """Nothing to do: this agent's weights serve every task (multi-task agents override it)."""

    def _require_task(self) -> None:
        """Refuse to act before the agent is ready for a task (multi-task agents: :meth:`set_task`)."""

    def _add_temperature(self, key: str) -> None:
        if key not in self.log_alpha:
            device = self.action_scale.device
            self.log_alpha[key] = nn.Parameter(torch.tensor(math.log(self.init_temperature), device=device))

    def log_temperature(self, task_id=None) -> Tensor:
        """``log α`` (of ``task_id`` for an agent with one temperature per task)."""
        return self.log_alpha[SHARED_TEMPERATURE]

    # --- policy ------------------------------------------------------------------------------------------

    def _sample(self, obs: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Action ``tanh(m + σ·ε)·scale + bias`` and its log-probability, ε = ``noise`` (standard normal
        when None). The log-probability is the Gaussian's minus ``Σ log(scale·(1 − tanh(u)²))``, with
        ``log(1 − tanh(u)²) = 2(log 2 − u − softplus(−2u))``."""
        self._require_task()
        mean, log_std = self.policy(obs).chunk(2, dim=-1)
        std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
        noise = torch.randn_like(mean) if noise is None else noise
        pre_tanh = mean + std * noise
        action = torch.tanh(pre_tanh) * self.action_scale + self.action_bias
        gaussian = torch.distributions.Normal(mean, std).log_prob(pre_tanh)
        log_det = 2 * (math.log(2) - pre_tanh - F.softplus(-2 * pre_tanh)) + self.action_scale.log()
        return action, (gaussian - log_det).sum(-1)

    def action_tensor(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """Action(s) for ``obs``: a sample of the policy, or ``tanh(mean)`` rescaled if ``deterministic``."""
        if not deterministic:
            return self._sample(obs)[0]
        self._require_task()
        mean = self.policy(obs).chunk(2, dim=-1)[0]
        return torch.tanh(mean) * self.action_scale + self.action_bias

    @torch.no_grad()
    def act(self, observation: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action(s) for ``observation`` (one ``[O]`` or a batch ``[N, O]``), as numpy."""
        obs = torch.as_tensor(np.asarray(observation), dtype=torch.float32, device=self.action_scale.device)
        return self.action_tensor(obs, deterministic).cpu().numpy()

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

    def critic_loss(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """``Σ_k mean (Q_k(s, a) − y)²`` on ``batch`` and detached statistics."""
        target = self.critic_target(batch)
        q1 = self._q(self.q1, batch["obs"], batch["action"])
        q2 = self._q(self.q2, batch["obs"], batch["action"])
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        stats = {"q1": q1.detach().mean(), "q2": q2.detach().mean(), "target_q": target.mean()}
        return loss, stats

    def policy_losses(self, obs: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The actor loss ``mean(α log π(a|s) − min_k Q_k(s, a))``, ``a ~ π(·|s)``, and the temperature loss
        ``−mean(log α · (log π(a|s) + target entropy))`` on the states ``obs``, with detached statistics."""
        log_alpha = self.log_temperature()
        alpha = log_alpha.detach().exp()
        action, log_prob = self._sample(obs)
        q_pi = torch.min(self._q(self.q1, obs, action), self._q(self.q2, obs, action))
        actor_loss = (alpha * log_prob - q_pi).mean()
        alpha_loss = -(log_alpha * (log_prob + self.target_entropy).detach()).mean()
        return actor_loss, alpha_loss, {"alpha": alpha, "entropy": -log_prob.detach().mean()}

    def losses(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """SAC's critic, actor and temperature losses on ``batch`` (keys :data:`BATCH_KEYS`), plus detached
        statistics."""
        self._require_task()
        missing = [key for key in BATCH_KEYS if key not in batch]
        require(not missing, f"the SAC batch lacks {', '.join(missing)}")
        critic_loss, critic_stats = self.critic_loss(batch)
        actor_loss, alpha_loss, policy_stats = self.policy_losses(batch["obs"])
        stats = {
            "critic_loss": critic_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "alpha_loss": alpha_loss.detach(),
            "alpha": policy_stats["alpha"],
            **critic_stats,
            "entropy": policy_stats["entropy"],
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
        batch (:func:`step_groups`), then :meth:`polyak_update_`. Returns the statistics of :meth:`losses`."""
        missing = [name for name in OPTIMIZED_GROUPS if name not in optimizers]
        require(not missing, f"update needs the optimizers {', '.join(missing)}")
        critic_loss, actor_loss, alpha_loss, stats = self.losses(batch)
        losses = {"critic": critic_loss, "actor": actor_loss, "alpha": alpha_loss}
        step_groups(losses, self.parameter_groups(), optimizers)
        self.polyak_update_()
        return stats

    @torch.no_grad()
    def polyak_update_(self) -> None:
        """``target ← (1 − τ)·target + τ·online`` for every parameter of both critics."""
        for online, target in ((self.q1, self.q1_target), (self.q2, self.q2_target)):
            online_params = dict(online.named_parameters())
            target_params = dict(target.named_parameters())
            require(
                online_params.keys() == target_params.keys(),
                "a target critic has other tasks than its critic",
            )
            for name, param in target_params.items():
                param.lerp_(online_params[name], self.tau)


__all__ = [
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "OPTIMIZED_GROUPS",
    "SHARED_TEMPERATURE",
    "SoftActorCritic",
    "bounded_target_entropy",
    "relu_mlp",
    "step_groups",
]
