"""What every RL module's adaptation curves must satisfy, checked the same way for each module."""

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def check_adaptation_curves(
    make_module: Callable[[], object],
    tasks: Sequence,
    steps: int,
    episodes: int,
    names: list[str],
    width: int,
    seeded_per_task: Sequence[str] | None = None,
) -> dict[str, Tensor]:
    """The curves of a module from ``make_module()`` on ``tasks`` (split ``test``): exactly ``names``, each
    ``[tasks, width]`` in float64, leaving the module's weights as they were; and a second module made the
    same way draws the same numbers one task at a time for the curves in ``seeded_per_task`` (default: all;
    each task has its own seed, however tasks are batched). Returns the curves."""
    module = make_module()
    before = {key: value.clone() for key, value in module.state_dict().items()}
    curves = module.adaptation_curves(tasks, steps, episodes, "test")
    assert list(curves) == names
    for curve in curves.values():
        assert curve.shape == (len(tasks), width) and curve.dtype == torch.float64
        assert torch.isfinite(curve).all()
    for key, value in module.state_dict().items():  # adaptation works on copies
        assert torch.equal(value, before[key]), key
    again = make_module()
    one_by_one = [
        again.adaptation_curves([task], steps, episodes, "test", first_index=i)
        for i, task in enumerate(tasks)
    ]
    for name in names if seeded_per_task is None else seeded_per_task:
        curve = curves[name]
        assert torch.equal(torch.cat([single[name] for single in one_by_one]), curve), name
    return curves
