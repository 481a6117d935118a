"""The few-shot networks: shapes at Omniglot and mini-ImageNet size, embeddings without a head, ResNet-12's
residual block against a hand computation, DropBlock, and a second-order MAML step through ResNet-12."""

import learn2learn as l2l
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lit_meta.errors import ConfigError
from lit_meta.nn import ResNet12, build_network
from lit_meta.nn.resnet import ResidualBlock


@pytest.mark.parametrize(
    ("network", "channels", "side", "widths", "features"),
    [
        ("conv4", 1, 28, [64] * 4, 64),
        ("conv4", 3, 84, [32] * 4, 32 * 5 * 5),
        ("resnet12", 3, 84, [8, 12, 16, 20], 20),
        ("resnet12", 3, 32, [8, 12, 16, 20], 20),
    ],
)
def test_shapes_with_a_head_and_as_an_embedding(network, channels, side, widths, features):
    x = torch.rand(6, channels, side, side)
    classifier = build_network(network, channels, 5, widths, "relu", image_size=side)
    assert classifier(x).shape == (6, 5) and isinstance(classifier[-1], nn.Linear)
    embedding = build_network(network, channels, None, widths, "relu", image_size=side)
    assert embedding(x).shape == (6, features)
    assert not any(isinstance(layer, nn.Linear) for layer in embedding.modules())


def test_the_residual_block_is_three_convolutions_plus_a_shortcut():
    torch.manual_seed(0)
    block = ResidualBlock(3, 4)
    x = torch.randn(2, 3, 8, 8)
    convs = [m for m in block.body if isinstance(m, nn.Conv2d)]

    def bn(t):
        return F.batch_norm(t, None, None, training=True)  # batch statistics; γ = 1, β = 0 at init

    h = x
    for index, conv in enumerate(convs):
        h = bn(F.conv2d(h, conv.weight, padding=1))
        if index < 2:
            h = F.leaky_relu(h, 0.1)
    shortcut = bn(F.conv2d(x, block.shortcut[0].weight))
    expected = F.max_pool2d(F.leaky_relu(h + shortcut, 0.1), 2)
    torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)


def test_drop_block_acts_in_training_only_and_only_when_asked():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    plain = ResNet12(3, 5, [4, 4, 4, 4], drop_block=0.0, image_size=32)
    dropping = ResNet12(3, 5, [4, 4, 4, 4], drop_block=0.5, image_size=32)
    dropping.load_state_dict(plain.state_dict())
    assert not torch.allclose(dropping(x), plain(x))
    dropping.eval(), plain.eval()
    torch.testing.assert_close(dropping(x), plain(x))
    with pytest.raises(ConfigError, match="drop_block applies to resnet12 only"):
        build_network("conv4", 1, 5, [8] * 4, "relu", drop_block=0.1)


def test_a_second_order_maml_step_through_resnet12_matches_autograd_by_hand():
    torch.manual_seed(0)
    network = ResNet12(3, 2, [4, 4, 4, 4], image_size=20)
    x, y = torch.rand(2, 3, 20, 20), torch.tensor([0, 1])
    maml = l2l.algorithms.MAML(network, lr=0.1)
    learner = maml.clone()
    learner.adapt(F.cross_entropy(learner(x), y))
    F.cross_entropy(learner(x), y).backward()
    names = [name for name, _ in network.named_parameters()]
    params = {name: p.detach().clone().requires_grad_() for name, p in network.named_parameters()}
    call = torch.func.functional_call
    inner = torch.autograd.grad(
        F.cross_entropy(call(network, params, (x,)), y), list(params.values()), create_graph=True
    )
    adapted = {name: params[name] - 0.1 * g for name, g in zip(names, inner, strict=True)}
    expected = torch.autograd.grad(F.cross_entropy(call(network, adapted, (x,)), y), list(params.values()))
    for (name, param), want in zip(network.named_parameters(), expected, strict=True):
        assert torch.isfinite(param.grad).all(), name
        torch.testing.assert_close(param.grad, want, atol=1e-5, rtol=1e-4)
