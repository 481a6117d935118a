"""``model.vectorize_tasks`` through the training command line: a short run of each kind of Omniglot
config ends with the same parameters whether the meta-batch is a loop of tasks or one vectorised call.

The two orders of summation round differently (1e-7), so the runs step with plain SGD of a small
learning rate: Adam divides each gradient by its own magnitude, so on its first steps an element whose
gradient is near zero moves by a sizeable fraction of the learning rate in a direction set by rounding,
and large steps of second-order MAML amplify rounding differences a thousandfold within three steps."""

import pytest
import torch
from torch import nn

from lit_meta.algorithms import PrototypicalNetworks, Reptile
from lit_meta.algorithms.maml import _DifferentiableInnerLoop
from lit_meta.checkpoints import load_checkpoint
from lit_meta.nn import Conv4

from .conftest import requires_omniglot, tiny_run, train

pytestmark = requires_omniglot
SGD = '{"class_path": "torch.optim.SGD", "init_args": {"lr": 0.001}}'


def biases_ahead_of_batch_norm() -> set[str]:
    """Conv4's convolution biases: batch norm subtracts them again, so their gradient is zero up to
    rounding, which Reptile's inner Adam turns into steps of rounding noise; they never change an output."""
    network = Conv4(1, 5)
    return {
        f"{i}.bias"
        for i in range(len(network) - 1)
        if isinstance(network[i], nn.Conv2d) and isinstance(network[i + 1], nn.BatchNorm2d)
    }


@pytest.mark.parametrize(
    "config", ["omniglot_maml_5w1s", "omniglot_anil_5w1s", "omniglot_reptile_5w1s", "omniglot_protonet_5w1s"]
)
def test_a_short_run_ends_with_the_same_parameters_looped_or_vectorized(
    config, tmp_path, omniglot_cache, monkeypatch
):
    vectorized_steps = []
    for algorithm in (_DifferentiableInnerLoop, PrototypicalNetworks, Reptile):
        original = algorithm._vectorized_meta_gradient

        def counted(self, *args, original=original):
            vectorized_steps.append(type(self).__name__)
            return original(self, *args)

        monkeypatch.setattr(algorithm, "_vectorized_meta_gradient", counted)
    states = {}
    for vectorize in ("false", "true"):
        run_dir = tmp_path / vectorize
        options = ["--model.init_args.vectorize_tasks", vectorize, "--model.init_args.optimizer", SGD]
        train(tiny_run(config, run_dir, 3, *options, omniglot_cache=omniglot_cache))
        states[vectorize] = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
        assert states[vectorize]["hyper_parameters"]["vectorize_tasks"] == (vectorize == "true")
    noise = biases_ahead_of_batch_norm()
    compared = 0
    for name, looped in states["false"]["state_dict"].items():
        if (
            isinstance(looped, torch.Tensor)
            and looped.is_floating_point()
            and not any(name.endswith(f".{bias}") for bias in noise)
        ):
            torch.testing.assert_close(states["true"]["state_dict"][name], looped, rtol=1e-4, atol=1e-5)
            compared += 1
    assert compared >= 10
    assert len(vectorized_steps) == 3  # the vectorised run's steps, and only those, took that path
    assert states["true"]["global_step"] == 3
