"""The interface every meta-learning algorithm implements.

A meta-algorithm turns a batch of tasks into a meta-gradient left in the ``.grad`` of its parameters
(the optimizer that owns those parameters applies it), and adapts its meta-parameters to a new task at
test time. Nothing here knows about Lightning.

Supervised tasks come as a :class:`TaskBatch` (support and query tensors). Any other kind of task (RL:
episodes collected before and after adaptation) comes as a sequence of :class:`AdaptationTask`, which
says itself what its support and query losses are; the differentiable algorithms (MAML, Meta-SGD)
accept both, so MAML for RL is MAML with policy-gradient tasks, not a second implementation.
"""

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

import torch
from torch import Tensor, nn

from lit_meta.errors import require, require_positive
from lit_meta.tasks import TaskBatch

LossFunction = Callable[[Tensor, Tensor], Tensor]
T = TypeVar("T")


def accumulate_gradients_(params: Sequence[Tensor], gradients: Sequence[Tensor | None]) -> None:
    """Add ``gradients`` to the ``.grad`` of ``params`` as ``backward`` would (``None``: no gradient)."""
    for param, gradient in zip(params, gradients, strict=True):
        if gradient is None:
            continue
        if param.grad is None:
            param.grad = gradient
        else:
            param.grad += gradient


class AdaptationTask(Protocol):
    """One task as a differentiable inner loop sees it: a loss to adapt on, and a loss to score with."""

    def support_loss(self, model: nn.Module, step: int) -> Tensor:
        """The loss of inner update ``step`` (0, 1, ...) for ``model``, the learner adapted so far."""

    def query_loss(self, model: nn.Module) -> tuple[Tensor, Tensor | None]:
        """The post-adaptation loss of ``model`` and, if the task has one, its output (else ``None``)."""


@dataclass
class SupervisedTask:
    """Task ``index`` of a :class:`TaskBatch` as an :class:`AdaptationTask` under ``loss_fn``."""

    tasks: TaskBatch
    index: int
    loss_fn: LossFunction

    def support_loss(self, model: nn.Module, step: int) -> Tensor:
        return self.loss_fn(model(self.tasks.support_x[self.index]), self.tasks.support_y[self.index])

    def query_loss(self, model: nn.Module) -> tuple[Tensor, Tensor]:
        output = model(self.tasks.query_x[self.index])
        return self.loss_fn(output, self.tasks.query_y[self.index]), output


def as_adaptation_tasks(tasks: "TaskBatch | Sequence[AdaptationTask]", loss_fn: LossFunction | None):
    """Supervised task batches become :class:`SupervisedTask` s; other tasks are returned as they are."""
    if isinstance(tasks, TaskBatch):
        require(loss_fn is not None, "supervised tasks need the algorithm to have a loss function")
        return [SupervisedTask(tasks, i, loss_fn) for i in range(len(tasks))]
    return list(tasks)


@dataclass
class MetaStepOutput:
    """What one meta-gradient computation observed on the query sets (detached).

    ``query_loss`` is ``[B]``, one post-adaptation loss per task; ``query_output`` is ``[B, Q, ...]``,
    the adapted model's outputs on the query inputs (for accuracy and other metrics). Both are ``None``
    when the algorithm was asked not to score the query sets and scoring would have cost extra work.
    """

    query_loss: Tensor | None
    query_output: Tensor | None


