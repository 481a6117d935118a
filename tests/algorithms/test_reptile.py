"""Reptile's meta-step against the "Reptile" specification's loop written by hand (deepcopy,
torch.optim.SGD, interpolate)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from lit_meta.algorithms import Reptile, add_reptile_gradient_, reptile_step_
from lit_meta.algorithms.reptile import minibatch_indices
from lit_meta.errors import ConfigError
from lit_meta.nn import MLP

INNER_LR, INNER_STEPS, EPSILON = 0.05, 3, 0.3


def tiny_mlp():
    torch.manual_seed(5)
    return MLP(1, 1, hidden_sizes=[8], activation="tanh")


def seed_reptile_step(model, tasks, batches_per_task):
    """θ + ε·mean_i(θ̃_i − θ), θ̃_i from plain torch.optim.SGD steps on the given minibatches of task i."""
    theta = [p.detach().clone() for p in model.parameters()]
    adapted = []
    for i in range(len(tasks)):
        task_model = copy.deepcopy(model)
        optimizer = torch.optim.SGD(task_model.parameters(), lr=INNER_LR)
        for batch in batches_per_task[i]:
            x = tasks.support_x[i] if batch is None else tasks.support_x[i][batch]
            y = tasks.support_y[i] if batch is None else tasks.support_y[i][batch]
            optimizer.zero_grad()
            F.mse_loss(task_model(x), y).backward()
            optimizer.step()
        adapted.append([p.detach().clone() for p in task_model.parameters()])
    return [t + EPSILON * sum(a[k] - t for a in adapted) / len(adapted) for k, t in enumerate(theta)]


@pytest.mark.parametrize("inner_batch_size", [None, 4])
@pytest.mark.parametrize("compile_inner_loop", [False, True])
def test_one_meta_step_with_sgd_equals_the_interpolation_by_hand(
    sine_tasks, inner_batch_size, compile_inner_loop
):
    model = tiny_mlp()
    reptile = Reptile(
        copy.deepcopy(model),
        F.mse_loss,
        INNER_LR,
        INNER_STEPS,
        inner_batch_size,
        seed=11,
        compile=compile_inner_loop,
    )
    generator = torch.Generator().manual_seed(11)  # the minibatches the algorithm will draw, task by task
    batches = [minibatch_indices(6, inner_batch_size, INNER_STEPS, generator) for _ in range(len(sine_tasks))]
    expected = seed_reptile_step(model, sine_tasks, batches)

    optimizer = torch.optim.SGD(reptile.parameters(), lr=EPSILON)
    optimizer.zero_grad()
    reptile.meta_gradient(sine_tasks)
    optimizer.step()
    for actual, wanted in zip(reptile.parameters(), expected, strict=True):
        torch.testing.assert_close(actual.detach(), wanted, atol=1e-6, rtol=1e-5)


def test_direct_and_gradient_forms_are_the_same_rule():
    torch.manual_seed(0)
    theta = [torch.randn(3, 2), torch.randn(4)]
    adapted = [[t + torch.randn_like(t) for t in theta] for _ in range(3)]
    expected = [t + EPSILON * sum(a[k] - t for a in adapted) / 3 for k, t in enumerate(theta)]

    direct = [t.clone() for t in theta]
    reptile_step_(direct, adapted, EPSILON)

    params = [torch.nn.Parameter(t.clone()) for t in theta]
    for task_params in adapted:
        add_reptile_gradient_(params, task_params, weight=1 / 3)
    torch.optim.SGD(params, lr=EPSILON).step()

    for d, p, e in zip(direct, params, expected, strict=True):
        torch.testing.assert_close(d, e)
        torch.testing.assert_close(p.detach(), e)


def test_meta_gradient_leaves_the_meta_parameters_unchanged(sine_tasks):
    reptile = Reptile(tiny_mlp(), F.mse_loss, INNER_LR, INNER_STEPS)
    before = [p.detach().clone() for p in reptile.parameters()]
    output = reptile.meta_gradient(sine_tasks)
    assert all(torch.equal(b, p) for b, p in zip(before, reptile.parameters(), strict=True))
    assert output.query_loss.shape == (3,) and output.query_output.shape == sine_tasks.query_y.shape


def test_unscored_meta_gradient_is_the_same_direction_without_query_outputs(sine_tasks):
    scored = Reptile(tiny_mlp(), F.mse_loss, INNER_LR, INNER_STEPS, inner_batch_size=5, seed=3)
    unscored = copy.deepcopy(scored)
    scored.meta_gradient(sine_tasks, score=True)
    output = unscored.meta_gradient(sine_tasks, score=False)
    assert output.query_loss is None and output.query_output is None
    for a, b in zip(scored.parameters(), unscored.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)
    assert torch.equal(scored.generator.get_state(), unscored.generator.get_state())


def test_adapt_is_seed_003_reptile_adapt(sine_tasks):
    model = tiny_mlp()
    reptile = Reptile(copy.deepcopy(model), F.mse_loss, INNER_LR, INNER_STEPS)
    adapted = reptile.adapt(sine_tasks.support_x[1], sine_tasks.support_y[1], steps=10)
    expected = copy.deepcopy(model)
    optimizer = torch.optim.SGD(expected.parameters(), lr=INNER_LR)
    for _ in range(10):
        optimizer.zero_grad()
        F.mse_loss(expected(sine_tasks.support_x[1]), sine_tasks.support_y[1]).backward()
        optimizer.step()
    for a, e in zip(adapted.parameters(), expected.parameters(), strict=True):
        torch.testing.assert_close(a, e.detach(), atol=1e-6, rtol=1e-5)
    assert not any(p.requires_grad for p in adapted.parameters())


def test_minibatches_use_every_example_once_before_any_twice():
    batches = minibatch_indices(10, 4, steps=5, generator=torch.Generator().manual_seed(0))
    flat = torch.cat(batches)
    assert len(batches) == 5 and all(b.shape == (4,) for b in batches)
    assert sorted(flat[:10].tolist()) == list(range(10))  # first pass: a permutation
    assert sorted(flat[10:20].tolist()) == list(range(10))  # second pass: another one
    assert minibatch_indices(10, None, 3, None) == [None] * 3
    assert minibatch_indices(10, 10, 2, None) == [None] * 2  # a batch as big as the set is the set


def test_minibatch_generator_state_travels_in_the_state_dict(sine_tasks):
    first = Reptile(tiny_mlp(), F.mse_loss, INNER_LR, INNER_STEPS, inner_batch_size=2, seed=1)
    first.meta_gradient(sine_tasks)
    second = Reptile(tiny_mlp(), F.mse_loss, INNER_LR, INNER_STEPS, inner_batch_size=2, seed=99)
    second.load_state_dict(first.state_dict())
    assert torch.equal(first.generator.get_state(), second.generator.get_state())


def test_inner_adam_is_the_papers_adam_with_beta1_zero_written_out(sine_tasks):
    """Adam with β1 = 0 from fresh state: step t moves θ by lr·g / (sqrt(v_t / (1 − β2^t)) + eps)."""
    torch.manual_seed(0)
    reptile = Reptile(MLP(1, 1, [8]), F.mse_loss, inner_lr=0.01, inner_steps=3, inner_optimizer="adam")
    support_x, support_y = sine_tasks.support_x[0], sine_tasks.support_y[0]
    names = [name for name, _ in reptile.learner.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in reptile.learner.parameters()]
    second_moments = [torch.zeros_like(p) for p in params]
    beta2, eps = 0.999, 1e-8
    for t in range(1, 4):
        state = dict(zip(names, params, strict=True))
        prediction = torch.func.functional_call(reptile.learner, state, (support_x,))
        gradients = torch.autograd.grad(F.mse_loss(prediction, support_y), params)
        with torch.no_grad():
            for p, g, v in zip(params, gradients, second_moments, strict=True):
                v.mul_(beta2).add_((1 - beta2) * g * g)
                p.sub_(0.01 * g / ((v / (1 - beta2**t)).sqrt() + eps))
    adapted = reptile.adapt(support_x, support_y, steps=3)
    for ours, reference in zip(adapted.parameters(), params, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_inner_optimizer_is_validated():
    with pytest.raises(ConfigError, match="unknown inner_optimizer 'rmsprop'"):
        Reptile(MLP(1, 1, [4]), F.mse_loss, 0.1, 1, inner_optimizer="rmsprop")
    with pytest.raises(ConfigError, match="compile_inner_loop supports the sgd inner optimizer only"):
        Reptile(MLP(1, 1, [4]), F.mse_loss, 0.1, 1, compile=True, inner_optimizer="adam")
