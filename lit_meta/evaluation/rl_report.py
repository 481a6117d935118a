"""The meta-RL evaluation report of ``evaluate.py``: return on held-out tasks after 0..K adaptation steps
(rounds of inner training, policy-gradient steps, or episodes of a trial), one curve per method (the
meta-learned initialisation and its baselines), as mean ± 95% CI, JSON and a plot.

Every meta-RL module offers what :class:`MetaRLModel` lists; the report needs nothing else of it.
"""

import json
from collections.abc import Mapping, Sequence
from functools import partial
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
    environment_steps: int
    """Environment steps the checkpoint took in meta-training."""
    evaluation_options: Mapping[str, Any]
    """Hyperparameters replaced for this evaluation (recorded in the report)."""

    def adaptation_curves(
        self, tasks: Sequence, steps: int, episodes: int, split: str, progress: bool = False
    ) -> dict[str, Tensor]:
        """``{method: Tensor[tasks, steps + 1]}``: each method's return on each task before adaptation
        and after each of ``steps`` adaptation steps (the meta-learned initialisation and baselines)."""

    def evaluation_axis(self, steps: int) -> tuple[list[int], str]:
        """``(x_values, x_label)``: what the steps mean on the plot's x-axis."""

    def evaluation_details(self) -> dict:
        """Settings the report records next to the results."""


def method_results(
    module: MetaRLModel, tasks: list, steps: int | None, split: str, episodes: int | None
) -> dict:
    """One module's adaptation curves on ``tasks``: per-step return (and success rate, for a family with a
    success flag) of each of its curves, its final and cumulative return, with 95% CIs."""
    steps = module.hparams.eval_steps if steps is None else steps
    episodes = module.hparams.eval_episodes if episodes is None else episodes
    require_positive("episodes", episodes)
    curves = module.adaptation_curves(tasks, steps, episodes, split, progress=True)
    x_values, x_label = module.evaluation_axis(steps)
    results = {
        "module": type(module).__name__,
        "learner": module.learner_name,
        "model_options": module.evaluation_options,
        "steps": steps,
        "environment_steps": module.environment_steps,
        **module.evaluation_details(),
        "x_label": x_label,
        "x_values": x_values,
        "episodes": episodes,
        "return": {name: summarise_per_step(values) for name, values in curves.items()},
        "per_task_final_return": {name: values[:, -1].tolist() for name, values in curves.items()},
        "final": {name: estimate(values[:, -1]) for name, values in curves.items()},
        # the sum over the curve: RL²'s cumulative reward of a trial (bandits: over all pulls)
        "total": {name: estimate(values.sum(1)) for name, values in curves.items()},
    }
    if module.success_curves:  # a family with a success flag (Meta-World)
        successes = module.success_curves.items()
        results["success_rate"] = {name: summarise_per_step(values) for name, values in successes}
        results["final_success_rate"] = {name: estimate(values[:, -1]) for name, values in successes}
    return results


