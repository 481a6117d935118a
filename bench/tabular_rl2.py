"""RL² (Duan et al. 2016) on random tabular MDPs against the paper's Table 2 baselines that fit a CPU
(lit_meta/evaluation/mdp_baselines.py: random, PSRL, optimistic PSRL, greedy, ε-greedy): the return of
a trial of n episodes, mean ± 95% CI over held-out MDPs, next to the paper's numbers.

Each setting trains ``configs/tabular<n>_rl2.yaml`` exactly as ``python train.py fit --config ...`` does
(torch on one thread, wall clock capped by ``--minutes``), then its last checkpoint plays one trial on each
of ``--tasks`` held-out test MDPs; the baselines play the same MDPs.

    OMP_NUM_THREADS=1 .venv/bin/python bench/tabular_rl2.py --settings 10 --minutes 20
    OMP_NUM_THREADS=1 .venv/bin/python bench/tabular_rl2.py --settings 10 25 --minutes 60 --tasks 1000

    OMP_NUM_THREADS=1 .venv/bin/python bench/tabular_rl2.py --settings 10 --tag=-progress \
        --model.init_args.trial_progress true                                           # a variant

Results are merged into bench/results/tabular_rl2<tag>.json, per-episode curves plotted to
bench/results/tabular_rl2<tag>-<n>.png, and a markdown table printed.
"""

import argparse
import json
import tempfile
from pathlib import Path

import torch
from config_runs import add_tag_argument, config_cli, fit_and_reload, merge_record

from lit_meta.evaluation import plots
from lit_meta.evaluation.mdp_baselines import MDP_BASELINES
from lit_meta.evaluation.stats import mean_confidence_interval, summarise_per_step
from lit_meta.noise import silence_library_noise

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
METHODS = ("RL²", *MDP_BASELINES)
PAPER_TABLE_2 = {
    # Duan et al. 2016, Table 2, transcribed from the paper in this session without a second source to
    # check it against (its other columns, UCRL2 and BEB, are not played here)
    "10": {"random": 100.1, "PSRL": 138.1, "optimistic PSRL": 144.1, "ε-greedy": 132.8, "greedy": 134.8,
           "UCRL2": 146.6, "BEB": 150.2, "RL²": 156.2},
    "25": {"random": 250.2, "PSRL": 408.8, "optimistic PSRL": 425.2, "ε-greedy": 377.3, "greedy": 368.8,
           "UCRL2": 424.1, "BEB": 427.8, "RL²": 445.7},
}  # fmt: skip


def run(episodes: str, tasks: int, minutes: float, overrides: list[str], tag: str = "") -> dict:
    config = f"tabular{episodes}_rl2"
    with tempfile.TemporaryDirectory() as folder:
        cli = config_cli(config, f"{folder}/run", minutes, overrides)
        module, datamodule, seconds, iterations = fit_and_reload(cli, f"{folder}/run")
    task_list = datamodule.eval_tasks("test", tasks)
    curves = module.adaptation_curves(task_list, module.hparams.eval_steps, 1, "test", METHODS, progress=True)
    totals = {name: dict(zip(("mean", "ci"), mean_confidence_interval(curves[name].sum(1)), strict=True))
              for name in METHODS}  # fmt: skip
    per_episode = {name: summarise_per_step(curves[name]) for name in METHODS}
    plot = plots.plot_adaptation_curves(
        per_episode, RESULTS / f"tabular_rl2{tag}-{episodes}.png",
        f"RL² on random tabular MDPs, n = {episodes} · {tasks} held-out MDPs", ylabel="return per episode",
        xlabel="episode of the trial", x_values=list(range(1, module.hparams.eval_steps + 1)),
    )  # fmt: skip
    return {
        "config": f"configs/{config}.yaml", "overrides": overrides, "episodes": episodes,
        "meta_iterations": iterations, "meta_training_seconds": seconds,
        "environment_steps": module.environment_steps, "tasks": tasks, "trial_return": totals,
        "return_per_episode": per_episode, "paper": PAPER_TABLE_2.get(episodes),
        "plot": str(plot.relative_to(ROOT)),
    }  # fmt: skip


def table(results: dict) -> str:
    header = " | ".join(METHODS)
    lines = [f"| n | {header} | paper: RL² | paper: best baseline | meta-iterations (time) |",
             "|---" * (len(METHODS) + 4) + "|"]  # fmt: skip
    for n, row in results.items():
        paper = row["paper"] or {}
        best = max((m for m in paper if m not in ("RL²", "random")), key=paper.get, default="-")
        cells = [
            f"{row['trial_return'][m]['mean']:.1f} ± {row['trial_return'][m]['ci']:.1f}" for m in METHODS
        ]
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {paper.get('RL²', '-')} | "
                     f"{best} {paper.get(best, '')} | {row['meta_iterations']} "
                     f"({row['meta_training_seconds'] / 60:.0f} min) |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settings", nargs="*", default=["10"], choices=sorted(PAPER_TABLE_2))
    parser.add_argument("--tasks", type=int, default=1000, help="held-out MDPs scored")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock cap of each training")
    add_tag_argument(parser, "tabular_rl2")
    args, overrides = parser.parse_known_args()
    torch.set_num_threads(1)
    silence_library_noise()
    path = RESULTS / f"tabular_rl2{args.tag}.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for episodes in args.settings:
        results = merge_record(path, episodes, run(episodes, args.tasks, args.minutes, overrides, args.tag))
    print("\nreturn of a trial, mean ± 95% CI over held-out MDPs\n")
    print(table(results))


if __name__ == "__main__":
    main()
