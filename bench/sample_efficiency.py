"""PEARL's headline (Rakelly et al. 2019, Figure 3): return on held-out tasks against the environment steps
consumed in meta-training, measured along one run of ``configs/<config>.yaml`` (trained as
``python train.py fit --config ...`` does, one torch thread): PEARL, RL² or MAML-RL (each RL module counts
its environment steps).

Every ``--every`` iterations the run pauses and the module adapts, as ``evaluate.py`` scores it, to the same
``--tasks`` held-out tasks of its family (``--trials`` trials or episodes per measurement, ``--steps``
adaptation steps; default: the module's). "first" is the return before adapting (PEARL: episode 1, z from
the prior; RL²: episode 1 of a trial; MAML-RL: the initialisation's episodes), "adapted" the mean over the
steps after it (PEARL's posterior episodes, RL²'s later episodes, MAML-RL after each gradient step), and
"episodes" each step's own return (PEARL's episode 2, z from the posterior of episode 1, is the counterpart
of MAML-RL after one step).

    OMP_NUM_THREADS=1 .venv/bin/python bench/sample_efficiency.py --config nav2d_pearl
    OMP_NUM_THREADS=1 .venv/bin/python bench/sample_efficiency.py --config nav2d_rl2 --every 50
    OMP_NUM_THREADS=1 .venv/bin/python bench/sample_efficiency.py --config nav2d_pearl --tag=-rs100 -- \
        --model.init_args.reward_scale=100

Results go to bench/results/<config><tag>-sample-efficiency.json and a PNG next to it; a second PNG,
<family>-sample-efficiency.png, draws every result of the family (the config's prefix, e.g. nav2d) so far.
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
from lit_meta.evaluation.stats import mean_confidence_interval, summarise_per_step
from lit_meta.noise import silence_library_noise

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


class HeldOutReturn(pl.Callback):
    """Scores the module on fixed held-out tasks every ``every`` iterations (and after the last)."""

    def __init__(self, every: int, tasks: int, steps: int | None, trials: int | None, partial: Path) -> None:
        self.every, self.tasks, self.steps, self.trials = every, tasks, steps, trials
        self.records: list[dict] = []
        self.partial = partial
        """Where the records so far are written after each score (a run cut short keeps them)."""
        self.started = time.perf_counter()

    def score(self, module) -> None:
        held_out = module.task_data.eval_tasks("test", self.tasks)
        learner = module.curve_names()[0]
        steps = module.hparams.eval_steps if self.steps is None else self.steps
        curve = module.adaptation_curves(held_out, steps, self.trials, "test", (learner,))[learner]
        seconds = time.perf_counter() - self.started
        record = {"iteration": module.global_step, "environment_steps": module.environment_steps,
                  "training_seconds": seconds, "curve": learner, "steps": steps}  # fmt: skip
        for key, values in (
            ("first", curve[:, 0]),
            ("adapted", curve[:, 1:].mean(1)),
            ("last", curve[:, -1]),
        ):
            mean, half_width = mean_confidence_interval(values)
            record[key] = {"mean": mean, "ci": half_width}
        record["episodes"] = summarise_per_step(curve)
        self.records.append(record)
        self.partial.write_text(json.dumps(self.records, indent=2))
        print(f"iteration {module.global_step}, {module.environment_steps} environment steps: first "
              f"{estimate(record['first'])}, adapted {estimate(record['adapted'])}, per step "
              f"{' / '.join(estimate(step) for step in record['episodes'])}", flush=True)  # fmt: skip

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if module.global_step % self.every == 0 or module.global_step == trainer.max_steps:
            self.score(module)


def estimate(value: dict) -> str:
    return f"{value['mean']:.1f} ± {value['ci']:.1f}"


def maml_rl_reference(family: str) -> dict | None:
    """MAML-RL's final held-out return after one step on ``family`` (``nav2d`` or ``cheetah``) and the
    environment steps its training took at most (every episode of every meta-iteration run to the
    horizon), from bench/nav2d_maml_rl.py's or bench/cheetah_vel_maml_rl.py's result."""
    if family == "nav2d" and (RESULTS / "nav2d_maml_rl.json").exists():
        result = json.loads((RESULTS / "nav2d_maml_rl.json").read_text())
        iterations = result["runs"]["nav2d_maml_rl"]["meta_iterations"]
        # configs/nav2d_maml_rl.yaml: 20 goals x 20 episodes before and after the inner step, horizon 100
        return {
            "after_one_step": result["after_one_step"]["MAML"],
            "environment_steps_at_most": iterations * 20 * 40 * 100,
        }
    if family == "cheetah" and (RESULTS / "cheetah_vel_maml_rl.json").exists():
        result = json.loads((RESULTS / "cheetah_vel_maml_rl.json").read_text())
        # configs/cheetah_vel_maml_rl.yaml: 10 velocities x 10 episodes before and after the step, 200 steps
        after = result["return"]["meta-learned init"][1]
        return {
            "after_one_step": after,
            "environment_steps_at_most": result["meta_iterations"] * 10 * 20 * 200,
        }
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="nav2d_pearl", help="a PEARL, RL² or MAML-RL config")
    parser.add_argument("--max_steps", type=int, default=None, help="override the config's iterations")
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--steps", type=int, default=None, help="adaptation steps (default: the module's)")
    parser.add_argument("--trials", type=int, default=None, help="per measurement (default: the module's)")
    parser.add_argument("--tag", default="", help="suffix of the result files (for runs with overrides)")
    parser.add_argument(
        "--finish_partial",
        action="store_true",
        help="train nothing: write the results of a run stopped early from its .partial.json",
    )
    parser.add_argument("overrides", nargs="*", help="further train.py arguments, e.g. --model.init_args.x=1")
    args = parser.parse_args()
    silence_library_noise()
    torch.set_num_threads(1)
    stem = f"{args.config}{args.tag}"
    partial = RESULTS / f"{stem}-sample-efficiency.partial.json"
    records = json.loads(partial.read_text()) if args.finish_partial else train_and_score(args, partial)
    partial.unlink()
    write_results(args, stem, records)


def train_and_score(args: argparse.Namespace, partial: Path) -> list[dict]:
    """Train the config as train.py does, scored every ``args.every`` iterations; the records."""
    scorer = HeldOutReturn(args.every, args.tasks, args.steps, args.trials, partial)
    with tempfile.TemporaryDirectory() as folder:
        sys.argv = sys.argv[:1]
        cli_args = ["--config", str(ROOT / "configs" / f"{args.config}.yaml"), "--run_dir", f"{folder}/run",
                    "--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "0"]  # fmt: skip
        if args.max_steps is not None:
            cli_args += ["--trainer.max_steps", str(args.max_steps)]
        cli_args += args.overrides
        cli = LitMetaCLI(args=cli_args, run=False)
        cli.trainer.callbacks.append(scorer)
        cli.trainer.fit(cli.model, cli.datamodule)
    return scorer.records


def write_results(args: argparse.Namespace, stem: str, records: list[dict]) -> None:
    """The result JSON, its plot, the family plot and a markdown table of ``records``."""
    reference = maml_rl_reference(args.config.split("_")[0])
    learner, steps = records[-1]["curve"], [record["environment_steps"] for record in records]
    plot = plots.plot_adaptation_curves(
        {f"{learner}, {key}": [{"step": i, **r[name]} for i, r in enumerate(records)]
         for key, name in (("before adapting", "first"), ("adapted", "adapted"))},
        RESULTS / f"{stem}-sample-efficiency.png", f"{stem} · {args.tasks} held-out tasks",
        ylabel="return", xlabel="environment steps in meta-training", x_values=steps,
    )  # fmt: skip
    result = {"config": args.config, "overrides": args.overrides, "tasks": args.tasks, "trials": args.trials,
              "torch_threads": 1, "records": records, "maml_rl": reference,
              "plot": str(plot.relative_to(ROOT))}  # fmt: skip
    (RESULTS / f"{stem}-sample-efficiency.json").write_text(json.dumps(result, indent=2))
    print("| iteration | environment steps | before adapting | adapted | seconds |")
    print("|---|---|---|---|---|")
    for r in records:
        print(f"| {r['iteration']} | {r['environment_steps']:,} | {estimate(r['first'])} | "
              f"{estimate(r['adapted'])} | {r['training_seconds']:.0f} |")  # fmt: skip
    if reference:
        maml = reference["after_one_step"]
        print(f"MAML-RL after one step: {estimate(maml)}, "
              f"at most {reference['environment_steps_at_most']:,} environment steps")  # fmt: skip
    print(f"family plot: {plot_family(args.config.split('_')[0])}")


def plot_family(prefix: str) -> Path:
    """Every sample-efficiency result of configs named ``<prefix>_*``: the adapted return against
    environment steps, one line per run, on a logarithmic step axis."""
    curves, x_values = {}, {}
    for path in sorted(RESULTS.glob(f"{prefix}_*-sample-efficiency.json")):
        result = json.loads(path.read_text())
        label = path.name.removesuffix("-sample-efficiency.json")
        records = [r for r in result["records"] if "adapted" in r]
        curves[label] = [{"step": i, **r["adapted"]} for i, r in enumerate(records)]
        x_values[label] = [r["environment_steps"] for r in records]
    path = RESULTS / f"{prefix}-sample-efficiency.png"
    plots.plot_adaptation_curves(curves, path, f"{prefix}: held-out return after adapting", "return",
                                 "environment steps in meta-training", x_values, log_x=True)  # fmt: skip
    return path


if __name__ == "__main__":
    main()
