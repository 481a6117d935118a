"""VarShare layers (the VarShare spec): every task's weights are a shared part plus a task-specific variation,
``w_i = θ + μ_i``, with ``θ`` an ``nn.Parameter`` and ``μ`` an ``nn.ParameterDict`` keyed by ``str(task)``.

The bias is the last column of the same matrices, so ``θ`` and ``μ_i`` are the whole layer and a
meta-update that moves them (see :func:`lit_meta.algorithms.varshare.varshare_meta_update_`) moves
weights and biases alike.
"""

import itertools
import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_meta.errors import ConfigError, require
from lit_meta.nn.mlp import ACTIVATIONS


class VarShareLayer(nn.Module):
    """A linear layer whose weights for task ``i`` are ``θ + μ_i``; a new task's ``μ`` starts at zero,
    so its effective weights start at ``θ``.

    :param task_ids: tasks to create variations for now (more can be added with :meth:`add_task`).
    """

    def __init__(self, in_features: int, out_features: int, task_ids: Iterable = ()) -> None:
        super().__init__()
        require(in_features > 0 and out_features > 0, "VarShare layer sizes must be positive")
        self.in_features, self.out_features = in_features, out_features
        theta = torch.empty(out_features, in_features + 1)
        bound = 1 / math.sqrt(in_features)  # nn.Linear's initialisation, bias included
        nn.init.kaiming_uniform_(theta[:, :-1], a=math.sqrt(5))
        nn.init.uniform_(theta[:, -1], -bound, bound)
        self.theta = nn.Parameter(theta)
        self.mus = nn.ParameterDict()
        self.active_task: str | None = None
        for task_id in task_ids:
            self.add_task(task_id)

    def add_task(self, task_id) -> None:
        """Give ``task_id`` a zero variation (its effective weights are θ) unless it has one."""
        key = str(task_id)
        if key not in self.mus:
            self.mus[key] = nn.Parameter(torch.zeros_like(self.theta))

    def effective_weights(self, task_id) -> Tensor:
        """``θ + μ_task``: ``[out, in + 1]``, the bias in the last column."""
        key = str(task_id)
        if key not in self.mus:
            raise ConfigError(
                f"the VarShare layer has no task {task_id!r}; its tasks are {', '.join(self.mus)}"
            )
        return self.theta + self.mus[key]

    def forward(self, x: Tensor) -> Tensor:
        require(self.active_task is not None, "set the active task of a VarShare network before using it")
        weights = self.effective_weights(self.active_task)
        return F.linear(x, weights[:, :-1], weights[:, -1])


class VarShareMLP(nn.Sequential):
    """An MLP of :class:`VarShareLayer` s, any depth; :meth:`set_task` picks the task every layer uses."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str = "relu",
        task_ids: Iterable = (),
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"unknown activation '{activation}'; choose one of {', '.join(sorted(ACTIVATIONS))}"
            )
        task_ids = list(task_ids)
        sizes = [in_features, *hidden_sizes, out_features]
        layers: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(VarShareLayer(fan_in, fan_out, task_ids))
            if index < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        super().__init__(*layers)

    def varshare_layers(self) -> list[VarShareLayer]:
        return [module for module in self.modules() if isinstance(module, VarShareLayer)]

    def add_task(self, task_id) -> None:
        for layer in self.varshare_layers():
            layer.add_task(task_id)

    def set_task(self, task_id) -> None:
        """Make every layer use ``task_id``'s weights (adding a zero variation for a new task)."""
        for layer in self.varshare_layers():
            layer.add_task(task_id)
            layer.active_task = str(task_id)

    def mu_penalty(self, task_id) -> Tensor:
        """``Σ_layers ‖μ_task‖²``, the optional regulariser that keeps task variations small."""
        return sum(layer.mus[str(task_id)].pow(2).sum() for layer in self.varshare_layers())


__all__ = ["VarShareLayer", "VarShareMLP"]
