"""Omniglot benchmarks on the small subset (../shared/data/omniglot): task sampling, meta-training
throughput and peak memory, and accuracy against learn2learn's reference loop at the same budget.

    python bench/omniglot.py sampling                 # tasks/s: lit-meta's sampler vs learn2learn's
    python bench/omniglot.py throughput               # tasks/s and peak memory, MAML/FOMAML/Reptile
    python bench/omniglot.py accuracy --seconds 300   # same-budget accuracy vs learn2learn's loop
    python bench/omniglot.py accuracy --algorithms protonet anil --threads 1   # one core per run
    python bench/omniglot.py reference-throughput --seconds 120   # learn2learn's loop with its PNG data

Results are merged into bench/results/omniglot.json; markdown tables are printed.
"""

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import filelock
import learn2learn as l2l
import torch
import torchvision.transforms as T
from config_runs import merge_record
from measure import peak_rss_mb, peak_saved_tensors_mb
from PIL import Image

from lit_meta.algorithms import build_algorithm
from lit_meta.algorithms.maml import split_head
from lit_meta.algorithms.protonet import class_prototypes, prototype_logits
from lit_meta.checkpoints import load_checkpoint
from lit_meta.datamodules import OmniglotDataModule
from lit_meta.evaluation.adaptation import predict
from lit_meta.evaluation.stats import mean_confidence_interval
from lit_meta.files import atomic_write_text
from lit_meta.nn import Conv4
from lit_meta.noise import silence_library_noise
from lit_meta.registry import rebuild

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("OMNIGLOT_ROOT", ROOT.parent / "shared" / "data" / "omniglot"))
CACHE = ROOT / "data"
RESULTS = ROOT / "bench" / "results" / "omniglot.json"  # bench/results/ is committed
ALGORITHMS = ("maml", "fomaml", "reptile")
ACCURACY_ALGORITHMS = (*ALGORITHMS, "anil", "protonet")
TEST_QUERIES = 15


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


def _learn2learn_png_tasks(folder: Path, per_class: int = 16) -> l2l.data.TaskDataset:
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
        l2l.data.transforms.KShots(meta, per_class),
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
    baseline = peak_rss_mb()

    def step() -> None:  # as training does between logging steps (Reptile skips scoring the queries)
        optimizer.zero_grad()
        module.algorithm.meta_gradient(next(stream), score=False)
        optimizer.step()

    step()  # warm-up
    graph_mb = peak_saved_tensors_mb(lambda: module.algorithm.meta_gradient(next(stream), score=False))
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({
        "algorithm": algorithm, "inner_steps": inner_steps, "tasks_per_second": 32 * iterations / seconds,
        "peak_rss_mb": peak_rss_mb(), "rss_before_training_mb": baseline, "peak_autograd_mb": graph_mb,
    }))  # fmt: skip


# ---------------------------------------------------------------------------------------------- accuracy
CROSS_ENTROPY = torch.nn.functional.cross_entropy


def accuracy(
    algorithm: str,
    seconds: int,
    shots: int,
    test_tasks: int,
    reference: bool = True,
    keep: Path | None = None,
) -> list[dict]:
    """5-way ``shots``-shot meta-training for ``seconds``: lit-meta's CLI run of
    ``configs/omniglot_<algorithm>_5w1s.yaml`` (shots overridden) and, with ``reference``, learn2learn's
    reference loop with the same network, data, split and hyperparameters; both scored on the same
    held-out tasks of the meta-test alphabets (:func:`held_out_tasks`) with the config's test-time
    adaptation. ``keep``: a folder to copy the lit-meta run's last checkpoint into."""
    from lit_meta.cli import LitMetaCLI

    rows = []
    test_set = held_out_tasks(shots, test_tasks)
    with tempfile.TemporaryDirectory() as folder:
        budget = f"00:00:{seconds // 60:02d}:{seconds % 60:02d}"
        sys.argv = sys.argv[:1]  # the CLI reads its arguments from ``args`` only
        cli = LitMetaCLI(
            args=["--config", str(ROOT / "configs" / f"omniglot_{algorithm}_5w1s.yaml"),
                  "--run_dir", f"{folder}/run", "--trainer.limit_val_batches", "0",
                  "--trainer.max_time", budget,
                  "--trainer.enable_progress_bar", "false", "--data.init_args.shots", str(shots),
                  "--data.init_args.root", str(DATA), "--data.init_args.cache_dir", str(CACHE)],
            run=False,
        )  # fmt: skip
        cli.trainer.fit(cli.model, cli.datamodule)
        hparams = cli.model.hparams
        checkpoint = Path(folder) / "run" / "checkpoints" / "last.ckpt"
        trained, _ = rebuild(load_checkpoint(checkpoint), "the lit-meta run")
        mean, ci = final_accuracy(trained.algorithm, test_set, hparams.eval_steps)
        steps = cli.trainer.global_step
        rows.append(_row(algorithm, "lit-meta", shots, seconds, steps, mean, ci, test_tasks))
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(checkpoint, keep / f"omniglot_{algorithm}_5w{shots}s.ckpt")
    if not reference:
        return rows
    torch.manual_seed(0)
    model = Conv4(1, None if algorithm == "protonet" else 5)
    iterations = REFERENCE_LOOPS[algorithm](model, cli.datamodule, shots, seconds)
    adaptation = build_algorithm(
        "maml" if algorithm == "fomaml" else algorithm, model, CROSS_ENTROPY, hparams.inner_lr,
        hparams.inner_steps, inner_batch_size=hparams.inner_batch_size,
        inner_optimizer=hparams.inner_optimizer,
    )  # fmt: skip
    mean, ci = final_accuracy(adaptation, test_set, hparams.eval_steps)
    rows.append(_row(algorithm, "learn2learn reference", shots, seconds, iterations, mean, ci, test_tasks))
    return rows


