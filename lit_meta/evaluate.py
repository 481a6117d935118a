"""Test-time adaptation of a trained checkpoint on held-out tasks: ``python evaluate.py --ckpt <path>``.

The checkpoint is read with ``weights_only=True`` and the model rebuilt from its validated
hyperparameters through lit-meta's own registry, so a crafted checkpoint cannot run code.

* Few-shot models: for each held-out task the meta-learned initialisation is adapted to the support
  set with the rule it was trained with (Reptile: plain SGD, seed 003's ``reptile_adapt``; MAML: its
  inner step; Meta-SGD: its learned rates) for 0..K steps, and the query loss (and accuracy) after each
  step is reported. For 1-D regression tasks it also draws the Reptile paper's Figure 1.
* Meta-RL over SB3 learners: on each held-out task, the return before and after each of K rounds of
  inner training, from the meta-learned initialisation and from a fresh random one (seed 002's metric).

Results are mean ± 95% CI over tasks, written to JSON and plotted.
"""

import json
from pathlib import Path
from typing import Literal

import torch
from jsonargparse import CLI
from tqdm import tqdm

from lit_meta.checkpoints import load_checkpoint, rebuild
from lit_meta.errors import ConfigError, require, require_positive, run_reporting_bad_input
from lit_meta.evaluation import plots
from lit_meta.evaluation.stats import mean_confidence_interval, summarise_per_step
from lit_meta.files import atomic_write_text, ensure_writable_directory, reason_of
from lit_meta.modules import FewShotModule
from lit_meta.noise import silence_library_noise
from lit_meta.rl_report import rl_report

FIGURE1_STEPS = (0, 1)
"""Besides the last step, the adaptation steps drawn in the Figure-1 plot."""


def evaluate(
    ckpt: str,
    tasks: int = 100,
    steps: int | None = None,
    shots: int | None = None,
    seed: int | None = None,
    split: Literal["test", "val"] = "test",
    out: str | None = None,
    device: str = "cpu",
    batch_size: int = 25,
    transductive: bool | None = None,
    episodes: int | None = None,
) -> dict:
    """Adapt a checkpoint's meta-learned initialisation to held-out tasks and report how well it does.

    :param ckpt: checkpoint to evaluate (e.g. ``runs/sine_reptile/checkpoints/last.ckpt``).
    :param tasks: number of held-out tasks.
    :param steps: adaptation steps K; results are reported after each of 0..K (default: the module's
        ``eval_inner_steps``; meta-RL: rounds of ``eval_step_timesteps`` of inner training, default
        ``eval_steps``).
    :param shots: support examples per task, per class for classification (default: the datamodule's
        ``shots``).
    :param seed: seed of the held-out task set (default: the training run's data seed).
    :param split: which held-out stream to draw from.
    :param out: output directory (default: ``<run dir>/evaluation``).
    :param device: ``cpu`` or ``cuda``.
    :param batch_size: tasks per batch (memory only; results do not depend on it).
    :param transductive: predict each task's query set as one batch (batch normalisation sees its
        statistics, the MAML paper's setting) or each query example with the support set alone (the
        Reptile paper's non-transductive setting); default: as the model was trained.
    :param episodes: meta-RL only: evaluation episodes per measurement (default: the module's).
    :return: the report that is also written to JSON.
    """
    require_positive("tasks", tasks)
    require_positive("batch_size", batch_size)
    if steps is not None:
        require_positive("steps", steps)
    if shots is not None:
        require_positive("shots", shots)
    if seed is not None:
        require(seed >= 0, f"seed must be zero or positive, got {seed}")
    checkpoint_path = Path(ckpt)
    module, datamodule = rebuild(load_checkpoint(checkpoint_path), source=f"checkpoint {checkpoint_path}")
    out_dir = Path(out) if out else checkpoint_path.parent.parent / "evaluation"
    try:
        ensure_writable_directory(out_dir)
    except OSError as error:
        raise ConfigError(f"the results cannot be written to {out_dir} ({reason_of(error)})") from None
    if hasattr(module, "adaptation_curves"):  # a meta-RL module (see lit_meta.rl_report)
        for name, value in {"shots": shots, "transductive": transductive}.items():
            if value is not None:
                raise ConfigError(f"--{name} applies to few-shot models, not to a {type(module).__name__}")
        require(device == "cpu", f"{type(module).__name__} evaluates on the CPU, got device '{device}'")
        return rl_report(module, datamodule, checkpoint_path, out_dir, tasks, steps, seed, split, episodes)
    if episodes is not None:
        raise ConfigError("--episodes applies to meta-RL models, not to a few-shot model")
    if not isinstance(module, FewShotModule) or datamodule is None:
        raise ConfigError(
            f"checkpoint {checkpoint_path} holds a {type(module).__name__}, not a few-shot model"
        )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' was asked for, but no CUDA device is available")
    module = module.to(device).eval()
    steps = module.eval_steps if steps is None else steps
    if seed is not None:
        datamodule.hparams.seed = seed
    task_set = [batch.to(device) for batch in datamodule.eval_tasks(split, tasks, batch_size, shots=shots)]
    transductive = module.hparams.transductive if transductive is None else transductive
    curve_batches = [
        module.adaptation_curve([batch], steps, transductive)
        for batch in tqdm(task_set, desc="adapting", unit="batch")
    ]
    loss = torch.cat([c.loss for c in curve_batches])
    accuracy = None if curve_batches[0].accuracy is None else torch.cat([c.accuracy for c in curve_batches])

    ways = getattr(datamodule, "ways", 1)  # regression tasks count examples, classification per class
    shots_per_task = task_set[0].support_x.shape[1] // ways
    stem = f"{checkpoint_path.stem}-{split}-{tasks}tasks-{steps}steps-{shots_per_task}shots"
    stem += f"-seed{datamodule.hparams.seed}" + ("" if transductive else "-nontransductive")
    report = {
        "checkpoint": str(checkpoint_path),
        "module": type(module).__name__,
        "algorithm": module.hparams.algorithm,
        "datamodule": type(datamodule).__name__,
        "split": split,
        "tasks": tasks,
        "ways": None if ways == 1 else ways,
        "shots": shots_per_task,
        "queries": task_set[0].query_x.shape[1] // ways,
        "steps": steps,
        "seed": datamodule.hparams.seed,
        "transductive": transductive,
        "data": datamodule.describe() if hasattr(datamodule, "describe") else dict(datamodule.hparams),
        "confidence": 0.95,
        "query_loss": summarise_per_step(loss),
        "query_accuracy": None if accuracy is None else summarise_per_step(accuracy),
    }
    report["final"] = {"query_loss": _mean_ci(loss[:, -1])}
    if accuracy is not None:
        report["final"]["query_accuracy"] = _mean_ci(accuracy[:, -1])
    title = f"{module.hparams.algorithm} · {tasks} held-out {split} tasks · {report['shots']} shots"
    if ways > 1:
        title += f" · {ways}-way" + ("" if transductive else " · non-transductive")
    files = {
        "loss_plot": plots.plot_adaptation_curve(
            {module.hparams.algorithm: report["query_loss"]}, out_dir / f"{stem}-loss.png", title
        )
    }
    if accuracy is not None:
        files["accuracy_plot"] = plots.plot_adaptation_curve(
            {module.hparams.algorithm: report["query_accuracy"]},
            out_dir / f"{stem}-accuracy.png",
            title,
            ylabel="query accuracy",
        )
    if hasattr(datamodule, "ground_truth") and task_set[0].support_x.shape[-1] == 1:
        files["figure1_plot"] = _figure1(
            module, datamodule, task_set[0].task(0), steps, out_dir / f"{stem}-figure1.png"
        )
    report["files"] = {name: str(path) for name, path in files.items()}
    json_path = out_dir / f"{stem}.json"
    atomic_write_text(json_path, json.dumps(report, indent=2))
    report["files"]["json"] = str(json_path)
    return report


