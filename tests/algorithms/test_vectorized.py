"""The vectorised meta-batch (every task at once, ``torch.func.vmap``) against the task-by-task loop:
the same meta-gradient, query losses and outputs to 1e-5, for every algorithm, one and several inner
steps, on a conv network with batch normalisation over batch statistics."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lit_meta.algorithms import build_algorithm
from lit_meta.nn import MLP, Conv4
from lit_meta.tasks import TASK_SEED, TaskBatch

WAYS, SHOTS, QUERIES, SIDE = 3, 2, 3, 16
SETTINGS = {
    "maml": {"inner_lr": 0.3},
    "fomaml": {"inner_lr": 0.3},
    "metasgd": {"inner_lr": 0.3},
    "anil": {"inner_lr": 0.3},
    "foanil": {"inner_lr": 0.3},
    "reptile": {"inner_lr": 0.05},
    "reptile-adam": {"inner_lr": 0.01, "inner_optimizer": "adam", "inner_batch_size": 4},
    "protonet": {},
}


def image_tasks(count: int = 4, seed: int = 0, with_seeds: bool = False) -> TaskBatch:
    generator = torch.Generator().manual_seed(seed)

    def part(per_class: int):
        x = torch.rand(count, WAYS * per_class, 1, SIDE, SIDE, generator=generator)
        y = torch.arange(WAYS).repeat_interleave(per_class).expand(count, -1).clone()
        return x, y

    info = {TASK_SEED: torch.arange(count) + 100} if with_seeds else {}
    return TaskBatch(*part(SHOTS), *part(QUERIES), info=info)


def algorithm_pair(name: str, steps: int):
    """The same algorithm twice, from the same initial weights: task by task, and vectorised."""
    torch.manual_seed(3)
    network = Conv4(1, None if name == "protonet" else WAYS, channels=(4, 4, 4, 4), image_size=SIDE)
    if name == "reptile-adam":
        # A convolution's bias ahead of batch norm has a zero gradient up to rounding, which Adam's
        # normalisation turns into whole steps of rounding noise: an MLP keeps every gradient real.
        network = nn.Sequential(nn.Flatten(), MLP(SIDE * SIDE, WAYS, hidden_sizes=[16], activation="tanh"))
    options = dict(SETTINGS[name])
    algorithm = name.split("-")[0]
    loop = build_algorithm(
        algorithm, network, F.cross_entropy, options.pop("inner_lr", None), steps, **options,
    )  # fmt: skip
    vectorized = copy.deepcopy(loop)
    vectorized.vectorize = True
    return loop, vectorized


def gradients(algorithm) -> list[torch.Tensor]:
    return [p.grad.clone() for p in algorithm.parameters()]


CASES = [(name, steps) for name in SETTINGS for steps in ((0,) if name == "protonet" else (1, 3))]


@pytest.mark.parametrize(("name", "steps"), CASES)
def test_vectorized_meta_gradient_equals_the_loop(name, steps):
    loop, vectorized = algorithm_pair(name, steps)
    tasks = image_tasks(with_seeds=name == "reptile-adam")
    expected = loop.meta_gradient(tasks)
    result = vectorized.meta_gradient(tasks)
    for a, b in zip(gradients(loop), gradients(vectorized), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert any(g.abs().sum() > 0 for g in gradients(loop))
    torch.testing.assert_close(result.query_loss, expected.query_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(result.query_output, expected.query_output, rtol=1e-5, atol=1e-5)


def test_vectorized_reptile_draws_the_loops_minibatches_from_the_modules_generator():
    """Without task seeds both forms shuffle from the module's generator, in task order, and leave it
    in the same state."""
    loop, vectorized = algorithm_pair("reptile-adam", 3)
    tasks = image_tasks()
    loop.meta_gradient(tasks, score=False)
    assert vectorized.meta_gradient(tasks, score=False).query_output is None
    for a, b in zip(gradients(loop), gradients(vectorized), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert torch.equal(loop.generator.get_state(), vectorized.generator.get_state())


def test_each_task_keeps_its_own_batch_statistics():
    """A task's result does not depend on the other tasks of the meta-batch (batch norm per task)."""
    _, vectorized = algorithm_pair("maml", 1)
    tasks = image_tasks(count=3)
    together = vectorized.meta_gradient(tasks).query_output
    alone = vectorized.meta_gradient(tasks[1:2]).query_output
    torch.testing.assert_close(alone[0], together[1], rtol=1e-5, atol=1e-5)


def test_a_copy_of_a_used_algorithm_computes_with_its_own_parameters():
    _, vectorized = algorithm_pair("maml", 1)
    tasks = image_tasks()
    vectorized.meta_gradient(tasks)
    copied = copy.deepcopy(vectorized)
    with torch.no_grad():
        for p in copied.parameters():
            p.add_(0.1)
    copied.zero_grad()
    vectorized.zero_grad()
    assert not torch.allclose(
        copied.meta_gradient(tasks).query_loss, vectorized.meta_gradient(tasks).query_loss
    )


def test_compiled_vectorized_meta_gradient_equals_the_loop():
    """``compile_inner_loop`` with ``vectorize_tasks``: the compiled batched step gives the loop's result."""
    loop, vectorized = algorithm_pair("fomaml", 1)
    vectorized.compile_vectorized = True
    tasks = image_tasks(count=2)
    loop.meta_gradient(tasks)
    vectorized.meta_gradient(tasks)
    for a, b in zip(gradients(loop), gradients(vectorized), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["maml", "anil", "reptile", "protonet"])
def test_under_bf16_autocast_the_vectorized_meta_gradient_is_as_close_to_fp32_as_the_loops(name):
    """bf16 keeps about three significant digits, so only the direction of the meta-gradient survives
    (barely, through second-order MAML's inner step on an untrained network, looped or not)."""
    steps = 0 if name == "protonet" else 2
    loop, vectorized = algorithm_pair(name, steps)
    tasks = image_tasks()
    loop.meta_gradient(tasks)
    fp32 = torch.cat([g.flatten() for g in gradients(loop)])
    closeness = {}
    for kind, algorithm in (("loop", algorithm_pair(name, steps)[0]), ("vectorized", vectorized)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            algorithm.meta_gradient(tasks)
        bf16 = torch.cat([g.flatten() for g in gradients(algorithm)])
        closeness[kind] = F.cosine_similarity(fp32, bf16, dim=0).item()
    assert closeness["vectorized"] > min(0.98, closeness["loop"] - 0.05), closeness
