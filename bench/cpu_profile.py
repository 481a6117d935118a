"""Where a CPU's time goes in Omniglot meta-training: FLOPs per task (torch's ``FlopCounterMode``, forward
and backward, second-order terms included), the GFLOP/s lit-meta's loop and learn2learn's loop achieve,
and the peak one core reaches on the same convolutions.

    OMP_NUM_THREADS=1 .venv/bin/python bench/cpu_profile.py --threads 1 --seconds 20

Tasks as in bench/gpu.py (5-way 1-shot, 15 queries; Reptile 10 + 10; conv4-64 on 28×28, meta-batch 32).
The peak is conv4's 64→64 3×3 convolution on 14×14 maps, forward and backward, at a batch of 512 images
(large enough that the kernel, not per-call overhead, sets the rate). Results go to
bench/results/cpu_profile.json and a markdown table to stdout.
"""

import argparse
import json
import time
from pathlib import Path

import torch
from gpu import ALGORITHMS, learn2learn_rate, lit_meta_rate
from omniglot import datamodule
from torch.utils.flop_counter import FlopCounterMode

from lit_meta.modules import FewShotModule
from lit_meta.noise import silence_library_noise

RESULTS = Path(__file__).resolve().parent / "results" / "cpu_profile.json"


def flops_per_task(algorithm: str, meta_batch: int) -> float:
    """FLOPs of one meta-gradient over ``meta_batch`` tasks, divided by the tasks."""
    torch.manual_seed(0)
    shots, queries = (10, 10) if algorithm == "reptile" else (1, 15)
    data = datamodule(ways=5, shots=1, train_shots=shots, queries=queries, meta_batch_size=meta_batch)
    data.setup("fit")
    module = FewShotModule(
        algorithm=algorithm, network="conv4", in_features=1, out_features=5, hidden_sizes=[64] * 4,
        loss="cross_entropy", **ALGORITHMS[algorithm],
    )  # fmt: skip
    with FlopCounterMode(display=False) as counter:
        module.algorithm.meta_gradient(next(iter(data.train_stream)), score=False)
    return counter.get_total_flops() / meta_batch


def convolution_peak(seconds: float) -> float:
    """GFLOP/s of a large 64→64 3×3 convolution's forward and backward passes."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)
    x = torch.randn(512, 64, 14, 14, requires_grad=True)

    def once() -> None:
        conv(x).sum().backward()

    with FlopCounterMode(display=False) as counter:
        once()
    flops, calls, start = counter.get_total_flops(), 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        once()
        calls += 1
    return flops * calls / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per rate")
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    silence_library_noise()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    peak = convolution_peak(args.seconds)
    rows = []
    for algorithm in ALGORITHMS:
        gflop = flops_per_task(algorithm, args.meta_batch) / 1e9
        ours = lit_meta_rate(algorithm, 5, "lit-meta loop", cpu, args.seconds, args.meta_batch)
        theirs = learn2learn_rate(algorithm, 5, cpu, args.seconds, args.meta_batch)
        rows.append({
            "algorithm": algorithm, "gflop_per_task": gflop,
            "lit_meta_tasks_per_second": ours["tasks_per_second"],
            "learn2learn_tasks_per_second": theirs["tasks_per_second"],
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    results = {"threads": torch.get_num_threads(), "convolution_peak_gflops": peak, "rows": rows}
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"Peak of one conv4 convolution, forward + backward: {peak:.1f} GFLOP/s\n")
    print("| algorithm | GFLOP per task | loop | tasks/s | GFLOP/s | share of the peak |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        for loop, key in (
            ("lit-meta", "lit_meta_tasks_per_second"),
            ("learn2learn", "learn2learn_tasks_per_second"),
        ):
            gflop, rate = row["gflop_per_task"], row[key]
            print(f"| {row['algorithm']} | {gflop:.2f} | {loop} | {rate:.1f} | {rate * gflop:.1f} | "
                  f"{100 * rate * gflop / peak:.0f}% |")  # fmt: skip


if __name__ == "__main__":
    main()
