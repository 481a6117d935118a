"""Data-parallel meta-training throughput: meta-training tasks per second with 1 and 2 processes
(Lightning DDP; on the CPU, gloo and one torch thread per process), and the scaling efficiency
(tasks/s with N processes ÷ (N × tasks/s with one)).

Each point runs ``python train.py fit --config configs/<name>.yaml --trainer.devices N --trainer.strategy
ddp`` (validation off) for a short and a long budget and divides the extra tasks by the extra seconds,
so process start-up, data loading and the first iteration cancel out.

    python bench/distributed.py                      # CPU, 1 and 2 processes
    python bench/distributed.py --accelerator gpu --devices 1 2 4 8   # on a multi-GPU machine

Results are merged into bench/results/distributed-<accelerator>.json; a markdown table is printed.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OMNIGLOT = ROOT.parent / "shared" / "data" / "omniglot"
WORKLOADS = {  # config, meta-batch (divisible by every process count), short and long budgets
    "sine MAML": ("sine_maml", 24, 20, 2020, []),
    "sine Reptile": ("sine_reptile", 8, 20, 4020, []),
    "Omniglot MAML 5-way 1-shot": (
        "omniglot_maml_5w1s",
        32,
        3,
        23,
        ["--data.init_args.root", str(OMNIGLOT), "--data.init_args.cache_dir", str(ROOT / "data")],
    ),
    "2D navigation MAML-RL": ("nav2d_maml_rl", 20, 2, 12, []),
}


def seconds_to_train(
    config: str, meta_batch: int, steps: int, devices: int, accelerator: str, extra
) -> float:
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable, str(ROOT / "train.py"), "fit",
            "--config", str(ROOT / "configs" / f"{config}.yaml"), "--run_dir", folder,
            "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "0",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.accelerator", accelerator, "--trainer.devices", str(devices),
            "--data.init_args.meta_batch_size", str(meta_batch), *extra,
        ]  # fmt: skip
        if devices > 1:
            command += ["--trainer.strategy", "ddp"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"{config} with {devices} process(es) failed:\n{result.stderr[-2000:]}")
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    args = parser.parse_args()
    results = {}
    for name in args.workloads:
        config, meta_batch, short, long, extra = WORKLOADS[name]
        results[name] = {"config": config, "meta_batch_size": meta_batch, "steps": [short, long]}
        for devices in args.devices:
            times = [
                seconds_to_train(config, meta_batch, s, devices, args.accelerator, extra)
                for s in (short, long)
            ]
            tasks_per_second = meta_batch * (long - short) / (times[1] - times[0])
            results[name][str(devices)] = {"seconds": times, "tasks_per_second": tasks_per_second}
            print(f"{name}, {devices} process(es): {tasks_per_second:.1f} tasks/s", flush=True)
    print(
        f"\n| workload | meta-batch | {' | '.join(f'{d} proc. tasks/s' for d in args.devices)} | efficiency |"
    )
    print(f"|---|---|{'---|' * len(args.devices)}---|")
    for name, row in results.items():
        rates = [row[str(d)]["tasks_per_second"] for d in args.devices]
        efficiency = ", ".join(
            f"{d}: {rate / (d * rates[0]):.0%}" for d, rate in zip(args.devices[1:], rates[1:], strict=True)
        )
        row["efficiency"] = {str(d): r / (d * rates[0]) for d, r in zip(args.devices, rates, strict=True)}
        print(
            f"| {name} | {row['meta_batch_size']} | {' | '.join(f'{r:.1f}' for r in rates)} | {efficiency} |"
        )
    output = RESULTS / f"distributed-{args.accelerator}.json"  # other workloads' earlier results are kept
    earlier = json.loads(output.read_text())["results"] if output.is_file() else {}
    record = {"devices": args.devices, "cpu_count": os.cpu_count(), "results": {**earlier, **results}}
    output.write_text(json.dumps(record, indent=2))
    print(f"\nresults: {output.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
