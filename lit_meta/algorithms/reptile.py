"""Reptile (Nichol, Achiam & Schulman, 2018, "On First-Order Meta-Learning Algorithms").

The Reptile rule lives here once, in two equivalent forms that every part of lit-meta reuses:

* the **gradient form** ``θ − mean_i θ̃_i`` (:func:`add_reptile_gradient_`), which a torch optimizer
  applies: with plain SGD of learning rate ε it gives exactly θ ← θ + ε·mean_i(θ̃_i − θ), with Adam the
  variant of the paper's code;
* the **direct form** (:func:`reptile_step_`), the same interpolation applied in place.
"""

import copy
import math
from collections.abc import Iterator, Sequence
from functools import partial

import torch
from torch import Tensor, nn
from torch.func import vmap

from lit_meta.algorithms.base import LossFunction, MetaAlgorithm, MetaStepOutput
from lit_meta.algorithms.vectorized import BatchNormByDefinition, adam_update, sgd_update
from lit_meta.errors import require, require_positive
from lit_meta.tasks import TASK_SEED, TaskBatch, to_device


def add_reptile_gradient_(params: Sequence[Tensor], adapted: Sequence[Tensor], weight: float = 1.0) -> None:
    """Accumulate ``weight · (θ − θ̃)`` into ``θ.grad`` for each meta-parameter θ and its adapted θ̃.

    Called once per task with ``weight = 1/n``, it leaves ``θ − mean_i θ̃_i`` in ``.grad``.
    """
    params, adapted = list(params), list(adapted)
    with torch.no_grad():
        directions = torch._foreach_sub(params, adapted)
        torch._foreach_mul_(directions, weight)
        if any(theta.grad is None for theta in params):
            for theta, direction in zip(params, directions, strict=True):
                theta.grad = direction if theta.grad is None else theta.grad.add_(direction)
        else:
            torch._foreach_add_([theta.grad for theta in params], directions)


def reptile_step_(params: Sequence[Tensor], adapted: Sequence[Sequence[Tensor]], step_size: float) -> None:
    """θ ← θ + ε · mean_i(θ̃_i − θ) in place, for ``adapted[i]`` the parameters adapted to task i."""
    require(len(adapted) > 0, "a Reptile step needs the adapted parameters of at least one task")
    with torch.no_grad():
        directions = [torch.zeros_like(theta) for theta in params]
        for task_params in adapted:
            for direction, theta, theta_tilde in zip(directions, params, task_params, strict=True):
                direction.add_(theta - theta_tilde, alpha=1.0 / len(adapted))
        for theta, direction in zip(params, directions, strict=True):
            theta.sub_(direction, alpha=step_size)


def minibatch_indices(
    num_examples: int, batch_size: int | None, steps: int, generator: torch.Generator | None
) -> list[Tensor | None]:
    """Indices of ``steps`` inner minibatches of one task, or ``None`` per step for the full set.

    As in the Reptile paper's code, minibatches are consecutive chunks of a stream of shuffles of the
    examples: every example is used once before any is used twice.
    """
    if batch_size is None or batch_size >= num_examples:
        return [None] * steps
    needed = steps * batch_size
    shuffles = [
        torch.randperm(num_examples, generator=generator) for _ in range(math.ceil(needed / num_examples))
    ]
    return list(torch.cat(shuffles)[:needed].view(steps, batch_size).unbind(0))


INNER_OPTIMIZERS = ("sgd", "adam")
ADAM_BETAS = (0.0, 0.999)
"""The Reptile paper's inner Adam (Appendix A): no momentum, so steps are scaled gradients."""


