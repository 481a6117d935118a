"""MAML, first-order MAML and Meta-SGD meta-gradients against references computed by hand with autograd."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lit_meta.algorithms import MAML, MetaSGD, build_algorithm
from lit_meta.errors import ConfigError
from lit_meta.nn import MLP

INNER_LR = 0.05
INNER_STEPS = 2


def tiny_mlp() -> nn.Module:
    torch.manual_seed(3)
    return MLP(1, 1, hidden_sizes=[5], activation="tanh")


def forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The 1-5-1 tanh MLP written out by hand."""
    w1, b1, w2, b2 = params
    return F.linear(torch.tanh(F.linear(x, w1, b1)), w2, b2)


def reference_meta_gradient(model, tasks, first_order=False, learned_rates=None):
    """∇θ mean_i L_query(θ_i), θ_i after ``INNER_STEPS`` explicit gradient steps on task i's support set."""
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    rates = None if learned_rates is None else [r.detach().clone().requires_grad_() for r in learned_rates]
    total = 0.0
    for i in range(len(tasks)):
        adapted = params
        for _ in range(INNER_STEPS):
            loss = F.mse_loss(forward(adapted, tasks.support_x[i]), tasks.support_y[i])
            grads = torch.autograd.grad(loss, adapted, create_graph=not first_order)
            steps = (
                [INNER_LR * g for g in grads]
                if rates is None
                else [r * g for r, g in zip(rates, grads, strict=True)]
            )
            adapted = [p - s for p, s in zip(adapted, steps, strict=True)]
        total = total + F.mse_loss(forward(adapted, tasks.query_x[i]), tasks.query_y[i])
    leaves = params + (rates or [])
    return torch.autograd.grad(total / len(tasks), leaves)


def assert_all_close(actual, expected, atol=1e-6):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, atol=atol, rtol=1e-5)


def test_maml_meta_gradient_matches_second_order_reference(sine_tasks):
    model = tiny_mlp()
    maml = MAML(copy.deepcopy(model), F.mse_loss, INNER_LR, INNER_STEPS)
    maml.meta_gradient(sine_tasks)
    expected = reference_meta_gradient(model, sine_tasks)
    assert_all_close([p.grad for p in maml.parameters()], expected)


def test_first_order_maml_drops_exactly_the_second_order_terms(sine_tasks):
    model = tiny_mlp()
    fomaml = MAML(copy.deepcopy(model), F.mse_loss, INNER_LR, INNER_STEPS, first_order=True)
    fomaml.meta_gradient(sine_tasks)
    first_order = [p.grad for p in fomaml.parameters()]
    assert_all_close(first_order, reference_meta_gradient(model, sine_tasks, first_order=True))
    second_order = reference_meta_gradient(model, sine_tasks)
    assert max((a - b).abs().max().item() for a, b in zip(first_order, second_order, strict=True)) > 1e-4


def test_meta_sgd_learned_rates_receive_the_reference_gradient(sine_tasks):
    model = tiny_mlp()
    meta_sgd = MetaSGD(copy.deepcopy(model), F.mse_loss, INNER_LR, INNER_STEPS)
    with torch.no_grad():  # distinct rates per parameter, so a mix-up between them would show
        for k, rate in enumerate(meta_sgd.wrapper.lrs):
            rate.mul_(1.0 + 0.1 * k)
    rates = list(meta_sgd.wrapper.lrs)
    expected = reference_meta_gradient(model, sine_tasks, learned_rates=rates)
    meta_sgd.meta_gradient(sine_tasks)
    learner_grads = [p.grad for p in meta_sgd.learner.parameters()]
    rate_grads = [r.grad for r in meta_sgd.wrapper.lrs]
    assert all(g is not None and g.abs().sum() > 0 for g in rate_grads)
    assert_all_close(learner_grads + rate_grads, expected)


def test_meta_sgd_rates_are_optimised_by_the_meta_optimizer(sine_tasks):
    meta_sgd = MetaSGD(tiny_mlp(), F.mse_loss, INNER_LR, INNER_STEPS)
    optimizer = torch.optim.SGD(meta_sgd.parameters(), lr=0.1)
    before = [r.detach().clone() for r in meta_sgd.wrapper.lrs]
    meta_sgd.meta_gradient(sine_tasks)
    optimizer.step()
    assert any(not torch.equal(b, r) for b, r in zip(before, meta_sgd.wrapper.lrs, strict=True))


@pytest.mark.parametrize("name", ["maml", "fomaml", "metasgd"])
def test_adaptation_uses_the_training_inner_rule(name, sine_tasks):
    """Test-time adaptation of the differentiable algorithms is their inner step, for any number of steps."""
    model = tiny_mlp()
    algorithm = build_algorithm(name, copy.deepcopy(model), F.mse_loss, INNER_LR, INNER_STEPS)
    support_x, support_y = sine_tasks.support_x[0], sine_tasks.support_y[0]
    adapted = algorithm.adapt(support_x, support_y, steps=3)
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    for _ in range(3):
        grads = torch.autograd.grad(F.mse_loss(forward(params, support_x), support_y), params)
        params = [(p - INNER_LR * g).detach().requires_grad_() for p, g in zip(params, grads, strict=True)]
    assert_all_close(list(adapted.parameters()), params)
    # the meta-parameters themselves are untouched by adaptation
    assert_all_close(list(algorithm.learner.parameters()), list(model.parameters()), atol=0)


def test_bad_algorithm_arguments_are_refused_in_one_sentence():
    with pytest.raises(ConfigError, match="unknown algorithm 'matching_networks'"):
        build_algorithm("matching_networks", tiny_mlp(), F.mse_loss, 0.1, 1)
    with pytest.raises(ConfigError, match="inner_lr must be positive"):
        build_algorithm("maml", tiny_mlp(), F.mse_loss, -0.1, 1)
    with pytest.raises(ConfigError, match="inner_steps must be positive"):
        build_algorithm("maml", tiny_mlp(), F.mse_loss, 0.1, 0)
    with pytest.raises(ConfigError, match="inner_batch_size applies to reptile only"):
        build_algorithm("maml", tiny_mlp(), F.mse_loss, 0.1, 1, inner_batch_size=5)
