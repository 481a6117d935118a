"""The Reptile meta-update of VarShare networks (the "VarShare + Reptile" specification): move the
shared weights towards the current task's effective weights, ``θ ← θ + α·μ_i``, and take the same amount
out of ``μ_i``, so the current task's effective weights ``θ + μ_i`` do not change while every other
task's move by ``α·μ_i``.

The move of θ is Reptile's interpolation towards the task's weights, θ + α·((θ + μ_i) − θ), computed by
the one Reptile rule of :func:`lit_meta.algorithms.reptile.reptile_step_`.
"""

from collections.abc import Iterable

import torch
from torch import nn

from lit_meta.algorithms.reptile import reptile_step_
from lit_meta.errors import ConfigError, require

TARGET_SYNCS = ("copy", "shift")
"""``copy``: the specification's hard copy of the online critics into their targets; ``shift``: the same shift
applied to the targets' θ and μ_i, which keeps their Polyak averages."""


def varshare_modules(network: nn.Module) -> list[nn.Module]:
    """Every module of ``network``, at any depth, that has a ``theta`` (duck typing, as the
    specification); one with ``theta`` but no ``mus`` is refused with one sentence."""
    found = []
    for name, module in network.named_modules():
        if hasattr(module, "theta"):
            if not hasattr(module, "mus"):
                raise ConfigError(f"module '{name or type(module).__name__}' has theta but no mus")
            found.append(module)
    return found


def varshare_meta_update_(networks: Iterable[nn.Module], task_id, alpha: float = 0.05) -> list[torch.Tensor]:
    """Apply the meta-update for ``task_id`` to every VarShare module of ``networks`` in place; returns
    the shifts ``α·μ_i`` (one per module, in order) so targets can follow with :func:`shift_`."""
    require(0 < alpha <= 1, f"alpha must be in (0, 1], got {alpha}")
    key = str(task_id)
    modules = [module for network in networks for module in varshare_modules(network)]
    for module in modules:
        if key not in module.mus:
            raise ConfigError(
                f"task {task_id!r} was never seen by these networks; they know {', '.join(module.mus)}"
            )
    shifts = []
    with torch.no_grad():
        for module in modules:
            mu = module.mus[key]
            shifts.append(alpha * mu.detach().clone())
            reptile_step_([module.theta], [[module.theta + mu]], alpha)
            mu.sub_(shifts[-1])
    return shifts


def shift_(network: nn.Module, task_id, shifts: list[torch.Tensor]) -> None:
    """Apply the shifts of an online network's meta-update to its target: θ += shift, μ_i −= shift.
    The target's effective weights for ``task_id`` are unchanged; for every other task they move by
    the shift, exactly as the online network's do."""
    modules = varshare_modules(network)
    require(len(modules) == len(shifts), "the target network does not have the online network's layers")
    with torch.no_grad():
        for module, shift in zip(modules, shifts, strict=True):
            module.theta.add_(shift)
            module.mus[str(task_id)].sub_(shift)


def sync_targets_(
    online: list[nn.Module], targets: list[nn.Module], task_id, shifts: list[list[torch.Tensor]], mode: str
) -> None:
    """After a meta-update: ``copy`` loads each online critic into its target (the specification's rule; every
    task's target becomes the online network, discarding Polyak averaging); ``shift`` applies each online
    network's shifts (``shifts[k]``, from :func:`varshare_meta_update_` on ``online[k]``) to its target."""
    if mode not in TARGET_SYNCS:
        raise ConfigError(f"unknown target sync '{mode}'; choose one of {', '.join(TARGET_SYNCS)}")
    for network, target, network_shifts in zip(online, targets, shifts, strict=True):
        if mode == "copy":
            target.load_state_dict(network.state_dict())
        else:
            shift_(target, task_id, network_shifts)


__all__ = ["TARGET_SYNCS", "shift_", "sync_targets_", "varshare_meta_update_", "varshare_modules"]
