"""The few-shot evaluation report of ``evaluate.py``: query loss (and accuracy) on held-out tasks after
0..K adaptation steps, as mean ± 95% CI, JSON and plots; for 1-D regression also the Reptile paper's
Figure 1.

The meta-learned initialisation is adapted with the rule it was trained with (Reptile: k steps of its
inner optimizer, plain SGD unless configured otherwise, the ``reptile_adapt`` of the specification
"Reptile"; MAML: its inner step; Meta-SGD: its learned rates).
"""

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from tqdm import tqdm

from lit_meta.algorithms import MetaAlgorithm
from lit_meta.datamodules import SineDataModule, TaskDataModule
from lit_meta.errors import require
from lit_meta.evaluation import plots
from lit_meta.evaluation.adaptation import AdaptationCurves
from lit_meta.evaluation.stats import format_estimate, mean_confidence_interval, summarise_per_step
from lit_meta.files import atomic_write_text
from lit_meta.tasks import TaskBatch

FIGURE1_STEPS = (0, 1)
"""Besides the last step, the adaptation steps drawn in the Figure-1 plot."""


@runtime_checkable
class FewShotModel(Protocol):
    """What a few-shot module offers the report."""

    hparams: Mapping[str, Any]
    """Holds ``algorithm`` (its name) and ``transductive`` (how it was trained to predict)."""
    algorithm: MetaAlgorithm
    eval_steps: int
    evaluation_options: Mapping[str, Any]
    """Hyperparameters replaced for this evaluation (recorded in the report)."""

    def adaptation_curves(
        self, tasks: Iterable[TaskBatch], steps: int | None = None, transductive: bool | None = None
    ) -> AdaptationCurves:
        """Query results of each task after 0..``steps`` adaptation steps."""


def few_shot_report(
    module: FewShotModel,
    datamodule: TaskDataModule,
    checkpoint_path: Path,
    out_dir: Path,
    tasks: int,
    steps: int | None,
    shots: int | None,
    seed: int | None,
    split: str,
    batch_size: int,
    transductive: bool | None,
    device: str,
) -> dict:
    """Adapt ``module`` to ``tasks`` held-out tasks of ``split`` (see ``evaluate.py`` for the arguments).

    An algorithm that adapts without steps (Prototypical Networks) reports its one result as step 0."""
    by_steps = module.algorithm.ADAPTS_BY_STEPS
    require(
        by_steps or steps is None,
        f"--steps does not apply to {module.hparams.algorithm}, which adapts in one closed-form step",
    )
    steps = module.eval_steps if steps is None else steps
    if seed is not None:
        datamodule.hparams.seed = seed
    task_set = [batch.to(device) for batch in datamodule.eval_tasks(split, tasks, batch_size, shots=shots)]
    transductive = module.hparams.transductive if transductive is None else transductive
    curve_batches = [
        module.adaptation_curves([batch], steps, transductive)
        for batch in tqdm(task_set, desc="adapting", unit="batch")
    ]
    loss = torch.cat([c.loss for c in curve_batches])
    accuracy = None if curve_batches[0].accuracy is None else torch.cat([c.accuracy for c in curve_batches])

    ways = getattr(datamodule, "ways", 1)  # regression tasks count examples, classification per class
    shots_per_task = task_set[0].support_x.shape[1] // ways
    stem = f"{checkpoint_path.stem}-{split}-{tasks}tasks-{steps}steps-{shots_per_task}shots"
    stem += f"-seed{datamodule.hparams.seed}" + ("" if transductive else "-nontransductive")
    algorithm = module.hparams.algorithm
    report = {
        "report": "few-shot",
        "checkpoint": str(checkpoint_path),
        "module": type(module).__name__,
        "algorithm": algorithm,
        "model_options": module.evaluation_options,
        "datamodule": type(datamodule).__name__,
        "split": split,
        "tasks": tasks,
        "ways": None if ways == 1 else ways,
        "shots": shots_per_task,
        "queries": task_set[0].query_x.shape[1] // ways,
        "steps": steps,
        "adapts_by_steps": by_steps,
        "seed": datamodule.hparams.seed,
        "transductive": transductive,
        "data": datamodule.describe(),
        "confidence": 0.95,
        "query_loss": summarise_per_step(loss),
        "query_accuracy": None if accuracy is None else summarise_per_step(accuracy),
    }
    report["final"] = {"query_loss": _mean_ci(loss[:, -1])}
    if accuracy is not None:
        report["final"]["query_accuracy"] = _mean_ci(accuracy[:, -1])
    title = f"{algorithm} · {tasks} held-out {split} tasks · {report['shots']} shots"
    if ways > 1:
        title += f" · {ways}-way" + ("" if transductive else " · non-transductive")
    files = {
        "loss_plot": plots.plot_adaptation_curves(
            {algorithm: report["query_loss"]}, out_dir / f"{stem}-loss.png", title
        )
    }
    if accuracy is not None:
        files["accuracy_plot"] = plots.plot_adaptation_curves(
            {algorithm: report["query_accuracy"]},
            out_dir / f"{stem}-accuracy.png",
            title,
            ylabel="query accuracy",
        )
    if isinstance(datamodule, SineDataModule) and task_set[0].support_x.shape[-1] == 1:
        files["figure1_plot"] = _figure1(
            module, datamodule, task_set[0].task(0), steps, out_dir / f"{stem}-figure1.png"
        )
    report["files"] = {name: str(path) for name, path in files.items()}
    json_path = out_dir / f"{stem}.json"
    atomic_write_text(json_path, json.dumps(report, indent=2))
    report["files"]["json"] = str(json_path)
    return report


