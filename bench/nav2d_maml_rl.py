"""The MAML paper's 2D-navigation comparison (Finn, Abbeel & Levine 2017, Figure 4): return on held-out
goals before adaptation and after 1..K policy-gradient steps, for MAML, the "pretrained" policy (joint
training on all tasks) and a random initialisation, each adapted with the same steps; mean ± 95% CI.

Both policies are trained exactly as ``python train.py fit --config configs/<name>.yaml`` does (one
intra-op thread: the policies are tiny), then scored as ``python evaluate.py --ckpt ... --tasks N`` does,
on the same held-out goals and episode seeds.

    python bench/nav2d_maml_rl.py                 # both configs, 40 held-out goals, K = 3
    python bench/nav2d_maml_rl.py --tasks 100

Results go to bench/results/nav2d_maml_rl.json and bench/results/nav2d_maml_rl-adaptation.png.
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
from lit_meta.evaluation.stats import mean_confidence_interval, summarise_per_step
from lit_meta.noise import silence_library_noise
from lit_meta.registry import rebuild

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CONFIGS = ("nav2d_maml_rl", "nav2d_pretrained_rl")


def train(name: str, folder: str, max_steps: int | None) -> tuple[Path, dict]:
    sys.argv = sys.argv[:1]  # the CLI reads its arguments from ``args`` only
    args = ["--config", str(ROOT / "configs" / f"{name}.yaml"), "--run_dir", f"{folder}/{name}",
            "--trainer.enable_progress_bar", "false"]  # fmt: skip
    if max_steps is not None:
        args += ["--trainer.max_steps", str(max_steps)]
    cli = LitMetaCLI(args=args, run=False)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    seconds = time.perf_counter() - start
    return Path(folder) / name / "checkpoints" / "last.ckpt", {
        "config": name,
        "meta_iterations": cli.trainer.global_step,
        "training_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max_steps", type=int, default=None, help="override the configs' budget")
    args = parser.parse_args()
    silence_library_noise()
    torch.set_num_threads(1)
    curves, runs = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for name in CONFIGS:
            checkpoint, runs[name] = train(name, folder, args.max_steps)
            module, datamodule = rebuild(load_checkpoint(checkpoint), source=str(checkpoint))
            tasks = datamodule.eval_tasks("test", args.tasks)
            wanted = (module.initialisation_name,) + (("random init",) if name == CONFIGS[0] else ())
            curves.update(module.adaptation_curves(tasks, args.steps, None, "test", wanted, progress=True))
            run = runs[name]
            print(f"{name}: {run['meta_iterations']} meta-iterations, {run['training_seconds']:.0f} s")
    labels = {"meta-learned init": "MAML", "pretrained init": "pretrained", "random init": "random init"}
    summary = {labels[name]: summarise_per_step(values) for name, values in curves.items()}
    final = {}
    for name, values in curves.items():
        mean, half_width = mean_confidence_interval(values[:, 1])
        final[labels[name]] = {"mean": mean, "ci": half_width}
    before, half_width = mean_confidence_interval(curves["meta-learned init"][:, 0])
    plot = plots.plot_adaptation_curves(
        summary, RESULTS / "nav2d_maml_rl-adaptation.png",
        f"2D navigation · {args.tasks} held-out goals", ylabel="return",
        xlabel="policy-gradient adaptation steps", x_values=list(range(args.steps + 1)),
    )  # fmt: skip
    result = {
        "runs": runs,
        "tasks": args.tasks,
        "steps": args.steps,
        "torch_threads": 1,
        "return": summary,
        "after_one_step": final,
        "maml_before_adaptation": {"mean": before, "ci": half_width},
        "per_task": {labels[name]: values.tolist() for name, values in curves.items()},
        "plot": str(plot.relative_to(ROOT)),
    }
    (RESULTS / "nav2d_maml_rl.json").write_text(json.dumps(result, indent=2))
    print("| policy | before adaptation | after 1 step | after K steps |\n|---|---|---|---|")
    for label, records in summary.items():
        cells = [f"{records[i]['mean']:.1f} ± {records[i]['ci']:.1f}" for i in (0, 1, args.steps)]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
