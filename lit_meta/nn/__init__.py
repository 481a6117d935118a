"""Networks (learners). Nothing here knows about meta-learning or Lightning."""

from lit_meta.nn.conv import Conv4
from lit_meta.nn.mlp import ACTIVATIONS, MLP

__all__ = ["ACTIVATIONS", "MLP", "Conv4"]
