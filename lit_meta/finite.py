"""Finding NaN and infinity in weights, gradients and checkpoints: one reduction per device and one
host synchronisation, whatever the number of tensors."""

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor


def first_non_finite(named_tensors: Iterable[tuple[str, Tensor | None]]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, or ``None`` if all are
    finite (``None`` entries, integer and empty tensors are skipped).

    The largest magnitude of each tensor (``torch._foreach_norm`` with ``ord=inf``, which propagates NaN
    and never overflows) is computed for all tensors of a device at once; only the flags cross to the
    host.
    """
    groups: dict[tuple[torch.device, torch.dtype], list[tuple[int, Tensor]]] = {}
    names = []
    for name, tensor in named_tensors:
        if tensor is None or not tensor.is_floating_point() or tensor.numel() == 0:
            continue
        groups.setdefault((tensor.device, tensor.dtype), []).append((len(names), tensor.detach()))
        names.append(name)
    if not names:
        return None
    positions, flags = [], []
    for group in groups.values():
        positions.extend(position for position, _ in group)
        maxima = torch._foreach_norm([tensor for _, tensor in group], ord=math.inf)
        flags.append(torch.stack(maxima).isfinite().cpu())
    finite = torch.cat(flags).tolist()  # the one synchronisation
    bad = [position for position, ok in zip(positions, finite, strict=True) if not ok]
    return names[min(bad)] if bad else None


def first_non_finite_in_state(state: Mapping[str, object], prefix: str = "") -> str | None:
    """:func:`first_non_finite` over every tensor in a nested checkpoint entry (dicts and lists),
    named by its path, e.g. ``optimizer_states.0.state.3.exp_avg``."""
    return first_non_finite(_walk(state, prefix))


def _walk(value: object, name: str) -> Iterable[tuple[str, Tensor]]:
    if isinstance(value, Tensor):
        yield name, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{name}.{key}" if name else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{name}.{index}" if name else str(index))


__all__ = ["first_non_finite", "first_non_finite_in_state"]
