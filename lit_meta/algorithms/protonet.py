"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017, "Prototypical Networks for Few-shot
Learning").

An embedding network f is meta-learned so that each class of a task is summarised by its prototype, the
mean embedding of its support examples, c_k = mean_{i: y_i = k} f(x_i), and a query x is classified by a
softmax over −d(f(x), c_k). d is the squared Euclidean distance (the paper's choice, sec. 2.3) or, as an
option, the cosine distance (logits are a fixed scale times the cosine similarity, since unscaled cosines
in [−1, 1] make a nearly uniform softmax). Adaptation to a task is this one closed-form computation:
there are no inner steps, and the number of classes may differ between training and test.
"""

import copy
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import vmap

from lit_meta.algorithms.base import MetaAlgorithm, MetaStepOutput
from lit_meta.errors import require
from lit_meta.tasks import TaskBatch

DISTANCES = ("euclidean", "cosine")
COSINE_SCALE = 10.0
"""Logits of the cosine distance: this scale times the cosine similarity (as in Gidaris & Komodakis,
2018, and most cosine few-shot classifiers)."""


def class_prototypes(embeddings: Tensor, labels: Tensor, ways: int) -> Tensor:
    """``[ways, D]``: the mean of the embeddings ``[N, D]`` of each class ``0..ways-1`` (labels ``[N]``)."""
    sums = embeddings.new_zeros(ways, embeddings.shape[-1]).index_add(0, labels, embeddings)
    counts = embeddings.new_zeros(ways).index_add(0, labels, torch.ones_like(labels, dtype=embeddings.dtype))
    return sums / counts.unsqueeze(-1)


def prototype_logits(embeddings: Tensor, prototypes: Tensor, distance: str = "euclidean") -> Tensor:
    """``[N, ways]`` logits of embeddings ``[N, D]`` against prototypes ``[ways, D]``: minus the squared
    Euclidean distance, or :data:`COSINE_SCALE` times the cosine similarity."""
    if distance == "cosine":
        return COSINE_SCALE * F.normalize(embeddings, dim=-1) @ F.normalize(prototypes, dim=-1).T
    return -(embeddings.unsqueeze(-2) - prototypes).square().sum(-1)


class PrototypeClassifier(nn.Module):
    """An embedding network and the prototypes of one task's classes: the classifier Prototypical
    Networks adapt to a task, usable like any adapted learner (``model(x)`` gives logits)."""

    def __init__(self, embedding: nn.Module, prototypes: Tensor, distance: str = "euclidean") -> None:
        super().__init__()
        self.embedding = embedding
        self.register_buffer("prototypes", prototypes)
        self.distance = distance

    def forward(self, x: Tensor) -> Tensor:
        return prototype_logits(self.embedding(x).flatten(1), self.prototypes, self.distance)


class PrototypicalNetworks(MetaAlgorithm):
    """The meta-gradient is the gradient of the mean query cross-entropy of the prototype classifier
    over the meta-batch; each task's support and query sets pass through the embedding separately, as at
    test time (so batch normalisation sees the same batches in training and evaluation).

    :param learner: the embedding network (a ``network`` built without its classification layer).
    :param distance: ``euclidean`` (squared, the paper's) or ``cosine``.
    """

    ADAPTS_BY_STEPS = False

    def __init__(self, learner: nn.Module, distance: str = "euclidean") -> None:
        super().__init__(learner, F.cross_entropy)
        require(distance in DISTANCES, f"unknown distance '{distance}'; choose one of {', '.join(DISTANCES)}")
        self.learner = learner
        self.distance = distance
        self._every_task = None

    def prototypes(self, support_x: Tensor, support_y: Tensor) -> Tensor:
        """The class prototypes of one task's support set (its labels are ``0..ways-1``)."""
        return class_prototypes(self.learner(support_x).flatten(1), support_y, self._ways(support_y))

    @staticmethod
    def _ways(support_y: Tensor) -> int:
        """The number of classes of support labels ``[..., N]``; every one must have an example."""
        ways = int(support_y.max()) + 1
        present = torch.zeros(*support_y.shape[:-1], ways, dtype=torch.bool, device=support_y.device)
        require(
            bool(present.scatter_(-1, support_y, True).all()),
            "every class 0..ways-1 needs a support example to have a prototype",
        )
        return ways

    def meta_gradient(self, tasks: TaskBatch, score: bool = True) -> MetaStepOutput:
        if self.vectorize:
            return self._vectorized_meta_gradient(tasks)
        losses, outputs = [], []
        for i in range(len(tasks)):
            prototypes = self.prototypes(tasks.support_x[i], tasks.support_y[i])
            output = prototype_logits(self.learner(tasks.query_x[i]).flatten(1), prototypes, self.distance)
            loss = self.loss_fn(output, tasks.query_y[i])
            (loss / len(tasks)).backward()  # one backward per task frees its graph at once
            losses.append(loss.detach())
            outputs.append(output.detach())
        return MetaStepOutput(torch.stack(losses), torch.stack(outputs))

    def _vectorized_meta_gradient(self, tasks: TaskBatch) -> MetaStepOutput:
        """The loop's meta-gradient with every task's prototypes and logits computed at once."""
        if self._every_task is None:  # built once, so a compiled one is compiled once
            every_task = vmap(self._one_task, in_dims=(0, 0, 0, 0, None), randomness="different")
            self._every_task = (
                torch.compile(every_task, dynamic=False) if self.compile_vectorized else every_task
            )
        ways = self._ways(tasks.support_y)
        losses, outputs = self._every_task(
            tasks.support_x, tasks.support_y, tasks.query_x, tasks.query_y, ways
        )
        losses.mean().backward()
        return MetaStepOutput(losses.detach(), outputs.detach())

    def _one_task(self, support_x: Tensor, support_y: Tensor, query_x: Tensor, query_y: Tensor, ways: int):
        prototypes = class_prototypes(self.learner(support_x).flatten(1), support_y, ways)
        output = prototype_logits(self.learner(query_x).flatten(1), prototypes, self.distance)
        return self.loss_fn(output, query_y), output

    def adaptation_trajectory(self, support_x: Tensor, support_y: Tensor, steps: int) -> Iterator[nn.Module]:
        """The prototype classifier of the support set, once: ``steps`` do not apply."""
        with torch.no_grad():
            prototypes = self.prototypes(support_x, support_y)
        yield PrototypeClassifier(self.learner, prototypes, self.distance)

    def adapt(self, support_x: Tensor, support_y: Tensor, steps: int | None = None) -> nn.Module:
        """An independent prototype classifier for one task (a copy of the embedding network)."""
        with torch.no_grad():
            prototypes = self.prototypes(support_x, support_y)
        classifier = PrototypeClassifier(copy.deepcopy(self.learner), prototypes, self.distance)
        return classifier.requires_grad_(False)
