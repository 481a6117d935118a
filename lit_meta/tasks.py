"""The unit of data every meta-learning algorithm consumes: a batch of few-shot tasks."""

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

TASK_SEED = "task_seed"
"""Key of ``TaskBatch.info`` holding each training task's own seed, for the randomness of its inner loop
(Reptile's minibatch shuffles): a task's update then does not depend on which process adapts it."""


def to_device(tensor: Tensor, device: torch.device | str) -> Tensor:
    """``tensor`` on ``device``; a CPU tensor bound for a GPU is copied from pinned memory without
    blocking the host (the copy is queued on the GPU's stream, ahead of the work that reads it)."""
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


@dataclass
class TaskBatch:
    """``B`` tasks, each with a support set (to adapt on) and a query set (to score the adaptation).

    Tensors are stacked over tasks: ``support_x`` is ``[B, S, *x_shape]``, ``query_y``
    is ``[B, Q, *y_shape]``.
    ``info`` holds per-task ground truth that a plot may want (e.g. a sine task's amplitude and phase),
    each entry a tensor with leading dimension ``B``.
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    info: dict[str, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.support_x.shape[0]

    def task(self, index: int) -> "TaskBatch":
        """The single task ``index`` as a batch of one."""
        return self[index : index + 1]

    def __getitem__(self, index: slice) -> "TaskBatch":
        return self.map(lambda tensor: tensor[index])

    def map(self, function: Callable[[Tensor], Tensor]) -> "TaskBatch":
        """A batch with ``function`` applied to every tensor."""
        return TaskBatch(
            **{f.name: function(getattr(self, f.name)) for f in fields(self) if f.name != "info"},
            info={key: function(value) for key, value in self.info.items()},
        )

    def to(self, device: torch.device | str) -> "TaskBatch":
        return self.map(lambda tensor: to_device(tensor, device))

    @staticmethod
    def concatenate(batches: "list[TaskBatch]") -> "TaskBatch":
        """Join batches along the task dimension."""
        first = batches[0]
        return TaskBatch(
            support_x=torch.cat([b.support_x for b in batches]),
            support_y=torch.cat([b.support_y for b in batches]),
            query_x=torch.cat([b.query_x for b in batches]),
            query_y=torch.cat([b.query_y for b in batches]),
            info={key: torch.cat([b.info[key] for b in batches]) for key in first.info},
        )


LOSS_FUNCTIONS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mse": torch.nn.functional.mse_loss,  # regression
    "cross_entropy": torch.nn.functional.cross_entropy,  # classification: logits vs integer labels
}
