"""The learners: the papers' architectures, and batch normalisation that always uses batch statistics."""

import torch
from torch import nn

from lit_meta.evaluation.adaptation import predict
from lit_meta.nn import MLP, Conv4


def test_conv4_is_the_maml_omniglot_network():
    network = Conv4(1, 5)
    convolutions = [m for m in network.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convolutions] == [
        (1, 64, (3, 3)), (64, 64, (3, 3)), (64, 64, (3, 3)), (64, 64, (3, 3))
    ]  # fmt: skip
    assert sum(isinstance(m, nn.MaxPool2d) for m in network.modules()) == 4
    assert network[-1].in_features == 64  # 28 -> 14 -> 7 -> 3 -> 1
    assert network(torch.rand(7, 1, 28, 28)).shape == (7, 5)


def test_batch_norm_uses_the_batch_in_training_and_evaluation_modes():
    torch.manual_seed(0)
    for network in (Conv4(1, 3, [4, 4]), MLP(784, 3, [256, 128, 64, 64], batch_norm=True)):
        images = torch.rand(6, 1, 28, 28)
        assert not list(network.buffers())  # no running statistics to drift between tasks
        training = network.train()(images)
        evaluation = network.eval()(images)
        torch.testing.assert_close(training, evaluation)
        # an example's output depends on the rest of its batch: statistics come from the batch
        assert not torch.allclose(network(images[:3])[0], network(images)[0])


def test_non_transductive_predictions_see_only_the_support_set():
    torch.manual_seed(0)
    network = Conv4(1, 3, [4, 4])
    support, query = torch.rand(3, 1, 28, 28), torch.rand(5, 1, 28, 28)
    alone = predict(network, support, query, transductive=False)
    # the reference: the support set plus one query image at a time, through the network as it is
    reference = torch.stack([network(torch.cat([support, query[i : i + 1]]))[-1] for i in range(5)])
    torch.testing.assert_close(alone, reference)
    changed = query.clone()
    changed[1:] = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(predict(network, support, changed, transductive=False)[0], alone[0])
    assert not torch.allclose(predict(network, support, changed, transductive=True)[0], network(query)[0])


def test_both_settings_agree_without_batch_statistics():
    network = MLP(4, 2, [8])
    support, query = torch.rand(3, 4), torch.rand(5, 4)
    torch.testing.assert_close(
        predict(network, support, query, transductive=False),
        predict(network, support, query, transductive=True),
    )
