"""Reptile over SB3 learners (Nichol, Achiam & Schulman, 2018, "On First-Order Meta-Learning
Algorithms"; seed 001): θ ← θ + ε · mean_i(θ_i − θ), θ_i the policy trained on task i.

The update is lit-meta's one Reptile rule (:mod:`lit_meta.algorithms.reptile`), in its direct form or,
with a meta-optimizer, in its gradient form handed to any torch optimizer.
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import ConstantSchedule

from lit_meta.algorithms.reptile import add_reptile_gradient_, reptile_step_
from lit_meta.errors import require
from lit_meta.sb3.meta_algorithm import BaseMetaAlgorithm
from lit_meta.sb3.weights import meta_parameter_names, parameters_by_name, sync_target_networks

Schedule = Callable[[float], float]


class ReptileMetaRL(BaseMetaAlgorithm):
    """Reptile's meta-update over SB3 learners.

    :param meta_step_size: ε, a number or an SB3-style schedule of the remaining progress (1 → 0), e.g.
        ``stable_baselines3.common.utils.LinearSchedule(1.0, 0.0, 1.0)`` anneals it linearly to 0
        as the Reptile paper does.
    :param meta_optimizer: ``None`` for the direct step; a torch optimizer class (built over the
        meta-parameters with ``meta_optimizer_kwargs``) or an optimizer object, which receives the
        Reptile direction θ − mean_i θ_i as gradient and ε as learning rate. ``torch.optim.SGD`` gives
        exactly the direct step; ``Adam`` the variant of the paper's code.
    :param ignore_prefixes: parameter-name prefixes the meta-update leaves alone (e.g. ``log_std``,
        ``value_net``); each must match a parameter of the policy.

    Target networks (SAC, TD3, DDPG, DQN) are not meta-learned: they are copied from their online
    networks after every meta-update. Other arguments: :class:`BaseMetaAlgorithm`.
    """

    def __init__(
        self,
        task_generator,
        rl_algorithm,
        rl_algo_kwargs: dict[str, Any] | None = None,
        meta_step_size: float | Schedule = 0.1,
        meta_optimizer: type[torch.optim.Optimizer] | torch.optim.Optimizer | None = None,
        meta_optimizer_kwargs: dict[str, Any] | None = None,
        ignore_prefixes: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(task_generator, rl_algorithm, rl_algo_kwargs, **kwargs)
        if not callable(meta_step_size):
            require(0 < meta_step_size <= 1, f"meta_step_size must be in (0, 1], got {meta_step_size}")
        self.meta_step_size: Schedule = (
            meta_step_size if callable(meta_step_size) else ConstantSchedule(float(meta_step_size))
        )
        self.ignore_prefixes = list(ignore_prefixes)
        self.meta_parameter_names = meta_parameter_names(self.policy, self.ignore_prefixes)
        self.meta_optimizer = meta_optimizer
        if isinstance(meta_optimizer, type):
            self.meta_optimizer = meta_optimizer(
                self.meta_parameters(),
                **{"lr": self.current_meta_step_size(), **(meta_optimizer_kwargs or {})},
            )

    def meta_parameters(self) -> list[torch.nn.Parameter]:
        """The meta-policy's parameters that the meta-update changes (in a fixed order)."""
        return parameters_by_name(self.policy, self.meta_parameter_names)

    def current_meta_step_size(self) -> float:
        return float(self.meta_step_size(self.progress_remaining))

    def meta_update(self, task_models: list[BaseAlgorithm]) -> None:
        require(len(task_models) > 0, "a Reptile meta-update needs at least one trained task model")
        params = self.meta_parameters()
        adapted = [parameters_by_name(model.policy, self.meta_parameter_names) for model in task_models]
        step_size = self.current_meta_step_size()
        if self.meta_optimizer is None:
            reptile_step_(params, adapted, step_size)
        else:
            for group in self.meta_optimizer.param_groups:
                group["lr"] = step_size
            self.meta_optimizer.zero_grad()
            for task_params in adapted:
                add_reptile_gradient_(params, task_params, weight=1.0 / len(adapted))
            self.meta_optimizer.step()
        sync_target_networks(self.policy)

    def _settings(self) -> dict:
        return {"ignore_prefixes": list(self.ignore_prefixes)}

    def _extra_state(self) -> dict:
        optimizer = self.meta_optimizer
        return {"meta_optimizer": optimizer.state_dict() if optimizer is not None else None}

    def _load_extra_state(self, state: dict) -> None:
        if state.get("meta_optimizer") is not None and self.meta_optimizer is not None:
            self.meta_optimizer.load_state_dict(state["meta_optimizer"])
