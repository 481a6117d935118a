"""Omniglot meta-training speed on a GPU (or any device): learn2learn's loop, lit-meta's loop and lit-meta's
vectorised meta-batch (± torch.compile, ± bf16 autocast), and a short MAML training run scored on the
600 held-out tasks of the CPU benchmarks. Sized to fit one 10-minute call on the lent GPU machine:

    source .gpu/setup.sh && python3 bench/gpu.py throughput --out $OUT     # one call, about 5 minutes
    source .gpu/setup.sh && python3 bench/gpu.py train --out $OUT          # another, about 6 minutes
    python bench/gpu.py all --device cpu --tiny --out /tmp/gpu-check        # rehearsal on the CPU
    python bench/gpu.py bf16 --steps 1000 --out $OUT    # fp32 vs bf16 accuracy at equal steps

``throughput``: for MAML, first-order MAML and Reptile at 5-way and 20-way 1-shot (15 queries; Reptile: 10
training shots and 10 queries), meta-batch 32, conv4-64 on 28×28, meta-iterations for ``--seconds`` each
after a warm-up; tasks/s and peak device memory. ``train``: ``configs/omniglot_maml_5w1s.yaml`` through
the training CLI, vectorised, for ``--train-seconds``, then the same held-out tasks as ``bench/omniglot.py
accuracy``. ``bf16``: the same config for ``--steps`` meta-iterations in fp32 and in bf16-mixed
precision, both scored. Results go to ``<out>/gpu.json`` and a markdown table to ``<out>/gpu.md``.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from omniglot import (
    CACHE,
    DATA,
    REFERENCE_LOOPS,
    _learn2learn_tasks,
    datamodule,
    final_accuracy,
    held_out_tasks,
)

from lit_meta.checkpoints import load_checkpoint
from lit_meta.modules import FewShotModule
from lit_meta.nn import Conv4
from lit_meta.noise import silence_library_noise
from lit_meta.registry import rebuild

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = {  # the Omniglot configs' inner loops, meta-batch 32 for all
    "maml": {"inner_lr": 0.4, "inner_steps": 1},
    "fomaml": {"inner_lr": 0.4, "inner_steps": 1},
    "reptile": {"inner_lr": 0.001, "inner_steps": 5, "inner_optimizer": "adam", "inner_batch_size": 10},
}
VARIANTS = {  # name: (vectorize_tasks, compile_inner_loop, bf16 autocast)
    "lit-meta loop": (False, False, False),
    "lit-meta vectorised": (True, False, False),
    "lit-meta vectorised + bf16": (True, False, True),
    "lit-meta vectorised + compile": (True, True, False),
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def lit_meta_rate(
    algorithm: str, ways: int, variant: str, device, seconds: float, meta_batch: int, task_threads: int = 1
) -> dict:
    """Tasks/s of lit-meta's meta-gradient and outer step on tasks sampled on ``device``."""
    vectorize, compile_, bf16 = VARIANTS[variant]
    torch.manual_seed(0)
    shots, queries = (10, 10) if algorithm == "reptile" else (1, 15)  # the Reptile config's 10 + 10
    data = datamodule(ways=ways, shots=1, train_shots=shots, queries=queries, meta_batch_size=meta_batch)
    data.setup("fit")
    for tasks in data.tasks.values():
        tasks.to(device)
    module = FewShotModule(
        algorithm=algorithm, network="conv4", in_features=1, out_features=ways, hidden_sizes=[64] * 4,
        loss="cross_entropy", vectorize_tasks=vectorize, compile_inner_loop=compile_,
        task_threads=task_threads, **ALGORITHMS[algorithm],
    ).to(device)  # fmt: skip
    optimizer = torch.optim.Adam(module.parameters(), 1e-3)
    stream = iter(data.train_stream)

    def step() -> None:
        optimizer.zero_grad()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            module.algorithm.meta_gradient(next(stream), score=False)
        optimizer.step()

    started = time.perf_counter()
    step()  # warm-up (and compilation)
    synchronize(device)
    warm_up = time.perf_counter() - started
    reset_peak(device)
    iterations, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        iterations += 1
    synchronize(device)
    elapsed = time.perf_counter() - start
    return {"tasks_per_second": meta_batch * iterations / elapsed, "warm_up_seconds": warm_up}


def learn2learn_rate(algorithm: str, ways: int, device, seconds: float, meta_batch: int) -> dict:
    """Tasks/s of learn2learn's example loop (bench/omniglot.py), each task moved to ``device``."""
    torch.manual_seed(0)
    data = datamodule(ways=ways, shots=1, queries=15)
    data.setup("fit")
    per_class = 10 if algorithm == "reptile" else 16
    tasks = _learn2learn_tasks(data, per_class, ways)
    loop = REFERENCE_LOOPS[algorithm]
    loop(Conv4(1, ways).to(device), data, 1, 0.0, tasks, device=device, meta_batch=meta_batch)  # warm-up
    synchronize(device)
    reset_peak(device)
    start = time.perf_counter()
    iterations = loop(
        Conv4(1, ways).to(device), data, 1, seconds, tasks, device=device, meta_batch=meta_batch
    )
    synchronize(device)
    return {"tasks_per_second": meta_batch * iterations / (time.perf_counter() - start)}


