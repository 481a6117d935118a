"""A short MAML-RL run on HalfCheetah goal velocities (Finn, Abbeel & Levine 2017, Figure 5): the return
before and after one adaptation step at every meta-iteration of training, then the return on held-out
target velocities after 0..K steps from the meta-learned and from a random initialisation.

Trained exactly as ``python train.py fit --config configs/cheetah_vel_maml_rl.yaml`` (one intra-op
thread), scored as ``python evaluate.py --ckpt <run>/checkpoints/last.ckpt --tasks 20 --steps 2``.

    python bench/cheetah_vel_maml_rl.py

Results go to bench/results/cheetah_vel_maml_rl.json and two PNGs next to it.
"""

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from lit_meta.cli import LitMetaCLI
from lit_meta.evaluate import evaluate
from lit_meta.evaluation import plots
from lit_meta.noise import silence_library_noise

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
NAME = "cheetah_vel_maml_rl"


def training_curve(run_dir: Path) -> dict[str, list[float]]:
    """``train/return_before`` and ``train/return_after`` per meta-iteration, from the run's CSV log."""
    curves: dict[str, list[float]] = {"before adaptation": [], "after 1 step": []}
    with open(next((run_dir / "csv").glob("version_*/metrics.csv"))) as file:
        for row in csv.DictReader(file):
            if row.get("train/return_before"):
                curves["before adaptation"].append(float(row["train/return_before"]))
                curves["after 1 step"].append(float(row["train/return_after"]))
    return curves


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    silence_library_noise()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        sys.argv = sys.argv[:1]
        cli = LitMetaCLI(
            args=["--config", str(ROOT / "configs" / f"{NAME}.yaml"), "--run_dir", str(run_dir),
                  "--trainer.enable_progress_bar", "false"],
            run=False,
        )  # fmt: skip
        start = time.perf_counter()
        cli.trainer.fit(cli.model, cli.datamodule)
        seconds = time.perf_counter() - start
        curve = training_curve(run_dir)
        report = evaluate(str(run_dir / "checkpoints" / "last.ckpt"), tasks=args.tasks, steps=args.steps)
        held_out_plot = RESULTS / f"{NAME}-adaptation.png"
        shutil.copy(report["files"]["return_plot"], held_out_plot)
    training_plot = plots.plot_adaptation_curves(
        {name: [{"step": i, "mean": v, "ci": float("nan")} for i, v in enumerate(values)]
         for name, values in curve.items()},
        RESULTS / f"{NAME}-training.png", "HalfCheetah goal velocity · meta-training",
        ylabel="mean return of the meta-batch", xlabel="meta-iteration",
    )  # fmt: skip
    result = {
        "config": NAME,
        "meta_iterations": cli.trainer.global_step,
        "training_seconds": seconds,
        "torch_threads": 1,
        "training_curve": curve,
        "tasks": args.tasks,
        "steps": args.steps,
        "return": report["return"],
        "plots": [str(held_out_plot.relative_to(ROOT)), str(training_plot.relative_to(ROOT))],
    }
    (RESULTS / f"{NAME}.json").write_text(json.dumps(result, indent=2))
    print(f"{result['meta_iterations']} meta-iterations in {seconds:.0f} s")
    for name, records in report["return"].items():
        print(name, " ".join(f"{r['mean']:.1f}±{r['ci']:.1f}" for r in records))


if __name__ == "__main__":
    main()
