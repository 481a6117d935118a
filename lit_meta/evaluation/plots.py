"""Plots of adaptation results (PNG)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from lit_meta.files import atomic_write


def plot_adaptation_curves(
    curves: dict[str, list[dict[str, float]]],
    path: Path,
    title: str,
    ylabel: str = "query loss",
    xlabel: str = "adaptation steps",
    x_values: list[float] | dict[str, list[float]] | None = None,
    log_x: bool = False,
) -> Path:
    """Mean ± CI of a metric against adaptation steps, one line per entry of ``curves``.

    Each curve is a list of ``{"step", "mean", "ci"}`` records (see :func:`summarise_per_step`);
    ``x_values`` replaces the step numbers on the x-axis (e.g. cumulative gradient updates), for every
    curve or, as a dict, per curve; ``log_x`` draws the x axis on a logarithmic scale.
    """
    figure, axis = plt.subplots(figsize=(6, 4))
    for label, records in curves.items():
        x = x_values.get(label) if isinstance(x_values, dict) else x_values
        steps = list(x) if x is not None else [r["step"] for r in records]
        means = [r["mean"] for r in records]
        half_widths = [r["ci"] if r["ci"] == r["ci"] else 0.0 for r in records]  # NaN (one task) -> no band
        if len(steps) == 1:  # one result (an algorithm that adapts without steps): a point and its CI
            axis.errorbar(steps, means, yerr=half_widths, marker="o", capsize=6, label=label)
            axis.set_xticks(steps)
            continue
        axis.plot(steps, means, marker="o", markersize=3, label=label)
        axis.fill_between(
            steps,
            [m - h for m, h in zip(means, half_widths, strict=True)],
            [m + h for m, h in zip(means, half_widths, strict=True)],
            alpha=0.25,
        )
    if log_x:
        axis.set_xscale("log")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(f"{ylabel} (mean ± 95% CI)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    return _save(figure, path)


def plot_regression_fit(
    x: list[float],
    truth: list[float],
    support_x: list[float],
    support_y: list[float],
    predictions: dict[int, list[float]],
    path: Path,
    title: str,
) -> Path:
    """Figure 1 of the Reptile paper: the true function, the K support points, and the model's
    prediction after each number of adaptation steps in ``predictions``."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    axis.plot(x, truth, color="black", linewidth=2, label="true function")
    axis.scatter(
        support_x, support_y, color="black", marker="^", zorder=5, label=f"{len(support_x)} support points"
    )
    for steps, prediction in sorted(predictions.items()):
        axis.plot(x, prediction, linestyle="--", label=f"after {steps} step{'s' if steps != 1 else ''}")
    axis.set_xlabel("x")
    axis.set_ylabel("y")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    try:
        atomic_write(path, lambda file: figure.savefig(file, dpi=120, format="png"))
    finally:
        plt.close(figure)
    return path
