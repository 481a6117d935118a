"""lit-meta's loop with ``task_threads`` (whole tasks on each core, torch's intra-op threads at one)
against learn2learn's loop and lit-meta's one-thread loop, both with torch's intra-op threads on every
core: the same machine, side by side in one process, repeats interleaved.

    .venv/bin/python bench/task_threads.py --seconds 20 --repeats 3

Tasks as in bench/gpu.py (Omniglot 5-way 1-shot, 15 queries, conv4-64, meta-batch 32). Results go to
bench/results/task_threads.json and a markdown table to stdout.
"""

import argparse
import json
import os
import statistics
from pathlib import Path

import torch
from gpu import learn2learn_rate, lit_meta_rate

from lit_meta.noise import silence_library_noise

RESULTS = Path(__file__).resolve().parent / "results" / "task_threads.json"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per rate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--algorithms", nargs="+", default=["maml", "fomaml"])
    args = parser.parse_args()
    silence_library_noise()
    cores, cpu = os.cpu_count(), torch.device("cpu")
    loops = {
        "learn2learn loop": lambda a: learn2learn_rate(a, 5, cpu, args.seconds, 32),
        "lit-meta loop": lambda a: lit_meta_rate(a, 5, "lit-meta loop", cpu, args.seconds, 32),
        f"lit-meta, task_threads {cores}": lambda a: lit_meta_rate(
            a, 5, "lit-meta loop", cpu, args.seconds, 32, task_threads=cores
        ),
    }
    rows = []
    for algorithm in args.algorithms:
        rates = {loop: [] for loop in loops}
        for _ in range(args.repeats):
            for loop, rate in loops.items():
                torch.set_num_threads(1 if "task_threads" in loop else cores)
                rates[loop].append(rate(algorithm)["tasks_per_second"])
                print(algorithm, loop, f"{rates[loop][-1]:.2f} tasks/s", flush=True)
        reference = statistics.median(rates["learn2learn loop"])
        for loop, values in rates.items():
            median = statistics.median(values)
            rows.append({"algorithm": algorithm, "loop": loop, "tasks_per_second": values,
                         "median": median, "vs_learn2learn": median / reference})  # fmt: skip
    RESULTS.write_text(json.dumps({"cores": cores, "seconds": args.seconds, "rows": rows}, indent=2))
    print(f"\n{cores} cores, median of {args.repeats} interleaved {args.seconds:.0f}-s runs\n")
    print("| algorithm | loop | tasks/s (runs) | median | vs learn2learn's loop |\n|---|---|---|---|---|")
    for row in rows:
        runs = ", ".join(f"{value:.1f}" for value in row["tasks_per_second"])
        print(f"| {row['algorithm']} | {row['loop']} | {runs} | {row['median']:.1f} | "
              f"{row['vs_learn2learn']:.2f}× |")  # fmt: skip


if __name__ == "__main__":
    main()