def estimate(values: Tensor) -> dict[str, float]:
    mean, half_width = mean_confidence_interval(values)
    return {"mean": mean, "ci": half_width}


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
    compared: Sequence[tuple[Path, MetaRLModel, Any]] = (),
) -> dict:
    """Evaluate an RL module's ``adaptation_curves`` on ``tasks`` held-out tasks of ``split``, and those of
    each ``(checkpoint path, module, datamodule)`` of ``compared`` on the very same tasks and episode
    seeds (their curves go to ``report["compared"]`` and, with the first module's, to one plot)."""
    if seed is not None:
        datamodule.hparams.seed = seed
    task_list = datamodule.eval_tasks(split, tasks)
    results = method_results(module, task_list, steps, split, episodes)
    stem = f"{checkpoint_path.stem}-{split}-{tasks}tasks-{results['steps']}steps"
    stem += f"-seed{datamodule.hparams.seed}"
    report = {
        "report": "meta-rl",
        "checkpoint": str(checkpoint_path),
        "datamodule": type(datamodule).__name__,
        "data": datamodule.describe(),
        "split": split,
        "tasks": tasks,
        **results,
        "seed": datamodule.hparams.seed,
        "confidence": 0.95,
    }
    title = f"{module.learner_name} · {tasks} held-out {split} tasks · {datamodule.hparams.env}"
    report["files"] = {}
    for metric, label in METRICS.items():
        if metric in report:
            path = out_dir / f"{stem}-{metric.split('_')[0]}.png"
            plot = plots.plot_adaptation_curves(report[metric], path, title, label, results["x_label"],
                                                results["x_values"])  # fmt: skip
            report["files"][f"{metric.split('_')[0]}_plot"] = str(plot)
    if compared:
        report["compared"] = {}
        for path, other, other_data in compared:
            other_data.hparams.seed = datamodule.hparams.seed  # the same episode seeds on every task
            report["compared"][str(path)] = method_results(other, task_list, steps, split, episodes)
        stem += f"-compared{len(compared)}"
        sections = [report, *report["compared"].values()]
        for metric, label in METRICS.items():
            if all(metric in section for section in sections):
                path = out_dir / f"{stem}-{metric.split('_')[0]}.png"
                plot = plot_comparison(sections, metric, label, path, f"{tasks} held-out {split} tasks · "
                                       f"{datamodule.hparams.env}")  # fmt: skip
                report["files"][f"comparison_{metric.split('_')[0]}_plot"] = str(plot)
    json_path = out_dir / f"{stem}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json_path, json.dumps(report, indent=2))
    report["files"]["json"] = str(json_path)
    return report


METRICS = {"return": "return", "success_rate": "success rate"}
"""The per-step metrics a report may hold, and their axis labels."""


def plot_comparison(sections: list[dict], metric: str, label: str, path: Path, title: str) -> Path:
    """Every curve of every compared module in one plot, each against its own adaptation axis (the legend
    names the method and what its x means: episodes, policy-gradient steps)."""
    curves, x_values = {}, {}
    for section in sections:
        for name, records in section[metric].items():
            key = f"{curve_label(section, name)} ({section['x_label']})"
            while key in curves:  # two checkpoints of one method
                key += "'"
            curves[key], x_values[key] = records, section["x_values"]
    return plots.plot_adaptation_curves(curves, path, title, label, "adaptation step", x_values)


def print_rl_report(report: dict) -> None:
    """The report's headline numbers, one line each (and those of every compared checkpoint)."""
    compared = report.get("compared", {})
    print_results(report, report["tasks"], bool(compared))
    for path, section in compared.items():
        print(f"compared checkpoint: {path}")
        print_results(section, report["tasks"], True)
    for name, path in report["files"].items():
        print(f"{name}: {path}")


def print_results(section: dict, tasks: int, compared: bool) -> None:
    """One module's lines; next to others' (``compared``), each curve names its method."""
    name_of = partial(curve_label, section) if compared else lambda name: name
    label, last = section["x_label"], section["x_values"][-1]
    print(f"{section['learner']}: meta-trained for {section['environment_steps']:,} environment steps")
    for name, final in section["final"].items():
        print(
            f"return after {section['steps']} steps ({label}: {last}) on {tasks} held-out tasks, "
            f"{name_of(name)}: {format_estimate(final['mean'], final['ci'], 1)}"
        )
    for name, final in section.get("final_success_rate", {}).items():
        rate = format_estimate(final["mean"], final["ci"], 2)
        print(f"final success rate, {name_of(name)}: {rate}")
    if label.startswith("episode"):  # RL², PEARL: what a trial earned in all
        for name, total in section["total"].items():
            total = format_estimate(total["mean"], total["ci"], 2)
            print(f"cumulative return of a trial, {name_of(name)}: {total}")


def curve_label(section: dict, name: str) -> str:
    """A curve's name, with its method's where the curve does not say it (``MAML-RL · random init``)."""
    return name if section["learner"] in name else f"{section['learner']} · {name}"


__all__ = ["MetaRLModel", "method_results", "plot_comparison", "print_rl_report", "rl_report"]