def _mean_ci(values: torch.Tensor) -> dict[str, float]:
    mean, half_width = mean_confidence_interval(values)
    return {"mean": mean, "ci": half_width}


def _figure1(module: FewShotModule, datamodule, task, steps: int, path: Path) -> Path:
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


def main(args: list[str] | None = None) -> int:
    """Command-line entry: bad input prints one sentence and returns 2."""
    silence_library_noise()
    status, report = run_reporting_bad_input(
        lambda: CLI(evaluate, args=args, as_positional=False, exit_on_error=False)
    )
    if status:
        return status
    print(f"checkpoint: {report['checkpoint']}")
    if "return" in report:
        for name, final in report["final"].items():
            print(
                f"return after {report['steps']} steps ({report['x_values'][-1]} {report['x_label']}) on "
                f"{report['tasks']} held-out tasks, {name}: {final['mean']:.1f} ± {final['ci']:.1f} (95% CI)"
            )
        if report["x_label"].startswith("episode"):  # RL²: what a trial earned in all
            for name, total in report["total"].items():
                print(
                    f"cumulative return of a trial, {name}: {total['mean']:.2f} ± {total['ci']:.2f} (95% CI)"
                )
        for name, path in report["files"].items():
            print(f"{name}: {path}")
        return 0
    final = report["final"]
    loss = final["query_loss"]
    print(
        f"query loss after {report['steps']} steps on {report['tasks']} held-out tasks: "
        f"{loss['mean']:.4f} ± {loss['ci']:.4f} (95% CI)"
    )
    if "query_accuracy" in final:
        accuracy = final["query_accuracy"]
        print(f"query accuracy after {report['steps']} steps: {accuracy['mean']:.4f} ± {accuracy['ci']:.4f}")
    for name, path in report["files"].items():
        print(f"{name}: {path}")
    return 0
