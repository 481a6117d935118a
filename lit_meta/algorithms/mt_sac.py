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

from collections.abc import Iterable, Mapping, Sequence
from functools import partial

from torch import Tensor

from lit_meta.algorithms.sac import SHARED_TEMPERATURE, SoftActorCritic
from lit_meta.algorithms.varshare import TARGET_SYNCS, sync_targets_, varshare_meta_update_
from lit_meta.errors import ConfigError, require
from lit_meta.nn.varshare import VarShareMLP


class MultiTaskSAC(SoftActorCritic):
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
        require(mu_penalty >= 0, f"mu_penalty must not be negative, got {mu_penalty}")
        task_ids = list(task_ids)
        require(len(task_ids) > 0, "task_ids must name at least one task")
        temperatures = [str(task) for task in task_ids] if per_task_temperature else [SHARED_TEMPERATURE]
        super().__init__(
            observation_size, action_size, action_low, action_high, hidden_sizes, gamma, tau,
            init_temperature, target_entropy, network_factory=partial(_varshare_mlp, task_ids=task_ids),
            temperature_keys=temperatures,
        )  # fmt: skip
        self.mu_penalty, self.per_task_temperature = mu_penalty, per_task_temperature
        self.active_task = None

    # --- tasks -------------------------------------------------------------------------------------------

    def _alpha_key(self, task_id) -> str:
        return str(task_id) if self.per_task_temperature else SHARED_TEMPERATURE

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

    # --- losses ------------------------------------------------------------------------------------------

    def losses(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """SAC's losses (:meth:`SoftActorCritic.losses`) for the active task. With ``mu_penalty > 0`` the
        critic and actor losses add ``mu_penalty · Σ‖μ_task‖²`` of their networks."""
        task = self._require_task()
        critic_loss, actor_loss, alpha_loss, stats = super().losses(batch)
        if self.mu_penalty > 0:
            critic_loss = critic_loss + self.mu_penalty * (
                self.q1.mu_penalty(task) + self.q2.mu_penalty(task)
            )
            actor_loss = actor_loss + self.mu_penalty * self.policy.mu_penalty(task)
            stats.update(critic_loss=critic_loss.detach(), actor_loss=actor_loss.detach())
        return critic_loss, actor_loss, alpha_loss, stats

    # --- updates -----------------------------------------------------------------------------------------

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


def _varshare_mlp(in_features: int, out_features: int, hidden_sizes: Sequence[int], task_ids) -> VarShareMLP:
    return VarShareMLP(in_features, out_features, hidden_sizes, task_ids=task_ids)


__all__ = ["MultiTaskSAC"]
