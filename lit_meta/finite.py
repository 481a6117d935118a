"""Finding NaN and infinity in weights, gradients and checkpoints: one reduction per device and one
host synchronisation, whatever the number of tensors."""

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

SMALL = 1 << 20
"""Elements up to which :func:`all_finite` copies a group's tensors into one (fewer, cheaper operations
for the small networks whose steps take a millisecond); above it, no copy is made."""


def all_finite(tensors: Iterable[Tensor | None]) -> bool:
    """Whether every floating-point tensor is free of NaN and infinity: one reduction per device and
    dtype and a single host synchronisation (the fast check run after every training step). The largest
    magnitude is what is checked: it propagates NaN and cannot overflow."""
    groups = _by_device_and_dtype(enumerate(tensors))
    if not groups:
        return True
    maxima = []
    with torch.no_grad():
        for group in groups.values():
            members = [tensor for _, tensor in group]
            if sum(tensor.numel() for tensor in members) <= SMALL:
                maxima.append(torch.cat([tensor.reshape(-1) for tensor in members]).abs().max().float())
            else:
                maxima.append(torch.stack(_max_magnitudes(group)).max().float())
    largest = maxima[0] if len(maxima) == 1 else torch.stack([value.cpu() for value in maxima]).max()
    return math.isfinite(largest.item())


def first_non_finite(named_tensors: Iterable[tuple[str, Tensor | None]]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, or ``None`` if all are
    finite (``None`` entries, integer and empty tensors are skipped).

    The largest magnitude of each tensor (``torch._foreach_norm`` with ``ord=inf``, which propagates NaN
    and never overflows) is computed for all tensors of a device at once; only the flags cross to the
    host.
    """
    named = list(named_tensors)
    groups = _by_device_and_dtype((position, tensor) for position, (_, tensor) in enumerate(named))
    positions, flags = [], []
    with torch.no_grad():
        for group in groups.values():
            positions.extend(position for position, _ in group)
            flags.append(torch.stack(_max_magnitudes(group)).isfinite().cpu())
    if not flags:
        return None
    finite = torch.cat(flags).tolist()  # the one synchronisation
    bad = [position for position, ok in zip(positions, finite, strict=True) if not ok]
    return named[min(bad)][0] if bad else None


def _by_device_and_dtype(
    indexed: Iterable[tuple[int, Tensor | None]],
) -> dict[tuple[torch.device, torch.dtype], list[tuple[int, Tensor]]]:
    """The floating-point, non-empty tensors grouped for ``torch._foreach_norm``, with their positions."""
    groups: dict[tuple[torch.device, torch.dtype], list[tuple[int, Tensor]]] = {}
    for position, tensor in indexed:
        if tensor is None or not tensor.is_floating_point() or tensor.numel() == 0:
            continue
        groups.setdefault((tensor.device, tensor.dtype), []).append((position, tensor))
    return groups


def _max_magnitudes(group: list[tuple[int, Tensor]]) -> list[Tensor]:
    return torch._foreach_norm([tensor for _, tensor in group], ord=math.inf)


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


__all__ = ["all_finite", "first_non_finite", "first_non_finite_in_state"]
