"""Meta-learning algorithms behind one interface: a task batch in, a meta-gradient in ``.grad`` out."""

from torch import nn

from lit_meta.algorithms.base import LossFunction, MetaAlgorithm, MetaStepOutput
from lit_meta.algorithms.maml import ANIL, MAML, MetaSGD
from lit_meta.algorithms.protonet import PrototypeClassifier, PrototypicalNetworks
from lit_meta.algorithms.reptile import Reptile, add_reptile_gradient_, reptile_step_
from lit_meta.errors import ConfigError

ALGORITHMS = ("maml", "fomaml", "metasgd", "reptile", "anil", "foanil", "protonet")
HEADLESS = ("protonet",)
TASK_THREADED = ("maml", "fomaml", "metasgd", "anil", "foanil")
"""The algorithms whose loop can adapt several tasks at once on threads (``task_threads``)."""
"""Algorithms whose learner is an embedding network without a classification layer."""


def build_algorithm(
    name: str,
    learner: nn.Module,
    loss_fn: LossFunction,
    inner_lr: float,
    inner_steps: int,
    inner_batch_size: int | None = None,
    seed: int = 0,
    compile_inner_loop: bool = False,
    inner_optimizer: str | None = None,
    distance: str | None = None,
) -> MetaAlgorithm:
    """The algorithm called ``name`` (one of :data:`ALGORITHMS`) around ``learner``: ``fomaml`` and
    ``foanil`` are the first-order variants of MAML and ANIL; ``protonet`` ignores ``inner_lr`` and
    ``inner_steps`` (its adaptation has no steps)."""
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm '{name}'; choose one of {', '.join(ALGORITHMS)}")
    reptile_only = {
        "inner_batch_size": inner_batch_size,
        "compile_inner_loop": compile_inner_loop,
        "inner_optimizer": inner_optimizer,
    }
    for option, value in reptile_only.items():
        if name != "reptile" and value not in (None, False):
            raise ConfigError(f"{option} applies to reptile only, but the algorithm is '{name}'")
    if name == "protonet":
        return PrototypicalNetworks(learner, distance or "euclidean")
    if distance is not None:
        raise ConfigError(f"distance applies to protonet only, but the algorithm is '{name}'")
    if name in ("anil", "foanil"):
        return ANIL(learner, loss_fn, inner_lr, inner_steps, first_order=name == "foanil")
    if name == "reptile":
        return Reptile(
            learner, loss_fn, inner_lr, inner_steps, inner_batch_size, seed, compile_inner_loop,
            inner_optimizer or "sgd",
        )  # fmt: skip
    if name == "metasgd":
        return MetaSGD(learner, loss_fn, inner_lr, inner_steps)
    return MAML(learner, loss_fn, inner_lr, inner_steps, first_order=name == "fomaml")


__all__ = [
    "ALGORITHMS",
    "ANIL",
    "HEADLESS",
    "MAML",
    "MetaAlgorithm",
    "MetaSGD",
    "MetaStepOutput",
    "PrototypeClassifier",
    "PrototypicalNetworks",
    "Reptile",
    "add_reptile_gradient_",
    "build_algorithm",
    "reptile_step_",
]