def held_out_tasks(shots: int, count: int):
    """The same ``count`` 5-way ``shots``-shot tasks of the meta-test alphabets, 15 queries per class,
    for every algorithm (whatever queries its config trains with)."""
    data = datamodule(ways=5, shots=shots, queries=TEST_QUERIES, seed=0)
    data.setup("test")
    return data.eval_tasks("test", count, 25)


def _row(algorithm, loop, shots, seconds, iterations, mean, ci, test_tasks) -> dict:
    return {
        "algorithm": algorithm, "loop": loop, "shots": shots, "seconds": seconds,
        "meta_iterations": iterations, "accuracy": mean, "ci": ci, "test_tasks": test_tasks,
        "threads": torch.get_num_threads(),
    }  # fmt: skip


def final_accuracy(algorithm, test_set, steps: int) -> tuple[float, float]:
    """Query accuracy after ``steps`` adaptation steps on each test task (transductive, as the configs),
    mean and 95% CI: evaluate.py's rule, scored at the last step only (the benches need no curve)."""
    accuracies, device = [], next(algorithm.parameters()).device
    for batch in test_set:
        batch = batch.map(lambda tensor: tensor.to(device))
        for i in range(len(batch)):
            adapted = algorithm.adapt(batch.support_x[i], batch.support_y[i], steps)
            with torch.no_grad():
                output = predict(adapted, batch.support_x[i], batch.query_x[i], transductive=True)
            accuracies.append((output.argmax(-1) == batch.query_y[i]).float().mean())
    return mean_confidence_interval(torch.stack(accuracies))


def _learn2learn_tasks(data: OmniglotDataModule, per_class: int, ways: int = 5) -> l2l.data.TaskDataset:
    """learn2learn's task pipeline over the same meta-training classes (rotations included)."""
    table = data.tasks["train"].images.cpu()
    dataset = torch.utils.data.TensorDataset(
        table.flatten(0, 1).unsqueeze(1).float() / 255, torch.arange(table.shape[0]).repeat_interleave(20)
    )
    meta = l2l.data.MetaDataset(dataset)
    return l2l.data.TaskDataset(meta, [
        l2l.data.transforms.NWays(meta, ways), l2l.data.transforms.KShots(meta, per_class),
        l2l.data.transforms.LoadData(meta), l2l.data.transforms.RemapLabels(meta),
        l2l.data.transforms.ConsecutiveLabels(meta),
    ], num_tasks=-1)  # fmt: skip


def _first_of_each_class(labels: torch.Tensor, count: int) -> torch.Tensor:
    chosen = torch.zeros(len(labels), dtype=torch.bool, device=labels.device)
    for label in labels.unique():
        chosen[(labels == label).nonzero()[:count, 0]] = True
    return chosen


def _maml_reference(first_order: bool):
    def train(
        model: torch.nn.Module, data: OmniglotDataModule, shots: int, seconds: float, tasks=None,
        device: str = "cpu", meta_batch: int = 32,
    ) -> int:  # fmt: skip
        """learn2learn's examples/vision/maml_omniglot.py: clone, adapt, backward per task, mean of grads
        (each task's images moved to ``device`` as the example does)."""
        tasks = tasks or _learn2learn_tasks(data, shots + data.queries)
        maml = l2l.algorithms.MAML(model, lr=0.4, first_order=first_order)
        optimizer = torch.optim.Adam(maml.parameters(), 1e-3)
        iterations, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            optimizer.zero_grad()
            for _ in range(meta_batch):
                x, y = tasks.sample()
                x, y = x.to(device), y.to(device)
                support = _first_of_each_class(y, shots)
                learner = maml.clone()
                learner.adapt(CROSS_ENTROPY(learner(x[support]), y[support]))
                CROSS_ENTROPY(learner(x[~support]), y[~support]).backward()
            for parameter in maml.parameters():
                parameter.grad.mul_(1.0 / meta_batch)
            optimizer.step()
            iterations += 1
        return iterations

    return train


