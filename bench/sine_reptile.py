"""lit-meta's sine Reptile against bench/reference_reptile_sine.py, a plain loop from the Reptile spec.

Both run the Reptile paper's sine setting (configs/sine_reptile.yaml) on the same task stream, one torch
thread each, and are scored on the same 1,000 held-out tasks after 32 SGD steps on 10 support points.

* throughput: steady-state meta-iterations per second (after a warm-up, so compilation is excluded),
  runs interleaved and repeated, medians reported; lit-meta runs through the training CLI exactly as
  ``train.py fit`` does (progress bar, TensorBoard and CSV loggers, checkpoints), validation off;
* time to quality: whole runs of each budget, wall time of training (compilation included) and the
  post-adaptation MSE with its 95% CI.

    python bench/sine_reptile.py                      # both parts, about 10 minutes on 2 cores
    python bench/sine_reptile.py --budgets            # throughput only
    python bench/sine_reptile.py --repeats 0          # time to quality only
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from reference_reptile_sine import make_model, post_adaptation_mse, reptile_train, sine_datamodule

from lit_meta.cli import LitMetaCLI
from lit_meta.evaluate import evaluate
from lit_meta.noise import silence_library_noise

ROOT = Path(__file__).resolve().parents[1]
EVAL_TASKS = 1000


class SteadyStateTimer(pl.Callback):
    """Seconds from the end of meta-iteration ``warmup`` to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.seconds = warmup, None, None

    def on_train_start(self, trainer, *args) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, *args) -> None:
        self.seconds = time.perf_counter() - self.start


def lit_meta_run(run_dir: Path, iterations: int, compile_inner_loop: bool, validate: bool, warmup: int = 0):
    """Train through the CLI as ``train.py fit --config configs/sine_reptile.yaml`` would."""
    timer = SteadyStateTimer(warmup)
    args = [
        "--config", str(ROOT / "configs/sine_reptile.yaml"), "--run_dir", str(run_dir),
        "--trainer.max_steps", str(iterations),
        "--model.init_args.lr_scheduler.init_args.total_iters", str(iterations),
        "--model.init_args.compile_inner_loop", str(compile_inner_loop).lower(),
        "--trainer.enable_model_summary", "false",
    ]  # fmt: skip
    if not validate:
        args += ["--trainer.limit_val_batches", "0"]
    start = time.perf_counter()
    cli = LitMetaCLI(args=args, run=False)
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, cli.datamodule)
    return time.perf_counter() - start, timer.seconds


def reference_run(iterations: int, warmup: int = 0):
    torch.manual_seed(0)
    datamodule = sine_datamodule(0)
    model = make_model()
    stream = iter(datamodule.train_dataloader())
    start = time.perf_counter()
    reptile_train(model, stream, warmup or iterations)
    steady = time.perf_counter()
    if not warmup:
        return steady - start, model, datamodule
    reptile_train(model, stream, iterations - warmup)
    end = time.perf_counter()
    return end - start, end - steady


def throughput(iterations: int, warmup: int, repeats: int) -> dict:
    rates = {"reference": [], "lit-meta (eager)": [], "lit-meta (compiled)": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            _, seconds = reference_run(iterations, warmup)
            rates["reference"].append((iterations - warmup) / seconds)
            for compiled in (False, True):
                run_dir = Path(tmp) / f"{repeat}-{compiled}"
                _, seconds = lit_meta_run(run_dir, iterations, compiled, validate=False, warmup=warmup)
                rates[f"lit-meta ({'compiled' if compiled else 'eager'})"].append(
                    (iterations - warmup) / seconds
                )
    return {name: {"median": statistics.median(r), "runs": r} for name, r in rates.items()}


def time_to_quality(budgets: list[int]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for iterations in budgets:
            seconds, model, datamodule = reference_run(iterations)
            losses = post_adaptation_mse(model, datamodule, tasks=EVAL_TASKS, steps=32, per_task=True)
            mean = losses.mean().item()
            rows.append({"loop": "reference", "iterations": iterations, "train_seconds": seconds,
                         "mse": mean, "ci": _ci(losses)})  # fmt: skip
            run_dir = Path(tmp) / f"lit-{iterations}"
            seconds, _ = lit_meta_run(run_dir, iterations, compile_inner_loop=True, validate=True)
            report = evaluate(str(run_dir / "checkpoints" / "last.ckpt"), tasks=EVAL_TASKS, steps=32)
            final = report["final"]["query_loss"]
            rows.append({"loop": "lit-meta (compiled, with validation)", "iterations": iterations,
                         "train_seconds": seconds, "mse": final["mean"], "ci": final["ci"]})  # fmt: skip
    return rows


def _ci(values: torch.Tensor) -> float:
    from lit_meta.evaluation import mean_confidence_interval

    return mean_confidence_interval(values)[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=4000, help="meta-iterations per throughput run")
    parser.add_argument("--warmup", type=int, default=500, help="meta-iterations excluded from throughput")
    parser.add_argument("--repeats", type=int, default=3, help="throughput repeats; 0 skips that part")
    parser.add_argument("--budgets", type=int, nargs="*", default=[30000, 60000], help="time-to-quality runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "sine_reptile.json"))
    args = parser.parse_args()
    silence_library_noise()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}  # a part not run keeps its results
    results["threads"] = args.threads
    if args.repeats:
        results["throughput"] = throughput(args.iterations, args.warmup, args.repeats)
        base = results["throughput"]["reference"]["median"]
        print("\n| loop | meta-iterations/s (median) | vs reference |\n|---|---|---|")
        for name, rate in results["throughput"].items():
            print(f"| {name} | {rate['median']:.0f} | {rate['median'] / base:.2f}x |")
    if args.budgets:
        results["time_to_quality"] = time_to_quality(args.budgets)
        print("\n| loop | meta-iterations | training wall time (s) | MSE after 32 steps (1,000 tasks) |")
        print("|---|---|---|---|")
        for row in results["time_to_quality"]:
            mse = f"{row['mse']:.3f} ± {row['ci']:.3f}"
            print(f"| {row['loop']} | {row['iterations']} | {row['train_seconds']:.0f} | {mse} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
