"""The meta-RL evaluation report of ``evaluate.py``: return on held-out tasks after 0..K adaptation steps
(rounds of inner training, policy-gradient steps, or episodes of a trial), one curve per method (the
meta-learned initialisation and its baselines), as mean ± 95% CI, JSON and a plot.

Every meta-RL module offers what :class:`MetaRLModel` lists; the report needs nothing else of it.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from lit_meta.errors import require_positive
from lit_meta.evaluation import plots
from lit_meta.evaluation.stats import format_estimate, mean_confidence_interval, summarise_per_step
from lit_meta.files import atomic_write_text


@runtime_checkable
class MetaRLModel(Protocol):
    """What a meta-RL module offers the report."""

    hparams: Mapping[str, Any]
    """Holds ``eval_steps`` (default K) and ``eval_episodes`` (episodes per measurement)."""
    learner_name: str
    """The method's name, for titles."""

    def adaptation_curves(
        self, tasks: Sequence, steps: int, episodes: int, split: str, progress: bool = False
    ) -> dict[str, Tensor]:
        """``{method: Tensor[tasks, steps + 1]}``: each method's return on each task before adaptation
        and after each of ``steps`` adaptation steps (the meta-learned initialisation and baselines)."""

    def evaluation_axis(self, steps: int) -> tuple[list[int], str]:
        """``(x_values, x_label)``: what the steps mean on the plot's x-axis."""

    def evaluation_details(self) -> dict:
        """Settings the report records next to the results."""


def rl_report(
    module: MetaRLModel,
    datamodule,
    checkpoint_path: Path,
    out_dir: Path,
    tasks: int,
    steps: int | None,
    seed: int | None,
    split: str,
    episodes: int | None,
) -> dict:
    """Evaluate an RL module's ``adaptation_curves`` on ``tasks`` held-out tasks of ``split``."""
    steps = module.hparams.eval_steps if steps is None else steps
    episodes = module.hparams.eval_episodes if episodes is None else episodes
    require_positive("episodes", episodes)
    if seed is not None:
        datamodule.hparams.seed = seed
    task_list = datamodule.eval_tasks(split, tasks)
    curves = module.adaptation_curves(task_list, steps, episodes, split, progress=True)
    x_values, x_label = module.evaluation_axis(steps)
    stem = f"{checkpoint_path.stem}-{split}-{tasks}tasks-{steps}steps-seed{datamodule.hparams.seed}"
    report = {
        "report": "meta-rl",
        "checkpoint": str(checkpoint_path),
        "module": type(module).__name__,
        "learner": module.learner_name,
        "datamodule": type(datamodule).__name__,
        "data": datamodule.describe(),
        "split": split,
        "tasks": tasks,
        "steps": steps,
        **module.evaluation_details(),
        "x_label": x_label,
        "x_values": x_values,
        "episodes": episodes,
        "seed": datamodule.hparams.seed,
        "confidence": 0.95,
        "return": {name: summarise_per_step(values) for name, values in curves.items()},
        "per_task_final_return": {name: values[:, -1].tolist() for name, values in curves.items()},
    }
    report["final"], report["total"] = {}, {}
    for name, values in curves.items():
        mean, half_width = mean_confidence_interval(values[:, -1])
        report["final"][name] = {"mean": mean, "ci": half_width}
        # the sum over the curve: RL²'s cumulative reward of a trial (bandits: over all pulls)
        mean, half_width = mean_confidence_interval(values.sum(1))
        report["total"][name] = {"mean": mean, "ci": half_width}
    title = f"{module.learner_name} · {tasks} held-out {split} tasks · {datamodule.hparams.env}"
    plot = plots.plot_adaptation_curves(
        report["return"],
        out_dir / f"{stem}-return.png",
        title,
        ylabel="return",
        xlabel=x_label,
        x_values=x_values,
    )
    report["files"] = {"return_plot": str(plot)}
    if module.success_curves:  # a family with a success flag (Meta-World)
        report["success_rate"] = {name: summarise_per_step(v) for name, v in module.success_curves.items()}
        report["final_success_rate"] = {}
        for name, values in module.success_curves.items():
            mean, half_width = mean_confidence_interval(values[:, -1])
            report["final_success_rate"][name] = {"mean": mean, "ci": half_width}
        report["files"]["success_plot"] = str(
            plots.plot_adaptation_curves(
                report["success_rate"],
                out_dir / f"{stem}-success.png",
                title,
                ylabel="success rate",
                xlabel=x_label,
                x_values=x_values,
            )
        )
    json_path = out_dir / f"{stem}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json_path, json.dumps(report, indent=2))
    report["files"]["json"] = str(json_path)
    return report


def print_rl_report(report: dict) -> None:
    """The report's headline numbers, one line each."""
    label, last = report["x_label"], report["x_values"][-1]
    for name, final in report["final"].items():
        print(
            f"return after {report['steps']} steps ({label}: {last}) on {report['tasks']} held-out tasks, "
            f"{name}: {format_estimate(final['mean'], final['ci'], 1)}"
        )
    if label.startswith("episode"):  # RL²: what a trial earned in all
        for name, total in report["total"].items():
            print(f"cumulative return of a trial, {name}: {format_estimate(total['mean'], total['ci'], 2)}")
    for name, path in report["files"].items():
        print(f"{name}: {path}")


__all__ = ["MetaRLModel", "print_rl_report", "rl_report"]
