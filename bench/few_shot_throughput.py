"""Meta-training throughput and memory of every few-shot algorithm at mini-ImageNet size, on synthetic data.

    python bench/few_shot_throughput.py --iterations 2 [--device cpu] [--networks conv4 resnet12]
    python bench/few_shot_throughput.py --vectorize   # every task of each meta-batch at once

Each row: one meta-batch of 5-way 1-shot tasks with 15 queries per class, 84×84 RGB images drawn at
random (the cost does not depend on the pixels), the learner of the mini-ImageNet configs (conv4 with
32 filters; ResNet-12 64-160-320-640, the embedding of the CIFAR-FS/FC100 configs), a warm-up
meta-iteration then ``--iterations`` timed ones, as training runs them between logging steps, task by
task or, with ``--vectorize``, every task of the meta-batch at once (``vectorize_tasks``). "Autograd
peak" is the most memory autograd holds for backward during one meta-gradient
(:func:`measure.peak_saved_tensors_mb`). Rows are merged into bench/results/few_shot_throughput.json and
printed as a markdown table.
"""

import argparse
import json
import time
from pathlib import Path

import torch
from measure import peak_saved_tensors_mb

from lit_meta.modules import FewShotModule
from lit_meta.tasks import TaskBatch

RESULTS = Path(__file__).resolve().parent / "results" / "few_shot_throughput.json"
WAYS, SHOTS, QUERIES, SIDE = 5, 1, 15, 84
NETWORKS = {"conv4": [32, 32, 32, 32], "resnet12": [64, 160, 320, 640]}
ALGORITHMS = {  # the mini-ImageNet configs' inner loops
    "maml": {"inner_lr": 0.01, "inner_steps": 5},
    "fomaml": {"inner_lr": 0.01, "inner_steps": 5},
    "anil": {"inner_lr": 0.01, "inner_steps": 5},
    "reptile": {"inner_lr": 0.001, "inner_steps": 8, "inner_optimizer": "adam", "inner_batch_size": 10},
    "protonet": {},
}


def synthetic_tasks(count: int, device: torch.device, generator: torch.Generator) -> TaskBatch:
    def part(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.rand(count, WAYS * per_class, 3, SIDE, SIDE, generator=generator)
        y = torch.arange(WAYS).repeat_interleave(per_class).expand(count, -1).clone()
        return x.to(device), y.to(device)

    return TaskBatch(*part(SHOTS), *part(QUERIES))


def measure(
    algorithm: str, network: str, meta_batch: int, iterations: int, device: torch.device, vectorize: bool
) -> dict:
    torch.manual_seed(0)
    headed = {} if algorithm == "protonet" else {"out_features": WAYS}
    module = FewShotModule(
        algorithm=algorithm, network=network, in_features=3, hidden_sizes=NETWORKS[network], image_size=SIDE,
        loss="cross_entropy", vectorize_tasks=vectorize, **headed, **ALGORITHMS[algorithm],
    ).to(device)  # fmt: skip
    optimizer = torch.optim.Adam(module.parameters(), 1e-3)
    generator = torch.Generator().manual_seed(0)
    batches = [synthetic_tasks(meta_batch, device, generator) for _ in range(2)]

    def step(index: int) -> None:
        optimizer.zero_grad()
        module.algorithm.meta_gradient(batches[index % 2], score=False)
        optimizer.step()

    step(0)  # warm-up
    # saved-tensor hooks (how the autograd peak is measured) do not work inside torch.func transforms
    one_gradient = lambda: module.algorithm.meta_gradient(batches[1], score=False)  # noqa: E731
    graph_mb = None if vectorize else peak_saved_tensors_mb(one_gradient)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.synchronize()
    start = time.perf_counter()
    for index in range(iterations):
        step(index)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "algorithm": algorithm, "network": network, "device": device.type, "meta_batch": meta_batch,
        "vectorized": vectorize,
        "tasks_per_second": meta_batch * iterations / seconds, "peak_autograd_mb": graph_mb,
        "threads": torch.get_num_threads(),
        "peak_cuda_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--meta-batch", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=list(ALGORITHMS))
    parser.add_argument("--vectorize", action="store_true", help="every task of the meta-batch at once")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for network in args.networks:
        for algorithm in args.algorithms:
            rows.append(measure(algorithm, network, args.meta_batch, args.iterations, device, args.vectorize))
            print(json.dumps(rows[-1]), flush=True)
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    keys = {_identity(r) for r in rows}
    stored = [r for r in stored if _identity(r) not in keys] + rows
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
    print("| network | algorithm | device | vectorised | tasks/s | autograd peak (MB) | CUDA peak (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        autograd, cuda = (
            f"{r[k]:.0f}" if r[k] is not None else "-" for k in ("peak_autograd_mb", "peak_cuda_mb")
        )
        print(
            f"| {r['network']} | {r['algorithm']} | {r['device']} | {r['vectorized']} | "
            f"{r['tasks_per_second']:.2f} | {autograd} | {cuda} |"
        )


def _identity(row: dict) -> tuple:
    names = ("algorithm", "network", "device", "meta_batch", "vectorized", "threads")
    return tuple(row.get(name) for name in names)


if __name__ == "__main__":
    main()
