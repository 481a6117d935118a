"""Reptile over SB3 learners on held-out task variants: the adaptation curve (return after 0..K rounds
of inner training) of the meta-learned initialisation against a fresh random one, mean ± 95% CI over
held-out tasks, and the wall time of meta-training on this machine.

Each config is trained exactly as ``python train.py fit --config configs/<name>.yaml`` does, then
scored as ``python evaluate.py --ckpt <run>/checkpoints/last.ckpt --tasks N --steps K`` does.

    python bench/sb3_reptile.py                                   # both configs, 20 tasks, K = 4
    python bench/sb3_reptile.py --configs cartpole_sb3_reptile --tasks 30

Results are merged into bench/results/sb3_reptile.json and the plots copied to bench/results/.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from config_runs import merge_record

from lit_meta.cli import LitMetaCLI
from lit_meta.evaluate import evaluate
from lit_meta.noise import silence_library_noise

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CONFIGS = ("cartpole_sb3_reptile", "pendulum_sb3_reptile")


def run(name: str, tasks: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        sys.argv = sys.argv[:1]  # the CLI reads its arguments from ``args`` only
        cli = LitMetaCLI(
            args=["--config", str(ROOT / "configs" / f"{name}.yaml"), "--run_dir", f"{folder}/run",
                  "--trainer.enable_progress_bar", "false"],
            run=False,
        )  # fmt: skip
        start = time.perf_counter()
        cli.trainer.fit(cli.model, cli.datamodule)
        seconds = time.perf_counter() - start
        report = evaluate(f"{folder}/run/checkpoints/last.ckpt", tasks=tasks, steps=steps)
        plot = RESULTS / f"{name}-adaptation.png"
        shutil.copy(report["files"]["return_plot"], plot)
    return {
        "config": name,
        "meta_iterations": cli.trainer.global_step,
        "meta_training_seconds": seconds,
        "torch_threads": torch.get_num_threads(),
        "tasks": tasks,
        "steps": steps,
        "step_timesteps": report["step_timesteps"],
        "updates": report["x_values"],
        "return": report["return"],
        "plot": str(plot.relative_to(ROOT)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    silence_library_noise()
    for name in args.configs:
        row = run(name, args.tasks, args.steps)
        merge_record(RESULTS / "sb3_reptile.json", name, row)
        print(f"\n{name}: {row['meta_iterations']} meta-iterations in {row['meta_training_seconds']:.0f} s")
        print("| rounds | inner updates | meta-learned init | fresh init |\n|---|---|---|---|")
        for step, updates in enumerate(row["updates"]):
            cells = [f"{row['return'][k][step]['mean']:.1f} ± {row['return'][k][step]['ci']:.1f}"
                     for k in ("meta-learned init", "fresh init")]  # fmt: skip
            print(f"| {step} | {updates} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
