"""Multi-task VarShare SAC on Pendulum variants (VarShare spec): the average deterministic return over the
training tasks and SAC updates per second, with and without the Reptile meta-update; then, on unseen
tasks (new task id, μ = 0), the return after 0..K episodes of SAC from each model's θ and from scratch.

Trained exactly as ``python train.py fit --config configs/pendulum_varshare_sac.yaml`` (one torch
thread; ``--max_steps`` episodes), scored as ``python evaluate.py --ckpt ... --tasks N --steps K``.

    OMP_NUM_THREADS=1 python bench/pendulum_varshare_sac.py --max_steps 200 --tasks 5 --steps 3

Results go to bench/results/pendulum_varshare_sac.json and bench/results/pendulum_varshare_sac-unseen.png.
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
from lit_meta.evaluation import plots
from lit_meta.evaluation.stats import summarise_per_step
from lit_meta.noise import silence_library_noise
from lit_meta.registry import rebuild

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VARIANTS = {"VarShare SAC + Reptile": [], "VarShare SAC": ["--model.init_args.meta_step_size", "null"]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max_steps", type=int, default=None, help="episodes (default: the config's)")
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    silence_library_noise()
    torch.set_num_threads(1)
    runs, curves = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, overrides) in enumerate(VARIANTS.items()):
            sys.argv = sys.argv[:1]
            config = str(ROOT / "configs" / "pendulum_varshare_sac.yaml")
            cli_args = ["--config", config, "--run_dir", f"{folder}/{index}",
                        "--trainer.enable_progress_bar", "false", *overrides]  # fmt: skip
            if args.max_steps is not None:
                cli_args += ["--trainer.max_steps", str(args.max_steps)]
            cli = LitMetaCLI(args=cli_args, run=False)
            start = time.perf_counter()
            cli.trainer.fit(cli.model, cli.datamodule)
            seconds = time.perf_counter() - start
            final = cli.trainer.validate(cli.model, cli.datamodule, verbose=False)[0]
            runs[name] = {
                "episodes": cli.trainer.global_step,
                "training_seconds": seconds,
                "sac_updates": cli.model.updates,
                "updates_per_second": cli.model.updates / seconds,
                "average_return_over_training_tasks": final["val/return"],
                "per_task_return": {k: v for k, v in final.items() if k.startswith("val/return/")},
            }
            print(name, runs[name])
            checkpoint = Path(folder) / str(index) / "checkpoints" / "last.ckpt"
            module, datamodule = rebuild(load_checkpoint(checkpoint), source=str(checkpoint))
            wanted = (module.learner_name,) + (("SAC from scratch",) if index == 0 else ())
            tasks = datamodule.eval_tasks("test", args.tasks)
            curves.update(module.adaptation_curves(tasks, args.steps, None, "test", wanted, progress=True))
    summary = {name: summarise_per_step(values) for name, values in curves.items()}
    plot = plots.plot_adaptation_curves(
        summary, RESULTS / "pendulum_varshare_sac-unseen.png", f"Pendulum · {args.tasks} unseen tasks",
        ylabel="return", xlabel="SAC training episodes on the unseen task",
        x_values=list(range(args.steps + 1)),
    )  # fmt: skip
    result = {
        "runs": runs, "tasks": args.tasks, "steps": args.steps, "torch_threads": 1, "return": summary,
        "per_task": {k: v.tolist() for k, v in curves.items()}, "plot": str(plot.relative_to(ROOT)),
    }  # fmt: skip
    (RESULTS / "pendulum_varshare_sac.json").write_text(json.dumps(result, indent=2))
    for name, records in summary.items():
        print(name, " ".join(f"{r['mean']:.0f}±{r['ci']:.0f}" for r in records))


if __name__ == "__main__":
    main()
