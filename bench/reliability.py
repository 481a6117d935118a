"""What lit-meta's reliability costs (docs/reliability.md): the NaN guard per training step, and the
atomic, verified checkpoint against Lightning's own write and a plain ``torch.load``.

* NaN guard: real training runs through the CLI (as ``train.py fit``), with the guard's hooks timed
  from inside; the cost is their time per step next to the step's own time (steady state), logging
  steps (every ``log_every_n_steps``, where it also names metrics, gradients and buffers) included, and
  the interval between checks the guard chose (it checks less often than every step only when one
  check would cost more than 1% of a step).
* Checkpoints: ``AtomicCheckpointIO.save_checkpoint`` (temporary file beside the target, fsync, rename,
  directory fsync, finite-weights check) against Lightning's ``TorchCheckpointIO.save_checkpoint``,
  and ``lit_meta.checkpoints.load_checkpoint`` (archive checksums, finite weights) against
  ``torch.load(weights_only=True)``, on a real sine and Omniglot checkpoint and on synthetic 64 MB and
  256 MB states; medians of interleaved repeats.

    python bench/reliability.py                 # about 4 minutes on 2 cores
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from lit_meta.callbacks import StopOnNonFinite
from lit_meta.checkpoint_io import AtomicCheckpointIO
from lit_meta.checkpoints import load_checkpoint
from lit_meta.cli import LitMetaCLI
from lit_meta.noise import silence_library_noise

ROOT = Path(__file__).resolve().parents[1]
OMNIGLOT = ROOT.parent / "shared" / "data" / "omniglot"
RESULTS = ROOT / "bench" / "results" / "reliability.json"


class TimedStopOnNonFinite(StopOnNonFinite):
    """The guard, with the seconds spent in its hooks after ``warmup`` steps added up."""

    def __init__(self, warmup: int) -> None:
        super().__init__()
        self.warmup, self.guard_seconds, self.start, self.seconds, self.steps = warmup, 0.0, None, None, 0

    def _timed(self, hook, trainer, *args) -> None:
        start = time.perf_counter()
        hook(trainer, *args)
        if trainer.global_step >= self.warmup:
            self.guard_seconds += time.perf_counter() - start

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._timed(super().on_train_batch_start, trainer, pl_module, batch, batch_idx)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._timed(super().on_train_batch_end, trainer, pl_module, outputs, batch, batch_idx)
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        elif trainer.global_step > self.warmup:
            self.steps += 1

    def on_train_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self.start


RUNS = {
    "sine MAML (MLP 40-40, meta-batch 25)": ("sine_maml", 400, []),
    "sine Reptile (MLP 64-64, compiled inner loop)": ("sine_reptile", 400, []),
    "Omniglot MAML 5-way 1-shot (conv4, meta-batch 32)": (
        "omniglot_maml_5w1s",
        25,
        ["--data.init_args.root", str(OMNIGLOT)],
    ),
}


def guard_cost(config: str, steps: int, extra: list[str], run_dir: Path) -> dict:
    warmup = 20 if steps > 100 else 3
    args = [
        "--config", str(ROOT / "configs" / f"{config}.yaml"), "--run_dir", str(run_dir),
        "--trainer.max_steps", str(steps + warmup), "--trainer.val_check_interval", str(10**6),
        "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", *extra,
    ]  # fmt: skip
    if config == "sine_reptile":
        args += ["--model.init_args.lr_scheduler.init_args.total_iters", str(steps + warmup)]
    cli = LitMetaCLI(args=args, run=False)
    guard = TimedStopOnNonFinite(warmup)
    callbacks = cli.trainer.callbacks
    callbacks[:] = [guard if isinstance(c, StopOnNonFinite) else c for c in callbacks]  # in its place
    cli.trainer.fit(cli.model, cli.datamodule)
    step_ms = 1000 * (guard.seconds - guard.guard_seconds) / guard.steps
    guard_ms = 1000 * guard.guard_seconds / guard.steps
    return {
        "steps": guard.steps,
        "step_ms_without_guard": step_ms,
        "guard_ms": guard_ms,
        "overhead_percent": 100 * guard_ms / step_ms,
        "check_interval_steps": guard.interval,
        "checkpoint": str(run_dir / "checkpoints" / "last.ckpt"),
    }


def synthetic_checkpoint(megabytes: int) -> dict:
    """A Lightning-shaped checkpoint whose weights take ``megabytes``."""
    generator = torch.Generator().manual_seed(0)
    chunks = megabytes * 2**20 // 4 // 16
    state = {f"layer{i}.weight": torch.randn(chunks, generator=generator) for i in range(16)}
    return {"state_dict": state, "global_step": 1, "lit_meta": {"module": "FewShotModule", "format": 1}}


def median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def checkpoint_cost(name: str, checkpoint: dict, folder: Path, repeats: int) -> dict:
    target = folder / f"{name}.ckpt"
    lightning, atomic = TorchCheckpointIO(), AtomicCheckpointIO()
    results = {"lightning_save_ms": [], "atomic_save_ms": [], "torch_load_ms": [], "verified_load_ms": []}
    for _ in range(repeats):  # interleaved, so both see the same machine state
        results["lightning_save_ms"].append(
            median_ms(lambda: lightning.save_checkpoint(checkpoint, target), 1)
        )
        results["atomic_save_ms"].append(median_ms(lambda: atomic.save_checkpoint(checkpoint, target), 1))
        results["torch_load_ms"].append(median_ms(lambda: torch.load(target, weights_only=True), 1))
        results["verified_load_ms"].append(median_ms(lambda: load_checkpoint(target), 1))
    summary = {key: statistics.median(values) for key, values in results.items()}
    summary["megabytes"] = target.stat().st_size / 2**20
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    options = parser.parse_args()
    silence_library_noise()
    torch.set_num_threads(1)
    report = {"torch_threads": 1, "guard": {}, "checkpoints": {}}
    with tempfile.TemporaryDirectory(dir=ROOT) as scratch:
        scratch = Path(scratch)
        for title, (config, steps, extra) in RUNS.items():
            if "omniglot" in config and not (OMNIGLOT / "images_background_small1.zip").is_file():
                print(f"skipped {title}: no Omniglot data in {OMNIGLOT}")
                continue
            report["guard"][title] = guard_cost(config, steps, extra, scratch / config)
        states = {
            title.split(" (")[0]: torch.load(result["checkpoint"], weights_only=True)
            for title, result in report["guard"].items()
        }
        states |= {"64 MB synthetic": synthetic_checkpoint(64), "256 MB synthetic": synthetic_checkpoint(256)}
        for name, checkpoint in states.items():
            report["checkpoints"][name] = checkpoint_cost(
                name.replace(" ", "_"), checkpoint, scratch, options.repeats
            )
    for result in report["guard"].values():
        result.pop("checkpoint")
    RESULTS.write_text(json.dumps(report, indent=2))

    print(
        "\n| run | steps timed | step (ms) | NaN guard (ms/step) | overhead | checked every |"
        "\n|---|---|---|---|---|---|"
    )
    for title, r in report["guard"].items():
        print(
            f"| {title} | {r['steps']} | {r['step_ms_without_guard']:.2f} | {r['guard_ms']:.3f} "
            f"| {r['overhead_percent']:.2f}% | {r['check_interval_steps']} steps |"
        )
    print(
        "\n| checkpoint | size (MB) | Lightning save (ms) | lit-meta atomic save (ms) | torch.load (ms) "
        "| lit-meta verified load (ms) |\n|---|---|---|---|---|---|"
    )
    for name, r in report["checkpoints"].items():
        print(
            f"| {name} | {r['megabytes']:.2f} | {r['lightning_save_ms']:.1f} | {r['atomic_save_ms']:.1f} "
            f"| {r['torch_load_ms']:.1f} | {r['verified_load_ms']:.1f} |"
        )
    print(f"\nwritten: {RESULTS}")


if __name__ == "__main__":
    main()
