"""Test-time adaptation of a trained checkpoint on held-out tasks: ``python evaluate.py --ckpt <path>``.

This parses the arguments, rebuilds the model and dispatches to its report. The checkpoint is read with
``weights_only=True`` and the model rebuilt from its validated hyperparameters through lit-meta's own
registry (:mod:`lit_meta.registry`), so a crafted checkpoint cannot run code.

* Few-shot models (:mod:`lit_meta.evaluation.few_shot_report`): for each held-out task the meta-learned
  initialisation is adapted to the support set with the rule it was trained with, and the query loss
  (and accuracy) after each of 0..K steps is reported; 1-D regression also draws the Reptile paper's
  Figure 1.
* Meta-RL models (:mod:`lit_meta.evaluation.rl_report`): on each held-out task, the return before and
  after each of K adaptation steps, from the meta-learned initialisation and its baselines (the metric
  of the specification "Day 29: Meta-Reinforcement Learning": performance after K episodes).

Results are mean ± 95% CI over tasks, written to JSON and plotted.
"""

from pathlib import Path
from typing import Any, Literal

import torch

from lit_meta.checkpoints import load_checkpoint
from lit_meta.entry_points import run_function_cli
from lit_meta.errors import ConfigError, require, require_positive
from lit_meta.evaluation.few_shot_report import FewShotModel, few_shot_report, print_few_shot_report
from lit_meta.evaluation.rl_report import MetaRLModel, print_rl_report, rl_report
from lit_meta.files import ensure_writable_directory, reason_of
from lit_meta.registry import rebuild

PRINTERS = {"few-shot": print_few_shot_report, "meta-rl": print_rl_report}
"""How each kind of report (its ``report`` entry) prints its headline numbers."""


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
    compare: list[str] | None = None,
    model_options: dict[str, Any] | None = None,
) -> dict:
    """Adapt a checkpoint's meta-learned initialisation to held-out tasks and report how well it does.

    :param ckpt: checkpoint to evaluate (e.g. ``runs/sine_reptile/checkpoints/last.ckpt``).
    :param tasks: number of held-out tasks.
    :param steps: adaptation steps K; results are reported after each of 0..K (default: the module's
        ``eval_steps``; what a step is depends on the model: an inner gradient step, a round of inner
        training, a policy-gradient step, an episode of an RL² trial).
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
    :param compare: meta-RL only: further checkpoints of the same task family (e.g. PEARL, MAML-RL, RL²)
        evaluated on the very same held-out tasks and episode seeds; their curves join the report and
        one comparison plot.
    :param model_options: hyperparameters of the checkpoint's module replaced for this evaluation, those
        that do not fix its weights' shapes (e.g. ``{adaptation_actions: deterministic}`` for PEARL);
        recorded in the report. Compared checkpoints keep their own.
    :return: the report that is also written to JSON.
    """
    require_positive("tasks", tasks)
    require_positive("batch_size", batch_size)
    for name, value in {"steps": steps, "shots": shots, "episodes": episodes}.items():
        if value is not None:
            require_positive(name, value)
    if seed is not None:
        require(seed >= 0, f"seed must be zero or positive, got {seed}")
    checkpoint_path = Path(ckpt)
    module, datamodule = rebuild(
        load_checkpoint(checkpoint_path), source=f"checkpoint {checkpoint_path}", options=model_options
    )
    out_dir = Path(out) if out else checkpoint_path.parent.parent / "evaluation"
    try:
        ensure_writable_directory(out_dir)
    except OSError as error:
        raise ConfigError(f"the results cannot be written to {out_dir} ({reason_of(error)})") from None
    if isinstance(module, MetaRLModel):
        for name, value in {"shots": shots, "transductive": transductive}.items():
            if value is not None:
                raise ConfigError(f"--{name} applies to few-shot models, not to a {type(module).__name__}")
        require(device == "cpu", f"{type(module).__name__} evaluates on the CPU, got device '{device}'")
        compared = [compared_model(Path(path), checkpoint_path, datamodule) for path in compare or ()]
        return rl_report(
            module, datamodule, checkpoint_path, out_dir, tasks, steps, seed, split, episodes, compared
        )
    for name, value in {"episodes": episodes, "compare": compare}.items():
        if value is not None:
            raise ConfigError(f"--{name} applies to meta-RL models, not to a few-shot model")
    if not isinstance(module, FewShotModel) or datamodule is None:
        raise ConfigError(
            f"checkpoint {checkpoint_path} holds a {type(module).__name__}, not a few-shot model"
        )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' was asked for, but no CUDA device is available")
    return few_shot_report(
        module.to(device).eval(), datamodule, checkpoint_path, out_dir, tasks, steps, shots, seed, split,
        batch_size, transductive, device,
    )  # fmt: skip


def compared_model(path: Path, reference_path: Path, reference_data) -> tuple[Path, MetaRLModel, object]:
    """A checkpoint to compare with ``reference_path``'s: a meta-RL model trained on the same task family
    (environment, parameter ranges and environment arguments)."""
    module, datamodule = rebuild(load_checkpoint(path), source=f"checkpoint {path}")
    if not isinstance(module, MetaRLModel) or datamodule is None:
        raise ConfigError(f"checkpoint {path} holds a {type(module).__name__}, not a meta-RL model")
    if datamodule.describe() != reference_data.describe():
        raise ConfigError(
            f"checkpoint {path} was trained on {datamodule.describe()}, not on the task family of "
            f"{reference_path} ({reference_data.describe()}); compared checkpoints must share one"
        )
    return path, module, datamodule


def main(args: list[str] | None = None) -> int:
    """Command-line entry: bad input prints one sentence and returns 2."""
    status, report = run_function_cli(evaluate, args)
    if status:
        return status
    print(f"checkpoint: {report['checkpoint']}")
    PRINTERS[report["report"]](report)
    return 0
