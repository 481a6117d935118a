"""Meta-World ML1 reach (Yu et al. 2019): the success rate on the 50 test goals of PEARL, MAML-RL and RL²,
each meta-trained for the same wall-clock budget on the 50 training goals, with 95% confidence intervals.

Each algorithm trains as ``python train.py fit --config configs/ml1_reach_<name>.yaml`` does (one torch
thread), stopped by ``--trainer.max_time`` after ``--minutes``; then it is scored as ``evaluate.py`` scores
it, on the same test goals: PEARL by posterior sampling (``--steps`` episodes, the first with z from the
prior), MAML-RL before and after one policy-gradient step, RL² over a trial of its episodes. A goal's
success rate is the share of its episodes in which the hand reached the goal (Meta-World's flag); the CI is
over the 50 goals. The environment steps each run consumed are counted exactly (Meta-World's episodes
always last 500 steps).

    OMP_NUM_THREADS=1 .venv/bin/python bench/ml1_success_rates.py --minutes 20
    OMP_NUM_THREADS=1 .venv/bin/python bench/ml1_success_rates.py --minutes 1 --tasks 4   # a smoke run

Results go to bench/results/ml1_reach_success.json and a PNG next to it.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from lit_meta.checkpoints import load_checkpoint
from lit_meta.cli import LitMetaCLI
from lit_meta.envs.meta_world import HORIZON
from lit_meta.evaluation import plots
from lit_meta.evaluation.stats import mean_confidence_interval
from lit_meta.noise import silence_library_noise
from lit_meta.registry import rebuild

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CONFIGS = {"PEARL": "ml1_reach_pearl", "MAML-RL": "ml1_reach_maml_rl", "RL²": "ml1_reach_rl2"}


def environment_steps(module, iterations: int) -> int:
    """What meta-training consumed: PEARL counts it; MAML-RL and RL² play whole 500-step episodes."""
    hparams, data = module.hparams, module.task_data.hparams
    if hasattr(module, "environment_steps"):
        return int(module.environment_steps)
    if "episodes_per_trial" in hparams:  # RL²: one trial per task of the meta-batch
        return iterations * data.meta_batch_size * hparams.episodes_per_trial * HORIZON
    # MAML-RL: episodes before and after each inner step, for every task of the meta-batch
    return iterations * data.meta_batch_size * hparams.episodes_per_task * (hparams.inner_steps + 1) * HORIZON


def train(name: str, folder: str, minutes: float) -> tuple[Path, dict]:
    sys.argv = sys.argv[:1]  # the CLI reads its arguments from ``args`` only
    whole, seconds = divmod(int(minutes * 60), 60)
    args = ["--config", str(ROOT / "configs" / f"{name}.yaml"), "--run_dir", f"{folder}/{name}",
            "--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "0",
            "--trainer.max_steps", "100000",
            "--trainer.max_time", f"00:00:{whole:02d}:{seconds:02d}"]  # fmt: skip
    cli = LitMetaCLI(args=args, run=False)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    iterations = cli.trainer.global_step
    return Path(folder) / name / "checkpoints" / "last.ckpt", {
        "config": name,
        "iterations": iterations,
        "training_seconds": time.perf_counter() - start,
        "environment_steps": environment_steps(cli.model, iterations),
    }


def estimate(values: torch.Tensor) -> dict:
    mean, half_width = mean_confidence_interval(values)
    return {"mean": mean, "ci": half_width}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=20.0, help="meta-training budget per algorithm")
    parser.add_argument("--tasks", type=int, default=50, help="test goals scored (ML1 has 50)")
    parser.add_argument("--steps", type=int, default=None, help="override each config's eval_steps")
    parser.add_argument("--episodes", type=int, default=None, help="override each config's eval_episodes")
    args = parser.parse_args()
    silence_library_noise()
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, name in CONFIGS.items():
            checkpoint, run = train(name, folder, args.minutes)
            module, datamodule = rebuild(load_checkpoint(checkpoint), source=str(checkpoint))
            steps = module.hparams.eval_steps if args.steps is None else args.steps
            tasks = datamodule.eval_tasks("test", args.tasks)
            start = time.perf_counter()
            curve_name = module.curve_names()[0]
            returns = module.adaptation_curves(
                tasks, steps, args.episodes, "test", (curve_name,), progress=True
            )
            successes = module.success_curves[curve_name]
            results[label] = {
                **run,
                "evaluation_seconds": time.perf_counter() - start,
                "x_label": module.evaluation_axis(steps)[1],
                "success_first": estimate(successes[:, 0]),
                "success_last": estimate(successes[:, -1]),
                "return_last": estimate(returns[curve_name][:, -1]),
                "success_per_step": [
                    {"step": i, **estimate(successes[:, i])} for i in range(successes.shape[1])
                ],
            }
            print(f"{label}: {run['iterations']} iterations, {run['environment_steps']:,} environment steps, "
                  f"success {results[label]['success_last']}", flush=True)  # fmt: skip
    plot = plots.plot_adaptation_curves(
        {label: result["success_per_step"] for label, result in results.items()},
        RESULTS / "ml1_reach_success.png", f"ML1 reach · {args.tasks} test goals · {args.minutes:g} min each",
        ylabel="success rate",
        xlabel="measurement (PEARL: episode; MAML-RL: steps taken; RL²: episode of trial)",
    )  # fmt: skip
    summary = {"minutes_per_algorithm": args.minutes, "tasks": args.tasks, "torch_threads": 1,
               "results": results, "plot": str(plot.relative_to(ROOT))}  # fmt: skip
    (RESULTS / "ml1_reach_success.json").write_text(json.dumps(summary, indent=2))
    print("| algorithm | iterations | environment steps | success, first | success, last | return, last |")
    print("|---|---|---|---|---|---|")
    for label, r in results.items():
        cells = [f"{r[key]['mean']:.2f} ± {r[key]['ci']:.2f}" for key in ("success_first", "success_last")]
        print(f"| {label} | {r['iterations']} | {r['environment_steps']:,} | {' | '.join(cells)} | "
              f"{r['return_last']['mean']:.0f} ± {r['return_last']['ci']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
