"""Test-time adaptation measured step by step: the metric of every few-shot paper."""

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lit_meta.algorithms.base import MetaAlgorithm
from lit_meta.tasks import TaskBatch


@dataclass
class AdaptationCurves:
    """Query results of each task after 0..K adaptation steps: tensors of shape ``[tasks, K + 1]``.

    ``accuracy`` is set for classification tasks (integer query labels), ``None`` for regression; so are
    ``outputs``, the query logits ``[tasks, queries, classes]`` before (step 0) and after (step K)
    adaptation, and ``labels`` ``[tasks, queries]``, for metrics that need predictions.
    """

    loss: Tensor
    accuracy: Tensor | None
    outputs: tuple[Tensor, Tensor] | None = None
    labels: Tensor | None = None

    @property
    def final_loss(self) -> Tensor:
        return self.loss[:, -1]

    @property
    def final_accuracy(self) -> Tensor | None:
        return None if self.accuracy is None else self.accuracy[:, -1]


def adaptation_curves(
    algorithm: MetaAlgorithm, tasks: Iterable[TaskBatch], steps: int, transductive: bool = True
) -> AdaptationCurves:
    """Adapt ``algorithm`` to every task's support set for ``steps`` steps, scoring the query set after
    each step (step 0 is the meta-learned initialisation itself); ``transductive`` as in :func:`predict`."""
    losses, accuracies, first_outputs, final_outputs, labels = [], [], [], [], []
    for batch in tasks:
        classification = not torch.is_floating_point(batch.query_y)
        for i in range(len(batch)):
            task_losses, task_accuracies = [], []
            trajectory = algorithm.adaptation_trajectory(batch.support_x[i], batch.support_y[i], steps)
            for step, model in enumerate(trajectory):
                with torch.no_grad():
                    output = predict(model, batch.support_x[i], batch.query_x[i], transductive)
                    task_losses.append(algorithm.loss_fn(output, batch.query_y[i]))
                    if classification:
                        task_accuracies.append(query_accuracy(output, batch.query_y[i]))
                        if step == 0:
                            first_outputs.append(output)
            losses.append(torch.stack(task_losses))
            if classification:
                accuracies.append(torch.stack(task_accuracies))
                final_outputs.append(output)
                labels.append(batch.query_y[i])
    if not accuracies:
        return AdaptationCurves(loss=torch.stack(losses).cpu(), accuracy=None)
    return AdaptationCurves(
        loss=torch.stack(losses).cpu(),
        accuracy=torch.stack(accuracies).cpu(),
        outputs=(torch.stack(first_outputs), torch.stack(final_outputs)),
        labels=torch.stack(labels),
    )


def predict(model: nn.Module, support_x: Tensor, query_x: Tensor, transductive: bool = True) -> Tensor:
    """The predictions of ``model`` for a task's query inputs.

    Transductive (the MAML paper's setting): the query set goes through the network as one batch, so
    batch normalisation normalises it with its own statistics and each prediction depends on the other
    query examples. Non-transductive (the Reptile paper's alternative, sec. 6): each query example is
    predicted in a batch made of the support set plus that example alone, so nothing leaks between
    query examples. Networks without batch statistics give the same predictions either way.
    """
    if transductive:
        return model(query_x)
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}

    def predict_one(example: Tensor) -> Tensor:
        batch = torch.cat([support_x, example.unsqueeze(0)])
        return torch.func.functional_call(model, state, (batch,))[-1]

    return torch.func.vmap(predict_one, randomness="error")(query_x)


def query_accuracy(output: Tensor, labels: Tensor) -> Tensor:
    """Per-task accuracy ``[B]`` of logits ``[B, Q, C]`` against integer labels ``[B, Q]``."""
    return (output.argmax(-1) == labels).float().mean(-1)
