"""A whole meta-batch at once: the tasks' inner loops as one ``torch.func.vmap`` of a functional loop.

The loop form (one task after another, learn2learn's ``clone``/``adapt``) and this form compute the same
meta-gradient; on a GPU the vectorised form runs every task's convolution in one kernel launch instead of
one per task. Batch normalisation with batch statistics normalises each task's images over that task
alone, exactly as in the loop (``vmap`` keeps the task dimension out of the statistics). Random layers
(DropBlock) draw independent masks per task, but not the loop's masks.

PyTorch's batching rule for the second derivative of its fused batch norm is wrong (torch 2.14:
``vmap`` of a second-order MAML step through ``F.batch_norm`` gives gradients off by 1e-3, while
the same step unbatched is exact), and its first derivative under ``vmap`` fails in bf16 autocast, so
inside the vectorised inner loops batch norm with batch statistics is computed from its definition
(:class:`BatchNormByDefinition`); ``tests/algorithms/test_vectorized.py`` holds the loop and this path
to 1e-5.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from torch.overrides import TorchFunctionMode

Parameters = dict[str, Tensor]
InnerUpdate = Callable[[Parameters, Parameters, int], Parameters]
"""``update(params, gradients, step)``: the parameters after one inner step."""


class BatchNormByDefinition(TorchFunctionMode):
    """``F.batch_norm`` over batch statistics (no running statistics) as (x − mean) / √(var + ε)·γ + β,
    whose derivatives of every order ``vmap`` batches correctly; other calls pass through."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.batch_norm:
            return func(*args, **kwargs)
        names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
        given = dict(zip(names, args, strict=False)) | kwargs
        if given.get("running_mean") is not None or given.get("running_var") is not None:
            return func(*args, **kwargs)
        x, weight, bias, eps = given["input"], given.get("weight"), given.get("bias"), given.get("eps", 1e-5)
        x32 = x.float()  # statistics in float32, as the fused kernels compute them under autocast
        dims = [0, *range(2, x.dim())]
        mean = x32.mean(dims, keepdim=True)
        variance = x32.var(dims, unbiased=False, keepdim=True)
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (x32 - mean) / (variance + eps).sqrt()
        if weight is not None:
            y = y * weight.view(shape)
        if bias is not None:
            y = y + bias.view(shape)
        y = y.to(x.dtype)
        return y


class VectorizedInnerLoop:
    """Query losses ``[B]`` and outputs ``[B, Q, ...]`` of ``model`` adapted to each of B tasks by
    ``steps`` inner updates on its support set, all tasks in one call, differentiable with respect to
    ``model``'s parameters (and anything ``update`` closes over) through every inner step; with
    ``first_order`` the inner gradients are constants, as learn2learn's ``first_order=True``. With
    ``compile`` the batched function is compiled with ``torch.compile`` (once per input shape)."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        update: InnerUpdate,
        steps: int,
        first_order: bool,
        compile: bool = False,
    ) -> None:
        self.model, self.loss_fn, self.update = model, loss_fn, update
        self.steps, self.first_order = steps, first_order
        every_task = vmap(self._one_task, in_dims=(None, 0, 0, 0, 0), randomness="different")
        self._every_task = torch.compile(every_task, dynamic=False) if compile else every_task

    def __call__(self, support_x: Tensor, support_y: Tensor, query_x: Tensor, query_y: Tensor):
        params = dict(self.model.named_parameters())
        with BatchNormByDefinition():
            return self._every_task(params, support_x, support_y, query_x, query_y)

    def _loss(self, params: Parameters, x: Tensor, y: Tensor) -> Tensor:
        buffers = dict(self.model.named_buffers())
        return self.loss_fn(functional_call(self.model, (params, buffers), (x,)), y)

    def _one_task(self, params: Parameters, sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor):
        for step in range(self.steps):
            gradients = grad(self._loss)(params, sx, sy)
            if self.first_order:
                gradients = {name: g.detach() for name, g in gradients.items()}
            params = self.update(params, gradients, step)
        output = functional_call(self.model, (params, dict(self.model.named_buffers())), (qx,))
        return self.loss_fn(output, qy), output


def sgd_update(step_sizes: float | Parameters) -> InnerUpdate:
    """θ − α·g, with one step size or one per parameter (Meta-SGD's learned rates, by name)."""

    def update(params: Parameters, gradients: Parameters, step: int) -> Parameters:
        if isinstance(step_sizes, dict):
            return {name: params[name] - step_sizes[name] * gradients[name] for name in params}
        return {name: params[name] - step_sizes * gradients[name] for name in params}

    return update


def per_task(model: nn.Module, x: Tensor) -> Tensor:
    """``model`` applied to each task's examples ``x[i]`` separately (its own batch statistics)."""
    return vmap(model, randomness="different")(x)


def adam_update(lr: float, beta2: float, eps: float = 1e-8) -> Callable:
    """``update(params, gradients, second_moments, step)`` of ``torch.optim.Adam`` with β1 = 0 (no first
    moment, so a step is the gradient scaled by its running second moment), written functionally; the
    second moments start from zero. Returns the new parameters and second moments."""

    def update(params: Parameters, gradients: Parameters, moments: Parameters, step: int):
        correction = (1 - beta2 ** (step + 1)) ** 0.5
        moments = {n: beta2 * moments[n] + (1 - beta2) * gradients[n].square() for n in params}
        params = {n: params[n] - lr * gradients[n] / (moments[n].sqrt() / correction + eps) for n in params}
        return params, moments

    return update
