"""``task_threads``: tasks of a meta-batch adapted on several threads give the one-thread loop's
meta-gradient, query losses and outputs exactly (each task's gradient is summed in task order)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from lit_meta.algorithms import TASK_THREADED, build_algorithm
from lit_meta.errors import ConfigError
from lit_meta.modules import FewShotModule
from lit_meta.nn import Conv4

from .test_vectorized import SIDE, WAYS, image_tasks


@pytest.mark.parametrize("name", TASK_THREADED)
@pytest.mark.parametrize("steps", [1, 2])
def test_threaded_loop_equals_the_one_thread_loop(name, steps):
    torch.manual_seed(3)
    network = Conv4(1, WAYS, channels=(4, 4, 4, 4), image_size=SIDE)
    one_thread = build_algorithm(name, network, F.cross_entropy, 0.3, steps)
    threaded = copy.deepcopy(one_thread)
    threaded.task_threads = 3
    tasks = image_tasks(count=5)
    expected, got = one_thread.meta_gradient(tasks), threaded.meta_gradient(tasks)
    assert threaded.__dict__.get("_task_pool") is not None  # the threaded path ran
    for a, b in zip(one_thread.parameters(), threaded.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)
    assert torch.equal(expected.query_loss, got.query_loss)
    assert torch.equal(expected.query_output, got.query_output)
    # The one-thread loop is the reference computed another way: one backward over the mean loss.
    reference = copy.deepcopy(one_thread)
    reference.zero_grad(set_to_none=True)
    losses = []
    for i in range(len(tasks)):
        adapted = reference.wrapper.clone()
        if name in ("anil", "foanil"):  # the head adapts on the body's features
            features = reference.body(tasks.support_x[i])
            for _ in range(steps):
                adapted.adapt(F.cross_entropy(adapted(features), tasks.support_y[i]))
            losses.append(F.cross_entropy(adapted(reference.body(tasks.query_x[i])), tasks.query_y[i]))
        else:
            for _ in range(steps):
                adapted.adapt(F.cross_entropy(adapted(tasks.support_x[i]), tasks.support_y[i]))
            losses.append(F.cross_entropy(adapted(tasks.query_x[i]), tasks.query_y[i]))
    torch.stack(losses).mean().backward()
    for a, b in zip(reference.parameters(), threaded.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6)


def test_a_copy_rebuilds_its_thread_pool():
    torch.manual_seed(0)
    algorithm = build_algorithm(
        "maml", Conv4(1, WAYS, channels=(4,) * 4, image_size=SIDE), F.cross_entropy, 0.3, 1
    )
    algorithm.task_threads = 2
    algorithm.meta_gradient(image_tasks(count=2))
    assert (
        "_task_pool" not in copy.deepcopy(algorithm).__dict__ or copy.deepcopy(algorithm)._task_pool is None
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task_threads": 0}, "task_threads must be positive"),
        ({"algorithm": "reptile", "task_threads": 2}, "reptile runs its tasks on one thread"),
    ],
)
def test_bad_task_threads_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FewShotModule(**kwargs)


def test_module_passes_task_threads_to_its_algorithm():
    module = FewShotModule(algorithm="maml", task_threads=2)
    assert module.algorithm.task_threads == 2