class MetaAlgorithm(nn.Module, ABC):
    """A learner (the meta-parameters) plus the rule that adapts it to a task and meta-learns it.

    :param learner: the network whose initial weights are meta-learned.
    :param loss_fn: the task loss, ``loss_fn(prediction, target) -> scalar`` (``None`` for an algorithm
        that is only given :class:`AdaptationTask` s, whose losses are their own).
    :param inner_lr: step size of the inner (task-adaptation) updates (none for a closed-form rule).
    :param inner_steps: number of inner updates per task during meta-training (0 for a closed-form rule).

    Subclasses expose the network as ``self.learner``.
    """

    learner: nn.Module
    ADAPTS_BY_STEPS: ClassVar[bool] = True
    """False for an algorithm that adapts in one closed-form computation (Prototypical Networks): it has
    no inner step size or step count, and its adaptation trajectory is the one adapted model."""
    vectorize: bool = False
    """Compute the meta-gradient of a supervised meta-batch with every task at once (``torch.func.vmap``,
    :mod:`lit_meta.algorithms.vectorized`) instead of one task after another: the same result, faster
    where kernel launches dominate (GPUs). Set by the module (``vectorize_tasks``)."""
    compile_vectorized: bool = False
    """Compile the vectorised computation with ``torch.compile`` (the module's ``compile_inner_loop``
    with ``vectorize_tasks``); set before the first meta-gradient."""
    task_threads: int = 1
    """How many tasks of a supervised meta-batch the loop computes at once, each on its own thread (and,
    as the module sets torch's intra-op threads to one, on its own core): a CPU's cores are better used
    by whole tasks than by splitting the small convolutions of one task. Results are summed in task
    order, so they equal the one-thread loop's. Set by the module (``task_threads``)."""

    def __init__(
        self,
        learner: nn.Module,
        loss_fn: LossFunction | None,
        inner_lr: float | None = None,
        inner_steps: int = 0,
    ) -> None:
        super().__init__()
        if self.ADAPTS_BY_STEPS:
            require_positive("inner_lr", inner_lr)
            require_positive("inner_steps", inner_steps)
            require(isinstance(inner_steps, int), f"inner_steps must be an integer, got {inner_steps!r}")
        self.loss_fn = loss_fn
        self.inner_lr = None if inner_lr is None else float(inner_lr)
        self.inner_steps = inner_steps

    def __getstate__(self) -> dict:
        """A copy rebuilds the vectorised computation (``_every_task``, bound to this instance) on use."""
        return super().__getstate__() | {"_every_task": None, "_task_pool": None}

    def map_tasks(self, function: Callable[[int], T], count: int) -> Iterator[T]:
        """``function(i)`` for task ``i`` = 0..count-1, in order; :attr:`task_threads` at a time."""
        if self.task_threads == 1 or count == 1:
            return map(function, range(count))
        pool = self.__dict__.get("_task_pool")
        if pool is None or pool._max_workers != self.task_threads:
            pool = self.__dict__["_task_pool"] = ThreadPoolExecutor(self.task_threads, "lit-meta-task")
        return pool.map(function, range(count))

    def forward(self, x: Tensor) -> Tensor:
        """The meta-learned initialisation's prediction, before any adaptation."""
        return self.learner(x)

    @abstractmethod
    def meta_gradient(self, tasks: TaskBatch, score: bool = True) -> MetaStepOutput:
        """Add the meta-gradient of ``tasks`` to ``.grad`` of this module's parameters.

        With ``score=False`` an algorithm whose meta-gradient does not need the query sets' outputs
        (Reptile) skips computing them; the others return them anyway, as they come for free.
        """

    @abstractmethod
    def adaptation_trajectory(self, support_x: Tensor, support_y: Tensor, steps: int) -> Iterator[nn.Module]:
        """Yield the learner adapted to one task's support set after 0, 1, ..., ``steps`` inner updates.

        The test-time rule is the one the algorithm trains with (Reptile: plain SGD; MAML: its inner
        step; Meta-SGD: its learned per-parameter rates), possibly run for more steps than in training.
        Each yielded module has the learner's structure and may be updated in place by the next step:
        use it before advancing the iterator.
        """

    def adapt(self, support_x: Tensor, support_y: Tensor, steps: int | None = None) -> nn.Module:
        """Return an independent copy of the learner adapted to one task with ``steps`` inner updates.

        This is the Reptile specification's ``reptile_adapt`` generalised: copy the meta-parameters, run
        the inner rule.
        """
        steps = self.inner_steps if steps is None else steps
        *_, adapted = self.adaptation_trajectory(support_x, support_y, steps)
        model = copy.deepcopy(self.learner)
        with torch.no_grad():
            for target, value in zip(model.parameters(), adapted.parameters(), strict=True):
                target.copy_(value)
            for target, value in zip(model.buffers(), adapted.buffers(), strict=True):
                target.copy_(value)
        return model.requires_grad_(False)
