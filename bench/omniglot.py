"""Omniglot benchmarks on the small subset (../shared/data/omniglot): task sampling, meta-training
throughput and peak memory, and accuracy against learn2learn's reference loop at the same budget.

    python bench/omniglot.py sampling                 # tasks/s: lit-meta's sampler vs learn2learn's
    python bench/omniglot.py throughput               # tasks/s and peak memory, MAML/FOMAML/Reptile
    python bench/omniglot.py accuracy --seconds 300   # same-budget accuracy vs learn2learn's loop

Results are merged into bench/results/omniglot.json; markdown tables are printed.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import weakref
import zipfile
from pathlib import Path

import learn2learn as l2l
import torch
import torchvision.transforms as T
from PIL import Image

from lit_meta.algorithms import MAML
from lit_meta.datamodules import OmniglotDataModule
from lit_meta.evaluation.adaptation import adaptation_curve
from lit_meta.evaluation.stats import mean_confidence_interval
from lit_meta.nn import Conv4
from lit_meta.noise import silence_library_noise

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "omniglot"
CACHE = ROOT / "data"
RESULTS = ROOT / "bench" / "results" / "omniglot.json"
ALGORITHMS = ("maml", "fomaml", "reptile")


def datamodule(**settings) -> OmniglotDataModule:
    return OmniglotDataModule(root=str(DATA), cache_dir=str(CACHE), **settings)


# ---------------------------------------------------------------------------------------------- sampling
def sampling(seconds: float = 10.0) -> dict:
    """5-way 1-shot + 15-query tasks per second on one core."""
    torch.set_num_threads(1)
    data = datamodule(ways=5, shots=1, queries=15)
    generator = torch.Generator().manual_seed(0)
    rates = {}
    for batch in (1, 32):
        rates[f"lit-meta, meta-batch {batch}"] = _rate(
            lambda b=batch: data.tasks["train"].sample(b, generator, 1, 15), batch, seconds
        )
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(DATA / "images_background_small1.zip") as bundle:
            bundle.extractall(folder)
        tasks = _learn2learn_png_tasks(Path(folder) / "images_background_small1")
        rates["learn2learn TaskDataset, PNG decoded per task (PIL)"] = _rate(tasks.sample, 1, seconds)
    return rates


def _learn2learn_png_tasks(folder: Path) -> l2l.data.TaskDataset:
    """learn2learn's Omniglot pipeline: a dataset that opens and transforms a PNG per image, then
    NWays, KShots, LoadData, RemapLabels, ConsecutiveLabels and a random rotation per class."""
    files = sorted(folder.glob("*/*/*.png"))
    characters = {folder: index for index, folder in enumerate(sorted({f.parent for f in files}))}
    labels = [characters[f.parent] for f in files]
    resize = T.Resize(28, interpolation=T.InterpolationMode.LANCZOS)
    transform = T.Compose([resize, T.ToTensor(), lambda x: 1 - x])

    class PNGs(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, index: int):
            return transform(Image.open(files[index]).convert("L")), labels[index]

    by_label = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    meta = l2l.data.MetaDataset(PNGs(), labels_to_indices=by_label)
    transforms = [
        l2l.data.transforms.NWays(meta, 5),
        l2l.data.transforms.KShots(meta, 16),
        l2l.data.transforms.LoadData(meta),
        l2l.data.transforms.RemapLabels(meta),
        l2l.data.transforms.ConsecutiveLabels(meta),
        l2l.vision.transforms.RandomClassRotation(meta, [0.0, 90.0, 180.0, 270.0]),
    ]
    return l2l.data.TaskDataset(meta, transforms, num_tasks=-1)


def _rate(draw, tasks_per_call: int, seconds: float) -> float:
    draw()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        draw()
        calls += 1
    return calls * tasks_per_call / (time.perf_counter() - start)


# -------------------------------------------------------------------------------------------- throughput
def throughput(iterations: int) -> list[dict]:
    """Each (algorithm, inner steps) in a fresh process, so peak memory is its own."""
    rows = []
    for algorithm in ALGORITHMS:
        for steps in (1, 5, 10):
            command = [sys.executable, __file__, "worker", algorithm, str(steps), str(iterations)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    return rows


def worker(algorithm: str, inner_steps: int, iterations: int) -> None:
    """Meta-train ``iterations`` meta-batches of 32 5-way 1-shot tasks; print tasks/s and peak memory."""
    torch.manual_seed(0)
    data = datamodule(ways=5, shots=1, queries=15, train_shots=1, meta_batch_size=32)
    from lit_meta.modules import FewShotModule

    options = {"inner_optimizer": "adam", "inner_batch_size": 10} if algorithm == "reptile" else {}
    module = FewShotModule(
        algorithm=algorithm, network="conv4", in_features=1, out_features=5, hidden_sizes=[64] * 4,
        loss="cross_entropy", inner_lr=0.4 if algorithm != "reptile" else 0.001, inner_steps=inner_steps,
        **options,
    )  # fmt: skip
    optimizer = torch.optim.Adam(module.parameters(), 1e-3)
    stream = iter(data.train_stream)
    baseline = _peak_rss_mb()

    def step() -> None:
        optimizer.zero_grad()
        module.algorithm.meta_gradient(next(stream))
        optimizer.step()

    step()  # warm-up
    graph_mb = _peak_saved_tensors_mb(lambda: module.algorithm.meta_gradient(next(stream)))
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({
        "algorithm": algorithm, "inner_steps": inner_steps, "tasks_per_second": 32 * iterations / seconds,
        "peak_rss_mb": _peak_rss_mb(), "rss_before_training_mb": baseline, "peak_autograd_mb": graph_mb,
    }))  # fmt: skip


def _peak_saved_tensors_mb(run) -> float:
    """Peak size of the tensors autograd keeps alive for backward while ``run`` executes: the memory a
    meta-gradient needs beyond the model itself, independent of the allocator and the device."""
    live = {"now": 0, "peak": 0}

    class Saved:
        def __init__(self, tensor: torch.Tensor) -> None:
            self.tensor = tensor

    def release(size: int) -> None:
        live["now"] -= size

    def pack(tensor: torch.Tensor) -> Saved:
        size = tensor.numel() * tensor.element_size()
        live["now"] += size
        live["peak"] = max(live["peak"], live["now"])
        box = Saved(tensor)
        weakref.finalize(box, release, size)
        return box

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda box: box.tensor):
        run()
    return live["peak"] / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- accuracy
def accuracy(seconds: int, shots: int, test_tasks: int) -> list[dict]:
    """MAML 5-way ``shots``-shot for ``seconds`` of meta-training: lit-meta's CLI run and learn2learn's
    reference loop (examples/vision/maml_omniglot.py: clone, adapt, backward per task), same network,
    data, split and settings; both scored on the same held-out tasks of the meta-test alphabets."""
    from lit_meta.cli import LitMetaCLI
    from lit_meta.evaluate import evaluate

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        config = ROOT / "configs" / f"omniglot_maml_5w{shots}s.yaml"
        cli = LitMetaCLI(
            args=["--config", str(config), "--run_dir", f"{folder}/run", "--trainer.limit_val_batches", "0",
                  "--trainer.max_time", f"00:00:00:{seconds}", "--trainer.enable_progress_bar", "false",
                  "--data.init_args.root", str(DATA), "--data.init_args.cache_dir", str(CACHE)],
            run=False,
        )  # fmt: skip
        cli.trainer.fit(cli.model, cli.datamodule)
        report = evaluate(f"{folder}/run/checkpoints/last.ckpt", tasks=test_tasks)
        final = report["final"]["query_accuracy"]
        rows.append({"loop": "lit-meta", "shots": shots, "meta_iterations": cli.trainer.global_step,
                     "accuracy": final["mean"], "ci": final["ci"]})  # fmt: skip
    model, iterations = _learn2learn_reference(seconds, shots)
    data = datamodule(ways=5, shots=shots, queries=15)
    tasks = data.eval_tasks("test", test_tasks, 25)
    curve = adaptation_curve(MAML(model, torch.nn.functional.cross_entropy, 0.4, 1), tasks, steps=3)
    mean, ci = mean_confidence_interval(curve.final_accuracy)
    rows.append({"loop": "learn2learn reference", "shots": shots, "meta_iterations": iterations,
                 "accuracy": mean, "ci": ci})  # fmt: skip
    return rows


def _learn2learn_reference(seconds: int, shots: int) -> tuple[torch.nn.Module, int]:
    torch.manual_seed(0)
    data = datamodule(ways=5, shots=shots, queries=15)
    table = data.tasks["train"].images  # the same classes (rotations included) as lit-meta trains on
    classes = table.shape[0]
    dataset = torch.utils.data.TensorDataset(
        table.flatten(0, 1).unsqueeze(1).float() / 255, torch.arange(classes).repeat_interleave(20)
    )
    meta = l2l.data.MetaDataset(dataset)
    tasks = l2l.data.TaskDataset(meta, [
        l2l.data.transforms.NWays(meta, 5), l2l.data.transforms.KShots(meta, shots + 15),
        l2l.data.transforms.LoadData(meta), l2l.data.transforms.RemapLabels(meta),
        l2l.data.transforms.ConsecutiveLabels(meta),
    ], num_tasks=-1)  # fmt: skip
    model = Conv4(1, 5)
    maml = l2l.algorithms.MAML(model, lr=0.4, first_order=False)
    optimizer = torch.optim.Adam(maml.parameters(), 1e-3)
    loss = torch.nn.CrossEntropyLoss()
    iterations, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        optimizer.zero_grad()
        for _ in range(32):
            x, y = tasks.sample()
            support = torch.zeros(len(y), dtype=torch.bool)
            for label in range(5):
                support[(y == label).nonzero()[:shots, 0]] = True
            learner = maml.clone()
            learner.adapt(loss(learner(x[support]), y[support]))
            loss(learner(x[~support]), y[~support]).backward()
        for parameter in maml.parameters():
            parameter.grad.mul_(1.0 / 32)
        optimizer.step()
        iterations += 1
    return model, iterations


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["sampling", "throughput", "accuracy", "worker"])
    parser.add_argument("args", nargs="*")
    parser.add_argument("--iterations", type=int, default=3, help="throughput: meta-batches of 32 per run")
    parser.add_argument("--seconds", type=int, default=300, help="accuracy: meta-training budget per run")
    parser.add_argument("--shots", type=int, nargs="*", default=[1, 5])
    parser.add_argument("--test-tasks", type=int, default=600)
    args = parser.parse_args()
    silence_library_noise()
    if args.part == "worker":
        worker(args.args[0], int(args.args[1]), int(args.args[2]))
        return
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if args.part == "sampling":
        results["sampling"] = sampling()
        print("| sampler | tasks/s (5-way 1-shot, 15 queries, one core) |\n|---|---|")
        for name, rate in results["sampling"].items():
            print(f"| {name} | {rate:,.0f} |")
    elif args.part == "throughput":
        results["throughput"] = throughput(args.iterations)
        print("| algorithm | inner steps | tasks/s | autograd peak (MB) | peak RSS (MB) |")
        print("|---|---|---|---|---|")
        for row in results["throughput"]:
            print(f"| {row['algorithm']} | {row['inner_steps']} | {row['tasks_per_second']:.1f} | "
                  f"{row['peak_autograd_mb']:.1f} | {row['peak_rss_mb']:.0f} |")  # fmt: skip
    else:
        rows = [row for shots in args.shots for row in accuracy(args.seconds, shots, args.test_tasks)]
        results["accuracy"] = rows
        results["accuracy_seconds"] = args.seconds
        print("| loop | shots | meta-iterations | 5-way accuracy (95% CI) |\n|---|---|---|---|")
        for row in results["accuracy"]:
            print(f"| {row['loop']} | {row['shots']} | {row['meta_iterations']} | "
                  f"{row['accuracy']:.3f} ± {row['ci']:.3f} |")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