class Reptile(MetaAlgorithm):
    """Reptile: for each task, ``inner_steps`` plain SGD steps of size ``inner_lr`` on minibatches of
    its support set give θ̃_i; the meta-gradient is θ − mean_i θ̃_i (the Reptile specification's
    ``reptile_train``).

    :param inner_batch_size: examples per inner minibatch; ``None`` uses the whole support set.
    :param seed: seeds the generator that shuffles inner minibatches (saved with the module's state) for
        tasks that carry no seed of their own; a task with ``info["task_seed"]`` (every task of a
        training stream) is shuffled from that seed, so its update is the same whichever process and
        whichever position in the meta-batch it gets.
    :param inner_optimizer: ``sgd`` (plain steps, the paper's sine setting and the Reptile specification)
        or ``adam`` (Adam with β1 = 0, the paper's Omniglot and Mini-ImageNet setting, Appendix A);
        Adam's moments start from zero for every task and every test-time adaptation.
    :param compile: run meta-training's inner loop as one ``torch.compile``-d function (``torch.func``
        gradients, all k steps fused). On small learners, where the loop is bound by per-operation
        overhead, this is several times faster; the first meta-iteration pays the compilation.
    """

    def __init__(
        self,
        learner: nn.Module,
        loss_fn: LossFunction,
        inner_lr: float,
        inner_steps: int,
        inner_batch_size: int | None = None,
        seed: int = 0,
        compile: bool = False,
        inner_optimizer: str = "sgd",
    ) -> None:
        super().__init__(learner, loss_fn, inner_lr, inner_steps)
        if inner_batch_size is not None:
            require_positive("inner_batch_size", inner_batch_size)
        require(
            inner_optimizer in INNER_OPTIMIZERS,
            f"unknown inner_optimizer '{inner_optimizer}'; choose one of {', '.join(INNER_OPTIMIZERS)}",
        )
        require(
            not (compile and inner_optimizer != "sgd"),
            "compile_inner_loop supports the sgd inner optimizer only",
        )
        self.inner_optimizer = inner_optimizer
        self.learner = learner
        self.inner_batch_size = inner_batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self._scratch: list[nn.Module] = []  # a reusable copy of the learner, kept out of the state_dict
        self._every_task = None
        self._fused_sgd = (
            torch.compile(self._functional_inner_loop, fullgraph=True, dynamic=False) if compile else None
        )

    def meta_gradient(self, tasks: TaskBatch, score: bool = True) -> MetaStepOutput:
        """The Reptile direction in ``.grad``. The query sets play no part in it, so scoring them (a
        forward pass per task, a third of the work on Omniglot) happens only when ``score`` is true."""
        if self.vectorize:
            return self._vectorized_meta_gradient(tasks, score)
        params = list(self.learner.parameters())
        task_model = self._scratch_copy()
        task_params = list(task_model.parameters())
        losses, outputs, shufflers = [], [], self._shufflers(tasks)
        for i in range(len(tasks)):
            with torch.no_grad():
                torch._foreach_copy_(task_params, params)
            self._train_on_task(task_model, tasks.support_x[i], tasks.support_y[i], shufflers[i])
            add_reptile_gradient_(params, task_params, weight=1.0 / len(tasks))
            if score:
                with torch.no_grad():
                    output = task_model(tasks.query_x[i])
                    losses.append(self.loss_fn(output, tasks.query_y[i]))
                    outputs.append(output)
        if not score:
            return MetaStepOutput(None, None)
        return MetaStepOutput(torch.stack(losses), torch.stack(outputs))

    def adaptation_trajectory(
        self,
        support_x: Tensor,
        support_y: Tensor,
        steps: int,
        generator: torch.Generator | None = None,
    ) -> Iterator[nn.Module]:
        """As :meth:`MetaAlgorithm.adaptation_trajectory`; minibatches are shuffled with ``generator``
        (a fixed seed by default, so evaluation never draws from the training generator)."""
        generator = generator or torch.Generator().manual_seed(0)
        model = copy.deepcopy(self.learner)
        yield model
        step = self._inner_step_function(model)
        for indices in minibatch_indices(support_x.shape[0], self.inner_batch_size, steps, generator):
            step(model, support_x, support_y, indices)
            yield model

    def _shufflers(self, tasks: TaskBatch) -> list[torch.Generator]:
        """The generator of each task's minibatch shuffles: its own seed's, else the module's (the seeds
        are read in one transfer, wherever they are)."""
        seeds = tasks.info.get(TASK_SEED)
        if seeds is None or self.inner_batch_size is None:
            return [self.generator] * len(tasks)
        return [torch.Generator().manual_seed(seed) for seed in seeds.tolist()]

    def _train_on_task(
        self, model: nn.Module, support_x: Tensor, support_y: Tensor, generator: torch.Generator
    ) -> None:
        """``inner_steps`` SGD steps of ``model`` on one task's support set, in place."""
        batches = minibatch_indices(support_x.shape[0], self.inner_batch_size, self.inner_steps, generator)
        if self._fused_sgd is None:
            step = self._inner_step_function(model)
            for indices in batches:
                step(model, support_x, support_y, indices)
            return
        stacked = None if batches[0] is None else torch.stack(batches).to(support_x.device)
        params = {name: param.detach() for name, param in model.named_parameters()}
        adapted = self._fused_sgd(model, params, support_x, support_y, stacked)
        with torch.no_grad():
            torch._foreach_copy_(list(params.values()), [adapted[name] for name in params])

    def _functional_inner_loop(
        self, model: nn.Module, params: dict[str, Tensor], x: Tensor, y: Tensor, indices: Tensor | None
    ) -> dict[str, Tensor]:
        """The inner steps of :meth:`_inner_step_function` on one task, written functionally (for
        ``torch.compile`` and for ``vmap`` over the tasks of a meta-batch)."""

        def loss(p: dict[str, Tensor], inputs: Tensor, targets: Tensor) -> Tensor:
            return self.loss_fn(torch.func.functional_call(model, p, (inputs,)), targets)

        gradient = torch.func.grad(loss)
        update = sgd_update(self.inner_lr)
        if self.inner_optimizer == "adam":
            adam, moments = (
                adam_update(self.inner_lr, ADAM_BETAS[1]),
                {n: torch.zeros_like(p) for n, p in params.items()},
            )
        for step in range(self.inner_steps):
            inputs, targets = (x, y) if indices is None else (x[indices[step]], y[indices[step]])
            gradients = gradient(params, inputs, targets)
            if self.inner_optimizer == "adam":
                params, moments = adam(params, gradients, moments, step)
            else:
                params = update(params, gradients, step)
        return params

    def _vectorized_meta_gradient(self, tasks: TaskBatch, score: bool) -> MetaStepOutput:
        """The loop's Reptile direction with every task's inner loop run at once: the same minibatches
        (each task's shuffles drawn as the loop draws them), the same steps."""
        examples = tasks.support_x.shape[1]
        batches = [
            minibatch_indices(examples, self.inner_batch_size, self.inner_steps, shuffler)
            for shuffler in self._shufflers(tasks)
        ]
        indices = None if batches[0][0] is None else torch.stack([torch.stack(b) for b in batches])
        params = {name: param.detach() for name, param in self.learner.named_parameters()}
        if self._every_task is None:  # built once, so a compiled one is compiled once
            every_task = vmap(
                partial(self._functional_inner_loop, self.learner),
                in_dims=(None, 0, 0, None if indices is None else 0),
                randomness="different",
            )
            self._every_task = (
                torch.compile(every_task, dynamic=False) if self.compile_vectorized else every_task
            )
        if indices is not None:
            indices = to_device(indices, tasks.support_x.device)
        with BatchNormByDefinition():  # as native batch norm's vmap rules fail under bf16 autocast
            adapted = self._every_task(params, tasks.support_x, tasks.support_y, indices)
        mean_adapted = [adapted[name].mean(0) for name in params]
        add_reptile_gradient_(list(self.learner.parameters()), mean_adapted)
        if not score:
            return MetaStepOutput(None, None)
        with torch.no_grad():
            outputs = vmap(
                lambda p, x: torch.func.functional_call(self.learner, p, (x,)), randomness="different"
            )(adapted, tasks.query_x)
            losses = vmap(self.loss_fn)(outputs, tasks.query_y)
        return MetaStepOutput(losses, outputs)

    def _inner_step_function(self, model: nn.Module):
        """The update ``step(model, x, y, indices)`` of one task's inner loop, with fresh optimizer state."""
        if self.inner_optimizer == "sgd":
            return self._sgd_step
        adam = torch.optim.Adam(model.parameters(), lr=self.inner_lr, betas=ADAM_BETAS)

        def adam_step(model: nn.Module, x: Tensor, y: Tensor, indices: Tensor | None) -> None:
            params = list(model.parameters())
            for param, gradient in zip(params, self._gradients(model, x, y, indices), strict=True):
                param.grad = gradient
            adam.step()

        return adam_step

    def _sgd_step(self, model: nn.Module, x: Tensor, y: Tensor, indices: Tensor | None) -> None:
        gradients = self._gradients(model, x, y, indices)
        with torch.no_grad():
            torch._foreach_add_(list(model.parameters()), gradients, alpha=-self.inner_lr)

    def _gradients(
        self, model: nn.Module, x: Tensor, y: Tensor, indices: Tensor | None
    ) -> tuple[Tensor, ...]:
        """Gradients of the loss on the minibatch ``indices`` (all of ``x`` for ``None``)."""
        if indices is not None:
            indices = indices.to(x.device)
            x, y = x[indices], y[indices]
        with torch.enable_grad():
            return torch.autograd.grad(self.loss_fn(model(x), y), list(model.parameters()))

    def _scratch_copy(self) -> nn.Module:
        """A copy of the learner for the inner loop, made once and moved along with the learner."""
        reference = next(self.learner.parameters())
        current = next(self._scratch[0].parameters()) if self._scratch else None
        if current is None or (current.device, current.dtype) != (reference.device, reference.dtype):
            self._scratch[:] = [copy.deepcopy(self.learner).requires_grad_(True)]
        return self._scratch[0]

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
