"""A plain-PyTorch Reptile loop on sine tasks, written from the Reptile specification's ``reptile_train``.

This is the yardstick for lit-meta's sine Reptile (bench/sine_reptile.py): no Lightning, no
learn2learn, the Reptile specification's structure line by line (save θ, k SGD steps with
``torch.optim.SGD`` on the task, θ ← θ + ε(θ̃ − θ), log the query loss every 500 iterations), with
the Reptile paper's sine settings: MLP 1-64-64-1 tanh, 50 points per task in 5 minibatches of 10,
inner lr 0.02, one task per iteration, ε = 0.1 annealed linearly to 0. Tasks come from the same
sampler as lit-meta's.

    python bench/reference_reptile_sine.py --iterations 30000
"""

import argparse
import copy
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from lit_meta.datamodules import SineDataModule


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))


def reptile_train(
    model,
    task_stream,
    iterations,
    meta_lr=0.1,
    inner_lr=0.02,
    inner_steps=5,
    inner_batch=10,
    log_every=500,
    on_log=None,
):
    """The Reptile specification's reptile_train for regression, with the paper's linear ε annealing."""
    for iteration in range(iterations):
        original_params = {name: param.clone() for name, param in model.named_parameters()}
        tasks = next(task_stream)
        support_x, support_y = tasks.support_x[0], tasks.support_y[0]
        inner_optimizer = torch.optim.SGD(model.parameters(), lr=inner_lr)
        order = torch.randperm(support_x.shape[0])
        for step in range(inner_steps):
            batch = order[step * inner_batch : (step + 1) * inner_batch]
            loss = F.mse_loss(model(support_x[batch]), support_y[batch])
            inner_optimizer.zero_grad()
            loss.backward()
            inner_optimizer.step()
        epsilon = meta_lr * (1 - iteration / iterations)
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.data = original_params[name] + epsilon * (param.data - original_params[name])
        if on_log is not None and iteration % log_every == 0:
            with torch.no_grad():
                on_log(iteration, F.mse_loss(model(tasks.query_x[0]), tasks.query_y[0]).item())
    return model


def reptile_adapt(model, support_x, support_y, inner_lr=0.02, inner_steps=32):
    """The Reptile specification's reptile_adapt (MSE): copy, k full-batch SGD steps."""
    adapted = copy.deepcopy(model)
    optimizer = torch.optim.SGD(adapted.parameters(), lr=inner_lr)
    for _ in range(inner_steps):
        loss = F.mse_loss(adapted(support_x), support_y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return adapted


def post_adaptation_mse(model, datamodule, tasks=100, steps=32, per_task=False):
    """Mean query MSE after ``reptile_adapt`` on the held-out test tasks (or the per-task values)."""
    losses = []
    for batch in datamodule.eval_tasks("test", tasks, batch_size=tasks):
        for i in range(len(batch)):
            adapted = reptile_adapt(model, batch.support_x[i], batch.support_y[i], inner_steps=steps)
            with torch.no_grad():
                losses.append(F.mse_loss(adapted(batch.query_x[i]), batch.query_y[i]).item())
    return torch.tensor(losses) if per_task else sum(losses) / len(losses)


def sine_datamodule(seed: int) -> SineDataModule:
    return SineDataModule(
        shots=10,
        train_shots=50,
        queries=50,
        meta_batch_size=1,
        phase_range=(0.0, 6.283185307179586),
        epoch_length=10**9,
        seed=seed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    datamodule = sine_datamodule(args.seed)
    model = make_model()
    start = time.perf_counter()
    reptile_train(model, iter(datamodule.train_dataloader()), args.iterations)
    seconds = time.perf_counter() - start
    result = {
        "iterations": args.iterations,
        "seconds": seconds,
        "iterations_per_second": args.iterations / seconds,
        "post_adaptation_mse_32_steps": post_adaptation_mse(model, datamodule),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