REPTILE_TRAIN_SHOTS = 10


def _reptile_reference(
    model: torch.nn.Module, data: OmniglotDataModule, shots: int, seconds: float, tasks=None,
    device: str = "cpu", meta_batch: int = 5,
) -> int:  # fmt: skip
    """learn2learn's examples/vision/reptile_miniimagenet.py logic with the Reptile paper's Omniglot
    settings: per task a copy adapted by 5 Adam(β1 = 0) steps on minibatches of 10 of its 10 shots per
    class, then θ ← θ + ε·mean(θ̃ − θ) with ε = 1 annealed linearly over 100,000 iterations."""
    tasks = tasks or _learn2learn_tasks(data, REPTILE_TRAIN_SHOTS)
    iterations, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step_size = 1.0 * (1 - iterations / 100_000)
        directions = [torch.zeros_like(p) for p in model.parameters()]
        for _ in range(meta_batch):
            x, y = tasks.sample()
            x, y = x.to(device), y.to(device)
            learner = copy.deepcopy(model)
            optimizer = torch.optim.Adam(learner.parameters(), 0.001, betas=(0.0, 0.999))
            order = torch.randperm(len(y), device=device)
            for step in range(5):
                batch = order[step * 10 : (step + 1) * 10]
                optimizer.zero_grad()
                CROSS_ENTROPY(learner(x[batch]), y[batch]).backward()
                optimizer.step()
            with torch.no_grad():
                for direction, theta, adapted in zip(
                    directions, model.parameters(), learner.parameters(), strict=True
                ):
                    direction.add_(adapted - theta, alpha=1 / meta_batch)
        with torch.no_grad():
            for theta, direction in zip(model.parameters(), directions, strict=True):
                theta.add_(direction, alpha=step_size)
        iterations += 1
    return iterations


def _anil_reference(
    model: torch.nn.Module, data: OmniglotDataModule, shots: int, seconds: int, tasks=None
) -> int:
    """learn2learn's examples/vision/anil_fc100.py logic with the ANIL config's settings: the body's
    features of the whole task in one pass, the head wrapped in ``MAML(lr=0.4)`` and cloned per task,
    one inner step on the support features, one backward per task, gradients averaged over 32 tasks."""
    tasks = tasks or _learn2learn_tasks(data, shots + data.queries)
    body, head = split_head(model)
    head = l2l.algorithms.MAML(head, lr=0.4)
    optimizer = torch.optim.Adam([*body.parameters(), *head.parameters()], 1e-3)
    iterations, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        optimizer.zero_grad()
        for _ in range(32):
            x, y = tasks.sample()
            support = _first_of_each_class(y, shots)
            features = body(x)
            learner = head.clone()
            learner.adapt(CROSS_ENTROPY(learner(features[support]), y[support]))
            CROSS_ENTROPY(learner(features[~support]), y[~support]).backward()
        for parameter in optimizer.param_groups[0]["params"]:
            parameter.grad.mul_(1.0 / 32)
        optimizer.step()
        iterations += 1
    return iterations


PROTONET_TRAIN_WAYS = 60


def _protonet_reference(
    model: torch.nn.Module, data: OmniglotDataModule, shots: int, seconds: int, tasks=None
) -> int:
    """learn2learn's examples/vision/protonet_miniimagenet.py logic with the ProtoNets config's
    settings: one 60-way episode per step, the whole episode embedded in one pass, prototypes the mean
    support embeddings, logits minus squared Euclidean distances, Adam 1e-3 halved every 2000 episodes."""
    tasks = tasks or _learn2learn_tasks(data, shots + data.queries, PROTONET_TRAIN_WAYS)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2000, gamma=0.5)
    iterations, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x, y = tasks.sample()
        support = _first_of_each_class(y, shots)
        embeddings = model(x)
        prototypes = class_prototypes(embeddings[support], y[support], PROTONET_TRAIN_WAYS)
        optimizer.zero_grad()
        CROSS_ENTROPY(prototype_logits(embeddings[~support], prototypes), y[~support]).backward()
        optimizer.step()
        schedule.step()
        iterations += 1
    return iterations


