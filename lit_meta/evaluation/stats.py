"""Summary statistics for results over tasks."""

import math

from scipy import stats
from torch import Tensor


def mean_confidence_interval(values: Tensor, confidence: float = 0.95) -> tuple[float, float]:
    """Mean of ``values`` and the half-width of its two-sided Student-t confidence interval.

    Few-shot papers report accuracy as mean ± 95% CI over test tasks; ``(m, h)`` reads as ``m ± h``.
    """
    values = values.detach().double().flatten().cpu()
    n = values.numel()
    if n == 0:
        raise ValueError("no values to summarise")
    mean = values.mean().item()
    if n == 1:
        return mean, math.nan
    sem = values.std(unbiased=True).item() / math.sqrt(n)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * sem


def summarise_per_step(values: Tensor, confidence: float = 0.95) -> list[dict[str, float]]:
    """``[tasks, steps]`` results to one ``{"step", "mean", "ci"}`` record per step."""
    records = []
    for step in range(values.shape[1]):
        mean, half_width = mean_confidence_interval(values[:, step], confidence)
        records.append({"step": step, "mean": mean, "ci": half_width})
    return records


def format_estimate(mean: float, half_width: float, digits: int = 4) -> str:
    """``mean ± half_width (95% CI)`` for printing; with a single task there is no interval to give, and
    the text says so instead of printing ``± nan``."""
    if math.isnan(half_width):
        return f"{mean:.{digits}f} (a single task: no confidence interval)"
    return f"{mean:.{digits}f} ± {half_width:.{digits}f} (95% CI)"


__all__ = ["format_estimate", "mean_confidence_interval", "summarise_per_step"]
