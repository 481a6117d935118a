"""RL² (Duan et al. 2016) on Bernoulli bandits against the paper's hand-designed baselines (Table 1's
settings): cumulative reward per trial, mean ± 95% CI over held-out bandits, for RL², UCB1, Thompson
sampling and uniformly random play (its expectation), with the best arm's expectation as the ceiling.

Each setting is trained exactly as ``python train.py fit --config configs/<config>.yaml`` does (torch on
one thread, wall clock capped by ``--minutes``), then its last checkpoint plays one trial on each of
``--tasks`` held-out test bandits; the baselines play the same bandits.

    python bench/bandits_rl2.py                                  # 5 arms x 10 pulls, 1000 tasks
    python bench/bandits_rl2.py --settings 5x10 10x100 --tasks 2000
    python bench/bandits_rl2.py --settings 10x100 --model.init_args.hidden_size 128   # CLI overrides

Results are merged into bench/results/bandits_rl2.json, per-pull curves plotted to
bench/results/bandits_rl2-<setting>.png, and a markdown table printed.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lit_meta.checkpoints import load_checkpoint
from lit_meta.cli import LitMetaCLI
from lit_meta.evaluation import plots
from lit_meta.evaluation.stats import mean_confidence_interval, summarise_per_step
from lit_meta.noise import silence_library_noise
from lit_meta.registry import rebuild

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SETTINGS = {"5x10": "bandits_rl2", "10x100": "bandits10x100_rl2"}
"""Arms x pulls per trial -> config."""
METHODS = ("RL²", "UCB1", "Thompson sampling", "random", "best arm")


def run(setting: str, tasks: int, minutes: float, overrides: list[str]) -> dict:
    config = SETTINGS[setting]
    with tempfile.TemporaryDirectory() as folder:
        sys.argv = sys.argv[:1]  # the CLI reads its arguments from ``args`` only
        cli = LitMetaCLI(
            args=["--config", str(ROOT / "configs" / f"{config}.yaml"), "--run_dir", f"{folder}/run",
                  "--trainer.enable_progress_bar", "false",
                  "--trainer.max_time", f"00:00:{int(minutes)}:{int(minutes % 1 * 60):02d}", *overrides],
            run=False,
        )  # fmt: skip
        start = time.perf_counter()
        cli.trainer.fit(cli.model, cli.datamodule)
        seconds = time.perf_counter() - start
        module, datamodule = rebuild(load_checkpoint(f"{folder}/run/checkpoints/last.ckpt"), source="the run")
    pulls = module.hparams.eval_steps
    task_list = datamodule.eval_tasks("test", tasks)
    start = time.perf_counter()
    curves = module.adaptation_curves(task_list, pulls, 1, "test", progress=True)
    evaluation_seconds = time.perf_counter() - start
    means = np.stack([datamodule.make_env(task).unwrapped.arm_means() for task in task_list])
    curves["best arm"] = torch.tensor(means.max(1, keepdims=True).repeat(pulls, 1), dtype=torch.float64)
    totals = {}
    for name in METHODS:
        mean, half_width = mean_confidence_interval(curves[name].sum(1))
        totals[name] = {"mean": mean, "ci": half_width}
    per_pull = {name: summarise_per_step(curves[name]) for name in METHODS}
    plot = plots.plot_adaptation_curves(
        per_pull,
        RESULTS / f"bandits_rl2-{setting}.png",
        f"RL² on {setting} Bernoulli bandits · {tasks} held-out tasks",
        ylabel="reward per pull",
        xlabel="pull (episode of the trial)",
        x_values=list(range(1, pulls + 1)),
    )
    best_baseline = max(totals[name]["mean"] for name in ("UCB1", "Thompson sampling"))
    return {
        "setting": setting,
        "config": f"configs/{config}.yaml",
        "overrides": overrides,
        "arms": datamodule.hparams.env_kwargs["arms"],
        "pulls": pulls,
        "meta_iterations": cli.trainer.global_step,
        "trials_per_iteration": datamodule.hparams.meta_batch_size,
        "meta_training_seconds": seconds,
        "evaluation_seconds": evaluation_seconds,
        "torch_threads": torch.get_num_threads(),
        "model": {k: v for k, v in module.hparams.items() if k != "seed"},
        "tasks": tasks,
        "cumulative_reward": totals,
        "rl2_vs_best_baseline": totals["RL²"]["mean"] / best_baseline - 1,
        "reward_per_pull": per_pull,
        "plot": str(plot.relative_to(ROOT)),
    }


def table(results: dict) -> str:
    lines = [
        "| arms × pulls | " + " | ".join(METHODS) + " | RL² vs best baseline | meta-iterations (time) |",
        "|---" * (len(METHODS) + 3) + "|",
    ]
    for row in results.values():
        cells = [
            f"{row['cumulative_reward'][m]['mean']:.2f} ± {row['cumulative_reward'][m]['ci']:.2f}"
            for m in METHODS
        ]
        lines.append(
            f"| {row['arms']} × {row['pulls']} | " + " | ".join(cells)
            + f" | {row['rl2_vs_best_baseline']:+.1%} | {row['meta_iterations']}"
            f" ({row['meta_training_seconds'] / 60:.0f} min) |"
        )  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settings", nargs="*", default=["5x10"], choices=SETTINGS)
    parser.add_argument("--tasks", type=int, default=1000, help="held-out bandits scored")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock cap of each training")
    args, overrides = parser.parse_known_args()
    torch.set_num_threads(1)
    silence_library_noise()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "bandits_rl2.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for setting in args.settings:
        results[setting] = run(setting, args.tasks, args.minutes, overrides)
        path.write_text(json.dumps(results, indent=2))
    print("\ncumulative reward per trial, mean ± 95% CI over held-out bandits\n")
    print(table({s: results[s] for s in SETTINGS if s in results}))


if __name__ == "__main__":
    main()