def throughput(args, device: torch.device) -> list[dict]:
    rows = []
    for algorithm in args.algorithms:
        for ways in args.ways:
            variants = ["learn2learn loop", *VARIANTS]
            if algorithm != "maml" or ways != 5:
                variants.remove("lit-meta vectorised + compile")  # compiling costs a minute per shape
            for variant in variants:
                row = {
                    "algorithm": algorithm,
                    "ways": ways,
                    "variant": variant,
                    "meta_batch": args.meta_batch,
                }
                try:
                    if variant == "learn2learn loop":
                        row |= learn2learn_rate(algorithm, ways, device, args.seconds, args.meta_batch)
                    else:
                        row |= lit_meta_rate(algorithm, ways, variant, device, args.seconds, args.meta_batch)
                    row["peak_memory_mb"] = peak_mb(device)
                except Exception as error:  # a variant that does not run on this device is a result too
                    row["error"] = f"{type(error).__name__}: {error}"[:300]
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def train_and_score(
    device: torch.device, seconds: int | None, steps: int | None, precision: str, test_tasks: int
):
    """``configs/omniglot_maml_5w1s.yaml`` (vectorised) through the CLI for a time or step budget on
    ``device``, scored on the held-out tasks of bench/omniglot.py."""
    from lit_meta.cli import LitMetaCLI

    accelerator = "gpu" if device.type == "cuda" else "cpu"
    budget = ["--trainer.max_time", f"00:00:{seconds // 60:02d}:{seconds % 60:02d}"] if seconds else []
    budget += ["--trainer.max_steps", str(steps)] if steps else []
    with tempfile.TemporaryDirectory() as folder:
        sys.argv = sys.argv[:1]
        cli = LitMetaCLI(
            args=["--config", str(ROOT / "configs" / "omniglot_maml_5w1s.yaml"), "--run_dir", f"{folder}/run",
                  "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
                  "--trainer.accelerator", accelerator, "--trainer.devices", "1",
                  "--trainer.precision", precision,
                  "--model.init_args.vectorize_tasks", "true", *budget,
                  "--data.init_args.root", str(DATA), "--data.init_args.cache_dir", str(CACHE)],
            run=False,
        )  # fmt: skip
        start = time.perf_counter()
        cli.trainer.fit(cli.model, cli.datamodule)
        elapsed = time.perf_counter() - start
        trained, _ = rebuild(load_checkpoint(f"{folder}/run/checkpoints/last.ckpt"), "the GPU run")
        mean, ci = final_accuracy(trained.algorithm.to(device), held_out_tasks(1, test_tasks), 3)
    iterations = cli.trainer.global_step
    return {
        "precision": precision, "meta_iterations": iterations, "seconds": elapsed, "accuracy": mean, "ci": ci,
        "test_tasks": test_tasks, "projected_60000_minutes": 60_000 * elapsed / iterations / 60,
    }  # fmt: skip


def markdown(results: dict) -> str:
    lines = [f"Device: {results['device']}", ""]
    if results.get("throughput"):
        lines += [
            "| algorithm | ways | variant | tasks/s | peak memory (MB) | warm-up (s) |",
            "|---|---|---|---|---|---|",
        ]
        for r in results["throughput"]:
            rate = f"{r['tasks_per_second']:.1f}" if "tasks_per_second" in r else r.get("error", "")
            memory = f"{r['peak_memory_mb']:.0f}" if r.get("peak_memory_mb") is not None else "-"
            warm = f"{r['warm_up_seconds']:.1f}" if "warm_up_seconds" in r else "-"
            lines.append(f"| {r['algorithm']} | {r['ways']} | {r['variant']} | {rate} | {memory} | {warm} |")
    for run in results.get("training", []):
        lines += ["", f"MAML 5-way 1-shot, {run['precision']}: {run['meta_iterations']} meta-iterations in "
                  f"{run['seconds']:.0f} s, {100 * run['accuracy']:.1f}% ± {100 * run['ci']:.1f} on "
                  f"{run['test_tasks']} held-out tasks; 60,000 iterations ≈ "
                  f"{run['projected_60000_minutes']:.0f} min"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["all", "throughput", "train", "bf16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--seconds", type=float, default=4.0, help="throughput: timed seconds per row")
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--ways", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=list(ALGORITHMS))
    parser.add_argument("--train-seconds", type=int, default=300)
    parser.add_argument("--steps", type=int, default=1000, help="bf16: meta-iterations per precision")
    parser.add_argument("--test-tasks", type=int, default=600)
    parser.add_argument("--tiny", action="store_true", help="a rehearsal: 1 s rows, 2 tasks, short runs")
    args = parser.parse_args()
    if args.tiny:
        args.seconds, args.meta_batch, args.train_seconds, args.steps, args.test_tasks = 1.0, 2, 20, 3, 25
    silence_library_noise()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    arguments = {key: str(value) for key, value in vars(args).items()}
    results = {"device": name, "torch": torch.__version__, "arguments": arguments}
    args.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every part, so a call cut short keeps what it measured
        (args.out / "gpu.json").write_text(json.dumps(results, indent=2))
        (args.out / "gpu.md").write_text(markdown(results))

    if args.part in ("all", "throughput"):
        results["throughput"] = throughput(args, device)
        save()
    if args.part in ("all", "train"):
        results["training"] = [train_and_score(device, args.train_seconds, None, "32-true", args.test_tasks)]
        save()
    if args.part == "bf16":
        results["training"] = []
        for precision in ("32-true", "bf16-mixed"):
            results["training"].append(train_and_score(device, None, args.steps, precision, args.test_tasks))
            save()
    print(markdown(results))


if __name__ == "__main__":
    main()