def print_few_shot_report(report: dict) -> None:
    """The report's headline numbers, one line each."""
    final = report["final"]
    loss = final["query_loss"]
    adapted = f"after {report['steps']} steps"
    if not report.get("adapts_by_steps", True):
        adapted = "with the support set's prototypes"
    print(
        f"query loss {adapted} on {report['tasks']} held-out tasks: "
        f"{format_estimate(loss['mean'], loss['ci'])}"
    )
    if "query_accuracy" in final:
        accuracy = final["query_accuracy"]
        estimate = format_estimate(accuracy["mean"], accuracy["ci"])
        print(f"query accuracy {adapted}: {estimate}")
    for name, path in report["files"].items():
        print(f"{name}: {path}")


def _mean_ci(values: torch.Tensor) -> dict[str, float]:
    mean, half_width = mean_confidence_interval(values)
    return {"mean": mean, "ci": half_width}


def _figure1(module: FewShotModel, datamodule: SineDataModule, task, steps: int, path: Path) -> Path:
    """The Reptile paper's Figure 1 for one task: truth, support points, fits after 0, 1 and K steps."""
    low, high = datamodule.hparams.x_range
    grid = torch.linspace(low, high, 200, device=task.support_x.device).view(1, -1, 1)
    truth = datamodule.ground_truth(task, grid)[0, :, 0]
    wanted = {*FIGURE1_STEPS, steps}
    predictions = {}
    with torch.inference_mode(False), torch.enable_grad():
        trajectory = module.algorithm.adaptation_trajectory(task.support_x[0], task.support_y[0], steps)
        for step, model in enumerate(trajectory):
            if step in wanted:
                with torch.no_grad():
                    predictions[step] = model(grid[0])[:, 0].cpu().tolist()
    return plots.plot_regression_fit(
        grid[0, :, 0].cpu().tolist(),
        truth.cpu().tolist(),
        task.support_x[0, :, 0].cpu().tolist(),
        task.support_y[0, :, 0].cpu().tolist(),
        predictions,
        path,
        title=f"{module.hparams.algorithm}: adapting to a held-out sine task",
    )


__all__ = ["FewShotModel", "few_shot_report", "print_few_shot_report"]
