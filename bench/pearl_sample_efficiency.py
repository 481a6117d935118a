"""PEARL's headline (Rakelly et al. 2019, Figure 3): return on held-out tasks against the environment steps
consumed in meta-training, measured along one run of ``configs/<config>.yaml`` (trained as
``python train.py fit --config ...`` does, one torch thread), and compared with MAML-RL's final held-out
return and its environment steps (bench/nav2d_maml_rl.py's result, on the same 40 held-out goals).

Every ``--every`` iterations the run pauses and PEARL adapts by posterior sampling on the same ``--tasks``
held-out tasks (``--trials`` trials each, ``--steps`` episodes per trial: episode 1 with z from the prior,
later ones from the posterior of the episodes before), exactly as ``evaluate.py`` scores it.

    OMP_NUM_THREADS=1 .venv/bin/python bench/pearl_sample_efficiency.py                  # nav2d_pearl
    OMP_NUM_THREADS=1 .venv/bin/python bench/pearl_sample_efficiency.py --max_steps 40 --every 10

Results go to bench/results/<config>-sample-efficiency.json and a PNG next to it.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from lit_meta.cli import LitMetaCLI
from lit_meta.evaluation import plots
from lit_meta.evaluation.stats import mean_confidence_interval
from lit_meta.noise import silence_library_noise

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


class HeldOutReturn(pl.Callback):
    """Scores the module on fixed held-out tasks every ``every`` iterations (and after the last)."""

    def __init__(self, every: int, tasks: int, steps: int, trials: int) -> None:
        self.every, self.tasks, self.steps, self.trials = every, tasks, steps, trials
        self.records: list[dict] = []
        self.started = time.perf_counter()

    def score(self, module) -> None:
        held_out = module.task_data.eval_tasks("test", self.tasks)
        curve = module.adaptation_curves(held_out, self.steps, self.trials, "test", ("PEARL",))["PEARL"]
        prior = mean_confidence_interval(curve[:, 0])
        posterior = mean_confidence_interval(curve[:, 1:].mean(1))
        last = mean_confidence_interval(curve[:, -1])
        record = {
            "iteration": module.global_step, "environment_steps": module.environment_steps,
            "training_seconds": time.perf_counter() - self.started,
            "prior": {"mean": prior[0], "ci": prior[1]},
            "posterior": {"mean": posterior[0], "ci": posterior[1]},
            "last_episode": {"mean": last[0], "ci": last[1]},
        }  # fmt: skip
        self.records.append(record)
        print(f"iteration {module.global_step}, {module.environment_steps} environment steps: prior "
              f"{estimate(record['prior'])}, posterior {estimate(record['posterior'])}")  # fmt: skip

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if module.global_step % self.every == 0 or module.global_step == trainer.max_steps:
            self.score(module)


def estimate(value: dict) -> str:
    return f"{value['mean']:.1f} ± {value['ci']:.1f}"


def maml_rl_reference() -> dict | None:
    """MAML-RL's final held-out return on navigation and the environment steps its training took at most
    (every episode of every meta-iteration run to the horizon), from bench/nav2d_maml_rl.py's result."""
    path = RESULTS / "nav2d_maml_rl.json"
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    iterations = result["runs"]["nav2d_maml_rl"]["meta_iterations"]
    # configs/nav2d_maml_rl.yaml: 20 goals x 20 episodes before and after the inner step, horizon 100
    return {
        "after_one_step": result["after_one_step"]["MAML"],
        "environment_steps_at_most": iterations * 20 * 40 * 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="nav2d_pearl")
    parser.add_argument("--max_steps", type=int, default=None, help="override the config's iterations")
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--trials", type=int, default=4)
    args = parser.parse_args()
    silence_library_noise()
    torch.set_num_threads(1)
    scorer = HeldOutReturn(args.every, args.tasks, args.steps, args.trials)
    with tempfile.TemporaryDirectory() as folder:
        sys.argv = sys.argv[:1]
        cli_args = ["--config", str(ROOT / "configs" / f"{args.config}.yaml"), "--run_dir", f"{folder}/run",
                    "--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "0"]  # fmt: skip
        if args.max_steps is not None:
            cli_args += ["--trainer.max_steps", str(args.max_steps)]
        cli = LitMetaCLI(args=cli_args, run=False)
        cli.trainer.callbacks.append(scorer)
        cli.trainer.fit(cli.model, cli.datamodule)
    records, reference = scorer.records, maml_rl_reference() if args.config.startswith("nav2d") else None
    steps = [record["environment_steps"] for record in records]
    plot = plots.plot_adaptation_curves(
        {f"PEARL, episode {key}": [{"step": i, **r[name]} for i, r in enumerate(records)]
         for key, name in (("1 (prior z)", "prior"), (f"2-{args.steps} (posterior z)", "posterior"))},
        RESULTS / f"{args.config}-sample-efficiency.png", f"{args.config} · {args.tasks} held-out tasks",
        ylabel="return", xlabel="environment steps in meta-training", x_values=steps,
    )  # fmt: skip
    result = {"config": args.config, "tasks": args.tasks, "episodes": args.steps, "trials": args.trials,
              "torch_threads": 1, "records": records, "maml_rl": reference,
              "plot": str(plot.relative_to(ROOT))}  # fmt: skip
    (RESULTS / f"{args.config}-sample-efficiency.json").write_text(json.dumps(result, indent=2))
    print("| iteration | environment steps | episode 1 (prior z) | episodes 2-K (posterior z) | seconds |")
    print("|---|---|---|---|---|")
    for r in records:
        print(f"| {r['iteration']} | {r['environment_steps']:,} | {estimate(r['prior'])} | "
              f"{estimate(r['posterior'])} | {r['training_seconds']:.0f} |")  # fmt: skip
    if reference:
        maml = reference["after_one_step"]
        print(f"MAML-RL after one step: {estimate(maml)}, "
              f"at most {reference['environment_steps_at_most']:,} environment steps")  # fmt: skip


if __name__ == "__main__":
    main()
