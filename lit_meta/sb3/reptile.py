"""Reptile over SB3 learners (Nichol, Achiam & Schulman, 2018, "On First-Order Meta-Learning
Algorithms"; the "Reptile_sb3" specification): θ ← θ + ε · mean_i(θ_i − θ), θ_i the policy trained on
task i.

The update is lit-meta's one Reptile rule (:mod:`lit_meta.algorithms.reptile`), in its direct form or,
with a meta-optimizer, in its gradient form handed to any torch optimizer.
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import ConstantSchedule, LinearSchedule
from torch.optim import Optimizer

from lit_meta.algorithms.reptile import add_reptile_gradient_, reptile_step_
from lit_meta.errors import require
from lit_meta.sb3.algorithms import to_plain
from lit_meta.sb3.meta_algorithm import BaseMetaAlgorithm
from lit_meta.sb3.weights import meta_parameter_names, parameters_by_name, sync_target_networks

Schedule = Callable[[float], float]


class ReptileMetaRL(BaseMetaAlgorithm):
    """Reptile's meta-update over SB3 learners.

    :param meta_step_size: ε, a number or an SB3-style schedule of the remaining progress (1 → 0), e.g.
        ``stable_baselines3.common.utils.LinearSchedule(1.0, 0.0, 1.0)`` anneals it linearly to 0 over
        :meth:`learn`'s meta-iterations, as the Reptile paper does.
    :param meta_optimizer: ``None`` for the direct step, or a torch optimizer class, built over
        :meth:`meta_parameters` with ``meta_optimizer_kwargs``, which receives the Reptile direction
        θ − mean_i θ_i as gradient and ε as learning rate. ``torch.optim.SGD`` gives exactly the direct
        step; ``Adam`` the variant of the paper's code. (An optimizer built elsewhere over
        :meth:`meta_parameters`, such as Lightning's, may be assigned to :attr:`meta_optimizer` later.)
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
        meta_optimizer: type[Optimizer] | None = None,
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
        options = dict(meta_optimizer_kwargs or {})
        require(
            meta_optimizer is None
            or (isinstance(meta_optimizer, type) and issubclass(meta_optimizer, Optimizer)),
            f"meta_optimizer must be None or a torch optimizer class, got {meta_optimizer!r}",
        )
        require(meta_optimizer is not None or not options, "meta_optimizer_kwargs need a meta_optimizer")
        require(
            "lr" not in options, "the meta-optimizer's learning rate is meta_step_size (ε), not an option"
        )
        self.meta_optimizer_class = meta_optimizer
        self.meta_optimizer_kwargs = options
        self.meta_optimizer = None
        if meta_optimizer is not None:
            self.meta_optimizer = meta_optimizer(
                self.meta_parameters(), lr=self.current_meta_step_size(), **options
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
            stepped = [id(p) for group in self.meta_optimizer.param_groups for p in group["params"]]
            require(
                stepped == [id(p) for p in params],
                "the meta-optimizer must be built over meta_parameters(), in their order",
            )
            for group in self.meta_optimizer.param_groups:
                group["lr"] = step_size
            self.meta_optimizer.zero_grad()
            for task_params in adapted:
                add_reptile_gradient_(params, task_params, weight=1.0 / len(adapted))
            self.meta_optimizer.step()
        sync_target_networks(self.policy)

    def _settings(self) -> dict:
        """ε's schedule, the optimizer and the ignored prefixes as plain data, for :meth:`load_meta_algo`."""
        settings: dict[str, Any] = {"ignore_prefixes": list(self.ignore_prefixes)}
        schedule = schedule_to_plain(self.meta_step_size)
        if schedule is not None:  # another callable must be given again to load_meta_algo
            settings["meta_step_size"] = schedule
        optimizer = self.meta_optimizer_class
        if optimizer is None or getattr(torch.optim, optimizer.__name__, None) is optimizer:
            settings["meta_optimizer"] = None if optimizer is None else optimizer.__name__
            settings["meta_optimizer_kwargs"] = to_plain(self.meta_optimizer_kwargs)
        return settings

    @classmethod
    def _settings_from_plain(cls, settings: dict) -> dict:
        settings = dict(settings)
        if "meta_step_size" in settings:
            settings["meta_step_size"] = schedule_from_plain(settings["meta_step_size"])
        if settings.get("meta_optimizer") is not None:
            name = settings["meta_optimizer"]
            optimizer = getattr(torch.optim, name, None)
            require(
                isinstance(optimizer, type) and issubclass(optimizer, Optimizer),
                f"torch.optim has no optimizer '{name}'",
            )
            settings["meta_optimizer"] = optimizer
        return settings

    def _extra_state(self) -> dict:
        optimizer = self.meta_optimizer
        return {"meta_optimizer": optimizer.state_dict() if optimizer is not None else None}

    def _load_extra_state(self, state: dict) -> None:
        if state.get("meta_optimizer") is None:
            return
        require(
            self.meta_optimizer is not None,
            "the saved meta-algorithm has meta-optimizer state; pass its meta_optimizer to load_meta_algo",
        )
        self.meta_optimizer.load_state_dict(state["meta_optimizer"])


def schedule_to_plain(schedule: Schedule) -> dict | None:
    """SB3's constant and linear schedules as plain data (``None`` for any other callable)."""
    if isinstance(schedule, ConstantSchedule):
        return {"constant": schedule.val}
    if isinstance(schedule, LinearSchedule):
        return {"start": schedule.start, "end": schedule.end, "end_fraction": schedule.end_fraction}
    return None


def schedule_from_plain(value: dict) -> Schedule:
    """Inverse of :func:`schedule_to_plain`."""
    if "constant" in value:
        return ConstantSchedule(float(value["constant"]))
    return LinearSchedule(float(value["start"]), float(value["end"]), float(value["end_fraction"]))
