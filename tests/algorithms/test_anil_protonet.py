"""ANIL and Prototypical Networks against references computed another way: the meta-gradients with
hand-written autograd, prototypes and logits in closed form, adaptation against its definition."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lit_meta.algorithms import ANIL, PrototypeClassifier, PrototypicalNetworks, build_algorithm
from lit_meta.algorithms.protonet import class_prototypes, prototype_logits
from lit_meta.errors import ConfigError
from lit_meta.nn import MLP
from lit_meta.tasks import TaskBatch

INNER_LR = 0.3


def classification_tasks(tasks=3, ways=3, shots=2, queries=4, features=6, seed=0) -> TaskBatch:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(tasks, ways, 1, features, generator=generator) * 2

    def draw(count):
        x = centres + torch.randn(tasks, ways, count, features, generator=generator)
        y = torch.arange(ways).repeat_interleave(count).expand(tasks, -1).clone()
        return x.flatten(1, 2), y

    support_x, support_y = draw(shots)
    query_x, query_y = draw(queries)
    return TaskBatch(support_x, support_y, query_x, query_y)


def tiny_classifier(ways=3) -> nn.Sequential:
    torch.manual_seed(5)
    return MLP(6, ways, hidden_sizes=[5], activation="tanh")


def by_hand(params, x):
    """The 6-5-3 tanh MLP of :func:`tiny_classifier`, written out."""
    w1, b1, w2, b2 = params
    return F.linear(torch.tanh(F.linear(x, w1, b1)), w2, b2)


def anil_reference(model, tasks, steps, first_order):
    """∇ mean_i L_query after ``steps`` explicit gradient steps of the head (w2, b2) alone."""
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    w1, b1, w2, b2 = params
    total = 0.0
    for i in range(len(tasks)):
        features = torch.tanh(F.linear(tasks.support_x[i], w1, b1))
        head = [w2, b2]
        for _ in range(steps):
            loss = F.cross_entropy(F.linear(features, *head), tasks.support_y[i])
            grads = torch.autograd.grad(loss, head, create_graph=not first_order)
            head = [p - INNER_LR * g for p, g in zip(head, grads, strict=True)]
        query = F.linear(torch.tanh(F.linear(tasks.query_x[i], w1, b1)), *head)
        total = total + F.cross_entropy(query, tasks.query_y[i])
    return torch.autograd.grad(total / len(tasks), params)


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("first_order", [False, True])
def test_anil_meta_gradient_matches_the_head_only_reference(steps, first_order):
    model, tasks = tiny_classifier(), classification_tasks()
    anil = ANIL(copy.deepcopy(model), F.cross_entropy, INNER_LR, steps, first_order=first_order)
    result = anil.meta_gradient(tasks)
    expected = anil_reference(model, tasks, steps, first_order)
    found = [p.grad for p in anil.learner.parameters()]  # body (w1, b1), then the head (w2, b2)
    for got, want in zip(found, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    assert result.query_loss.shape == (3,) and result.query_output.shape == (3, 12, 3)


def test_anil_second_order_terms_reach_the_body():
    """Second-order ANIL differs from first-order in the body's gradient (through the head's update)."""
    model, tasks = tiny_classifier(), classification_tasks()
    second = anil_reference(model, tasks, 2, first_order=False)
    first = anil_reference(model, tasks, 2, first_order=True)
    assert not torch.allclose(second[0], first[0], atol=1e-6)


def test_anil_adapts_the_head_only_and_the_trajectory_is_the_inner_rule():
    model, tasks = tiny_classifier(), classification_tasks()
    anil = ANIL(copy.deepcopy(model), F.cross_entropy, INNER_LR, 2)
    support_x, support_y = tasks.support_x[0], tasks.support_y[0]
    adapted = anil.adapt(support_x, support_y, steps=3)
    original = list(model.parameters())
    new = list(adapted.parameters())
    assert torch.equal(new[0], original[0]) and torch.equal(new[1], original[1])  # the body is kept
    head = [original[2].detach(), original[3].detach()]
    features = torch.tanh(F.linear(support_x, original[0], original[1])).detach()
    for _ in range(3):
        head = [h.requires_grad_() for h in head]
        grads = torch.autograd.grad(F.cross_entropy(F.linear(features, *head), support_y), head)
        head = [(h - INNER_LR * g).detach() for h, g in zip(head, grads, strict=True)]
    torch.testing.assert_close(new[2], head[0]) and torch.testing.assert_close(new[3], head[1])
    models = list(anil.adaptation_trajectory(support_x, support_y, 2))
    assert len(models) == 3


def test_anil_refuses_a_network_without_a_linear_head():
    with pytest.raises(ConfigError, match="ends in a linear layer"):
        ANIL(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), F.cross_entropy, 0.1, 1)


def test_prototypes_and_logits_match_their_definitions():
    torch.manual_seed(0)
    embeddings, labels = torch.randn(7, 4), torch.tensor([0, 1, 2, 0, 1, 2, 2])
    prototypes = class_prototypes(embeddings, labels, 3)
    for k in range(3):
        torch.testing.assert_close(prototypes[k], embeddings[labels == k].mean(0))
    queries = torch.randn(5, 4)
    expected = -torch.cdist(queries, prototypes).square()
    torch.testing.assert_close(prototype_logits(queries, prototypes), expected, atol=1e-5, rtol=1e-5)
    cosine = torch.stack([F.cosine_similarity(q.expand(3, -1), prototypes) for q in queries]) * 10
    torch.testing.assert_close(prototype_logits(queries, prototypes, "cosine"), cosine)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_protonet_meta_gradient_matches_a_plain_pytorch_loop(distance):
    torch.manual_seed(1)
    embedding = MLP(6, 4, hidden_sizes=[5], activation="tanh")
    tasks = classification_tasks()
    protonet = PrototypicalNetworks(copy.deepcopy(embedding), distance)
    result = protonet.meta_gradient(tasks)
    total = 0.0
    for i in range(len(tasks)):
        support = embedding(tasks.support_x[i])
        prototypes = torch.stack([support[tasks.support_y[i] == k].mean(0) for k in range(3)])
        query = embedding(tasks.query_x[i])
        if distance == "euclidean":
            logits = -((query[:, None, :] - prototypes[None]) ** 2).sum(-1)
        else:
            logits = 10 * F.normalize(query, dim=-1) @ F.normalize(prototypes, dim=-1).T
        total = total + F.cross_entropy(logits, tasks.query_y[i])
    expected = torch.autograd.grad(total / len(tasks), list(embedding.parameters()))
    for got, want in zip([p.grad for p in protonet.learner.parameters()], expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(result.query_loss.mean(), total.detach() / len(tasks))


def test_protonet_adapts_in_one_closed_form_step_to_any_number_of_classes():
    """With the identity embedding, a query at a class mean is that class, and the logits are minus the
    squared distances; the trajectory has one entry whatever ``steps`` says; 4-way works as 2-way."""
    protonet = PrototypicalNetworks(nn.Flatten())
    assert protonet.inner_steps == 0 and not protonet.ADAPTS_BY_STEPS
    support_x = torch.tensor(
        [[0.0, 0.0], [0.0, 2.0], [5.0, 5.0], [5.0, 7.0], [-4.0, 0], [-6.0, 0], [9, 0], [9, 0]]
    )
    support_y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    classifier = protonet.adapt(support_x, support_y)
    assert isinstance(classifier, PrototypeClassifier)
    means = torch.tensor([[0.0, 1.0], [5.0, 6.0], [-5.0, 0.0], [9.0, 0.0]])
    torch.testing.assert_close(classifier.prototypes, means)
    assert classifier(means).argmax(-1).tolist() == [0, 1, 2, 3]
    torch.testing.assert_close(classifier(torch.zeros(1, 2)), -(means**2).sum(-1, keepdim=True).T)
    assert len(list(protonet.adaptation_trajectory(support_x[:4], support_y[:4], steps=5))) == 1


def test_build_algorithm_knows_anil_and_protonet_and_refuses_misplaced_options():
    assert isinstance(build_algorithm("foanil", tiny_classifier(), F.cross_entropy, 0.1, 1), ANIL)
    assert build_algorithm("foanil", tiny_classifier(), F.cross_entropy, 0.1, 1).first_order
    protonet = build_algorithm("protonet", MLP(6, 4, [5]), F.cross_entropy, 0.1, 1, distance="cosine")
    assert isinstance(protonet, PrototypicalNetworks) and protonet.distance == "cosine"
    with pytest.raises(ConfigError, match="distance applies to protonet only"):
        build_algorithm("maml", tiny_classifier(), F.cross_entropy, 0.1, 1, distance="cosine")
    with pytest.raises(ConfigError, match="unknown distance"):
        build_algorithm("protonet", MLP(6, 4, [5]), F.cross_entropy, 0.1, 1, distance="manhattan")
