"""MAML, first-order MAML and Meta-SGD: meta-gradients through the inner updates (learn2learn)."""

from collections.abc import Iterator, Sequence

import learn2learn as l2l
import torch
from torch import Tensor, nn

from lit_meta.algorithms.base import (
    AdaptationTask,
    LossFunction,
    MetaAlgorithm,
    MetaStepOutput,
    as_adaptation_tasks,
)
from lit_meta.tasks import TaskBatch


class _DifferentiableInnerLoop(MetaAlgorithm):
    """Shared loop of the algorithms whose meta-gradient flows through learn2learn's ``clone``/``adapt``."""

    WRAPPER: type[l2l.algorithms.MAML] | type[l2l.algorithms.MetaSGD]

    def __init__(
        self,
        learner: nn.Module,
        loss_fn: LossFunction | None,
        inner_lr: float,
        inner_steps: int,
        first_order: bool = False,
    ) -> None:
        super().__init__(learner, loss_fn, inner_lr, inner_steps)
        self.first_order = first_order
        self.wrapper = self.WRAPPER(learner, lr=self.inner_lr, first_order=first_order)

    @property
    def learner(self) -> nn.Module:
        return self.wrapper.module

    def meta_gradient(
        self, tasks: TaskBatch | Sequence[AdaptationTask], score: bool = True
    ) -> MetaStepOutput:
        """Supervised tasks or any :class:`AdaptationTask` s (e.g. policy-gradient tasks, MAML for RL)."""
        tasks = as_adaptation_tasks(tasks, self.loss_fn)
        losses, outputs = [], []
        for task in tasks:
            adapted = self.wrapper.clone()
            for step in range(self.inner_steps):
                adapted.adapt(task.support_loss(adapted, step))
            loss, output = task.query_loss(adapted)
            # One backward per task frees that task's graph at once; the sum is the mean's gradient.
            (loss / len(tasks)).backward()
            losses.append(loss.detach())
            if output is not None:
                outputs.append(output.detach())
        return MetaStepOutput(torch.stack(losses), torch.stack(outputs) if outputs else None)

    def adaptation_trajectory(self, support_x: Tensor, support_y: Tensor, steps: int) -> Iterator[nn.Module]:
        adapted = self.wrapper.clone()
        yield adapted.module
        for _ in range(steps):
            # No outer gradient is taken at test time, so the inner gradients need no graph of their own.
            with torch.enable_grad():
                adapted.adapt(self.loss_fn(adapted(support_x), support_y), first_order=True)
            yield adapted.module


class MAML(_DifferentiableInnerLoop):
    """Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, ICML 2017).

    The meta-gradient is ∇θ mean_i L_query_i(θ − α∇θ L_support_i(θ)) through ``inner_steps`` plain
    gradient steps of size α = ``inner_lr``, second-order terms included; with ``first_order=True``
    the inner gradients are treated as constants (first-order MAML, same paper, section 5.2).
    """

    WRAPPER = l2l.algorithms.MAML


class MetaSGD(_DifferentiableInnerLoop):
    """Meta-SGD (Li, Zhou, Chen & Li, 2017, "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning").

    As MAML, but every parameter has its own inner learning rate, itself meta-learned; the rates start
    at ``inner_lr`` and are parameters of this module (so the meta-optimizer updates them).
    """

    WRAPPER = l2l.algorithms.MetaSGD