def reference_throughput(seconds: int) -> list[dict]:
    """Meta-training tasks/s of learn2learn's reference loops (5-way 1-shot, the configs' meta-batch)
    fed by learn2learn's TaskDataset over (a) the decoded images in memory, as in the accuracy runs,
    and (b) a dataset that decodes each PNG with PIL, as learn2learn's own Omniglot datasets do."""
    data = datamodule(ways=5, shots=1, queries=15)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(DATA / "images_background_small1.zip") as bundle:
            bundle.extractall(folder)
        for algorithm in ALGORITHMS:
            per_class = REPTILE_TRAIN_SHOTS if algorithm == "reptile" else 1 + data.queries
            meta_batch = 5 if algorithm == "reptile" else 32
            sources = {
                "in-memory images": _learn2learn_tasks(data, per_class),
                "PNG decoded per image (PIL)": _learn2learn_png_tasks(
                    Path(folder) / "images_background_small1", per_class
                ),
            }
            for name, tasks in sources.items():
                torch.manual_seed(0)
                start = time.perf_counter()
                iterations = REFERENCE_LOOPS[algorithm](Conv4(1, 5), data, 1, seconds, tasks)
                rate = meta_batch * iterations / (time.perf_counter() - start)
                rows.append({"algorithm": algorithm, "data": name, "tasks_per_second": rate})
                print(rows[-1], flush=True)
    return rows


REFERENCE_LOOPS = {
    "maml": _maml_reference(False),
    "fomaml": _maml_reference(True),
    "reptile": _reptile_reference,
    "anil": _anil_reference,
    "protonet": _protonet_reference,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "part", choices=["sampling", "throughput", "accuracy", "reference-throughput", "worker"]
    )
    parser.add_argument("args", nargs="*")
    parser.add_argument("--iterations", type=int, default=3, help="throughput: meta-batches of 32 per run")
    parser.add_argument("--seconds", type=int, default=300, help="accuracy: meta-training budget per run")
    parser.add_argument("--shots", type=int, nargs="*", default=[1, 5])
    parser.add_argument("--algorithms", nargs="*", default=list(ALGORITHMS), choices=ACCURACY_ALGORITHMS)
    parser.add_argument("--test-tasks", type=int, default=600)
    parser.add_argument("--no-reference", action="store_true", help="accuracy: lit-meta's runs only")
    parser.add_argument("--keep", type=Path, help="accuracy: a folder to keep lit-meta's checkpoints in")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    silence_library_noise()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.part == "worker":
        worker(args.args[0], int(args.args[1]), int(args.args[2]))
        return
    if args.part == "sampling":
        rates = merge_record(RESULTS, "sampling", sampling())["sampling"]
        print("| sampler | tasks/s (5-way 1-shot, 15 queries, one core) |\n|---|---|")
        for name, rate in rates.items():
            print(f"| {name} | {rate:,.0f} |")
    elif args.part == "reference-throughput":
        rows = merge_record(RESULTS, "reference_throughput", reference_throughput(args.seconds))
        print("| learn2learn loop | fed by | tasks/s |\n|---|---|---|")
        for row in rows["reference_throughput"]:
            print(f"| {row['algorithm']} | {row['data']} | {row['tasks_per_second']:.1f} |")
    elif args.part == "throughput":
        rows = merge_record(RESULTS, "throughput", throughput(args.iterations))
        print("| algorithm | inner steps | tasks/s | autograd peak (MB) | peak RSS (MB) |")
        print("|---|---|---|---|---|")
        for row in rows["throughput"]:
            print(f"| {row['algorithm']} | {row['inner_steps']} | {row['tasks_per_second']:.1f} | "
                  f"{row['peak_autograd_mb']:.1f} | {row['peak_rss_mb']:.0f} |")  # fmt: skip
    else:
        results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"accuracy": []}
        for algorithm in args.algorithms:
            for shots in args.shots:
                rows = accuracy(
                    algorithm, args.seconds, shots, args.test_tasks, not args.no_reference, args.keep
                )
                results = _merge_accuracy(rows)  # each pair as soon as it is done
        print("| algorithm | shots | loop | seconds | meta-iterations | 5-way accuracy (95% CI) |")
        print("|---|---|---|---|---|---|")
        for row in results["accuracy"]:
            print(f"| {row['algorithm']} | {row['shots']} | {row['loop']} | {row['seconds']} | "
                  f"{row['meta_iterations']} | {row['accuracy']:.3f} ± {row['ci']:.3f} |")  # fmt: skip


def _merge_accuracy(rows: list[dict]) -> dict:
    """Replace the rows of the same setting (:func:`_identity`) in the results file, under a lock, so runs
    in parallel processes keep each other's rows."""
    with filelock.FileLock(f"{RESULTS}.lock"):
        results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        keys = {_identity(row) for row in rows}
        kept = [row for row in results.get("accuracy", []) if _identity(row) not in keys]
        results["accuracy"] = kept + rows
        atomic_write_text(RESULTS, json.dumps(results, indent=2))
    return results


def _identity(row: dict) -> tuple:
    """What makes accuracy rows comparable: older rows (300 tasks, torch's threads) keep their place."""
    names = ("algorithm", "shots", "loop", "seconds", "test_tasks", "threads")
    return tuple(row.get(name) for name in names)


if __name__ == "__main__":
    main()
