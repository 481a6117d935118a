"""VarShare layers and their Reptile meta-update (VarShare spec): the current task's effective weights are
invariant, θ moves by α·μᵢ, other tasks move by exactly that, at any depth; both target syncs."""

import copy
import re

import pytest
import torch
from torch import nn

from lit_meta.algorithms.varshare import shift_, sync_targets_, varshare_meta_update_
from lit_meta.errors import ConfigError
from lit_meta.nn.varshare import VarShareLayer, VarShareMLP

TASKS = (0, 1, 2)


def randomised(network: nn.Module, seed: int = 0) -> nn.Module:
    """Give every μ a random value (as after some training) so the update has something to move."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in network.varshare_layers():
            for mu in layer.mus.values():
                mu.copy_(torch.randn(mu.shape, generator=generator))
    return network


def effective(network: VarShareMLP, task) -> list[torch.Tensor]:
    return [layer.effective_weights(task).detach().clone() for layer in network.varshare_layers()]


@pytest.mark.parametrize("hidden_sizes", [[], [8], [8, 6, 4]])
def test_meta_update_keeps_the_current_task_and_moves_the_others_by_alpha_mu(hidden_sizes):
    torch.manual_seed(0)
    network = randomised(VarShareMLP(3, 2, hidden_sizes, task_ids=TASKS))
    alpha = 0.3
    before = {task: effective(network, task) for task in TASKS}
    theta = [layer.theta.detach().clone() for layer in network.varshare_layers()]
    mu = [layer.mus["1"].detach().clone() for layer in network.varshare_layers()]
    varshare_meta_update_([network], task_id=1, alpha=alpha)
    for k, layer in enumerate(network.varshare_layers()):
        torch.testing.assert_close(layer.effective_weights(1), before[1][k], atol=1e-6, rtol=0)
        torch.testing.assert_close(layer.theta, theta[k] + alpha * mu[k])
        torch.testing.assert_close(layer.mus["1"], (1 - alpha) * mu[k])
        for other in (0, 2):
            torch.testing.assert_close(layer.effective_weights(other), before[other][k] + alpha * mu[k])


def test_meta_update_works_on_any_module_exposing_theta_and_mus():
    class Custom(nn.Module):  # not a VarShareLayer: duck typing only
        def __init__(self):
            super().__init__()
            self.theta = nn.Parameter(torch.ones(2, 2))
            self.mus = nn.ParameterDict({"7": nn.Parameter(torch.full((2, 2), 2.0))})

    network = nn.Sequential(nn.Sequential(Custom()))  # nested
    varshare_meta_update_([network], task_id=7, alpha=0.5)
    custom = network[0][0]
    assert torch.equal(custom.theta, torch.full((2, 2), 2.0)) and torch.equal(
        custom.mus["7"], torch.ones(2, 2)
    )


def test_forward_uses_theta_plus_the_active_tasks_mu():
    torch.manual_seed(1)
    layer = VarShareLayer(3, 2, task_ids=["a", "b"])
    with torch.no_grad():
        layer.mus["b"].normal_()
    x = torch.randn(4, 3)
    layer.active_task = "b"
    weights = layer.theta + layer.mus["b"]
    torch.testing.assert_close(layer(x), x @ weights[:, :-1].T + weights[:, -1])
    network = VarShareMLP(3, 2, [5], task_ids=["a"])
    network.set_task("new")  # a new task starts at θ
    for layer in network.varshare_layers():
        torch.testing.assert_close(layer.effective_weights("new"), layer.theta)
    assert network.mu_penalty("new").item() == 0


def test_target_syncs_do_what_the_docs_say():
    torch.manual_seed(2)
    online = randomised(VarShareMLP(3, 1, [6], task_ids=TASKS), seed=1)
    target = randomised(VarShareMLP(3, 1, [6], task_ids=TASKS), seed=2)  # differs, as after Polyak averaging
    copied, shifted = copy.deepcopy(target), copy.deepcopy(target)
    target_before = {task: effective(target, task) for task in TASKS}
    online_before = {task: effective(online, task) for task in TASKS}
    shifts = varshare_meta_update_([online], task_id=0, alpha=0.2)
    sync_targets_([online], [copied], 0, [shifts], "copy")
    for name, value in online.state_dict().items():
        assert torch.equal(copied.state_dict()[name], value), name  # the seed's hard copy
    sync_targets_([online], [shifted], 0, [shifts], "shift")
    x = torch.randn(5, 3)
    for task in TASKS:
        online_move = [a - b for a, b in zip(effective(online, task), online_before[task], strict=True)]
        for k, weights in enumerate(effective(shifted, task)):
            torch.testing.assert_close(weights, target_before[task][k] + online_move[k], atol=1e-6, rtol=0)
    shifted.set_task(0)
    target.set_task(0)
    torch.testing.assert_close(shifted(x), target(x), atol=1e-6, rtol=0)  # current task's target outputs kept


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda n: varshare_meta_update_([n], 0, alpha=0.0), "alpha must be in (0, 1]"),
        (lambda n: varshare_meta_update_([n], 0, alpha=1.5), "alpha must be in (0, 1]"),
        (lambda n: varshare_meta_update_([n], 9), "task 9 was never seen"),
        (lambda n: varshare_meta_update_([nn.Sequential(Thetaonly())], 0), "has theta but no mus"),
        (lambda n: sync_targets_([n], [n], 0, [[]], "soft"), "unknown target sync 'soft'"),
        (lambda n: shift_(n, 0, []), "does not have the online network's layers"),
    ],
)
def test_bad_input_is_refused_in_one_sentence(call, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        call(VarShareMLP(2, 1, [3], task_ids=TASKS))


class Thetaonly(nn.Module):
    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(1))
