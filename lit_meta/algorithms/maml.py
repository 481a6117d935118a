"""MAML, first-order MAML, Meta-SGD and ANIL: meta-gradients through the inner updates (learn2learn)."""

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import learn2learn as l2l
import torch
from torch import Tensor, nn

from lit_meta.algorithms.base import (
    AdaptationTask,
    LossFunction,
    MetaAlgorithm,
    MetaStepOutput,
    accumulate_gradients_,
    as_adaptation_tasks,
)
from lit_meta.algorithms.vectorized import InnerUpdate, VectorizedInnerLoop, per_task, sgd_update
from lit_meta.errors import require
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
        self._every_task: VectorizedInnerLoop | None = None

    @property
    def learner(self) -> nn.Module:
        return self.wrapper.module

    def meta_gradient(
        self, tasks: TaskBatch | Sequence[AdaptationTask], score: bool = True
    ) -> MetaStepOutput:
        """Supervised tasks or any :class:`AdaptationTask` s (e.g. policy-gradient tasks, MAML for RL);
        with :attr:`vectorize`, a supervised meta-batch is adapted at once (:mod:`.vectorized`)."""
        if self.vectorize and isinstance(tasks, TaskBatch):
            return self._vectorized_meta_gradient(self.learner, tasks.support_x, tasks.query_x, tasks)
        tasks = as_adaptation_tasks(tasks, self.loss_fn)
        params = [param for param in self.parameters() if param.requires_grad]

        def one_task(index: int) -> tuple[tuple[Tensor | None, ...], Tensor, Tensor | None]:
            task, adapted = tasks[index], self.wrapper.clone()
            for step in range(self.inner_steps):
                adapted.adapt(task.support_loss(adapted, step))
            loss, output = task.query_loss(adapted)
            # The sum of the tasks' gradients is the mean's; each task's graph is freed as it ends.
            gradients = torch.autograd.grad(loss / len(tasks), params, allow_unused=True)
            return gradients, loss.detach(), None if output is None else output.detach()

        losses, outputs = [], []
        for gradients, loss, output in self.map_tasks(one_task, len(tasks)):
            accumulate_gradients_(params, gradients)
            losses.append(loss)
            if output is not None:
                outputs.append(output)
        return MetaStepOutput(torch.stack(losses), torch.stack(outputs) if outputs else None)

    def _vectorized_meta_gradient(
        self, model: nn.Module, support_x: Tensor, query_x: Tensor, tasks: TaskBatch
    ) -> MetaStepOutput:
        """The loop's meta-gradient, every task of the batch at once: ``model`` adapted on inputs
        ``support_x`` ``[B, N, ...]`` and scored on ``query_x``."""
        if self._every_task is None:  # built once, so a compiled one is compiled once
            self._every_task = VectorizedInnerLoop(
                model, self.loss_fn, self._inner_update(), self.inner_steps, self.first_order,
                self.compile_vectorized,
            )  # fmt: skip
        losses, outputs = self._every_task(support_x, tasks.support_y, query_x, tasks.query_y)
        losses.mean().backward()
        return MetaStepOutput(losses.detach(), outputs.detach())

    def _inner_update(self) -> InnerUpdate:
        return sgd_update(self.inner_lr)

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

    def _inner_update(self) -> InnerUpdate:
        names = [name for name, _ in self.learner.named_parameters()]
        return sgd_update(dict(zip(names, self.wrapper.lrs, strict=True)))


def split_head(learner: nn.Module) -> tuple[nn.Sequential, nn.Linear]:
    """A network that ends in a linear classification layer as ``(body, head)``, sharing its modules."""
    require(
        isinstance(learner, nn.Sequential) and len(learner) >= 2 and isinstance(learner[-1], nn.Linear),
        f"ANIL needs a network that ends in a linear layer (its head), got a {type(learner).__name__}",
    )
    children = list(learner.named_children())
    return nn.Sequential(OrderedDict(children[:-1])), children[-1][1]


@dataclass
class _HeadTask:
    """One supervised task as the head sees it: the body's features of its support set (computed once,
    on the first inner step) and of its query set."""

    tasks: TaskBatch
    index: int
    loss_fn: LossFunction
    body: nn.Module
    support_features: Tensor | None = None

    def support_loss(self, head: nn.Module, step: int) -> Tensor:
        if self.support_features is None:
            self.support_features = self.body(self.tasks.support_x[self.index])
        return self.loss_fn(head(self.support_features), self.tasks.support_y[self.index])

    def query_loss(self, head: nn.Module) -> tuple[Tensor, Tensor]:
        output = head(self.body(self.tasks.query_x[self.index]))
        return self.loss_fn(output, self.tasks.query_y[self.index]), output


class ANIL(_DifferentiableInnerLoop):
    """Almost No Inner Loop (Raghu, Raghu, Bengio & Vinyals, ICLR 2020, "Rapid Learning or Feature
    Reuse?"): MAML whose inner loop adapts only the network's head (its last, linear layer) on the
    features of the body; the body is learned by the outer loop alone, through the query loss and
    through the head's adaptation. As learn2learn's ANIL example, the head is wrapped in learn2learn's
    ``MAML``; with ``first_order=True`` the inner gradients are treated as constants.

    :param learner: a ``nn.Sequential`` ending in the ``nn.Linear`` head (``conv4``, ``resnet12``, ``mlp``).
    """

    WRAPPER = l2l.algorithms.MAML

    def __init__(
        self,
        learner: nn.Module,
        loss_fn: LossFunction,
        inner_lr: float,
        inner_steps: int,
        first_order: bool = False,
    ) -> None:
        body, head = split_head(learner)
        super().__init__(head, loss_fn, inner_lr, inner_steps, first_order)
        self.body = body

    @property
    def learner(self) -> nn.Module:
        return nn.Sequential(self.body, self.wrapper.module)

    def meta_gradient(self, tasks: TaskBatch, score: bool = True) -> MetaStepOutput:
        if self.vectorize:
            head = self.wrapper.module
            features = per_task(self.body, tasks.support_x), per_task(self.body, tasks.query_x)
            return self._vectorized_meta_gradient(head, *features, tasks)
        head_tasks = [_HeadTask(tasks, i, self.loss_fn, self.body) for i in range(len(tasks))]
        return super().meta_gradient(head_tasks, score)

    def adaptation_trajectory(self, support_x: Tensor, support_y: Tensor, steps: int) -> Iterator[nn.Module]:
        """The head adapted on the body's features of the support set (computed once); each yielded
        model is the body followed by the head adapted so far."""
        with torch.no_grad():
            features = self.body(support_x)
        for head in super().adaptation_trajectory(features, support_y, steps):
            yield nn.Sequential(self.body, head)
