"""Networks (learners). Nothing here knows about meta-learning or Lightning."""

from lit_meta.nn.conv import Conv4
from lit_meta.nn.mlp import ACTIVATIONS, MLP
from lit_meta.nn.networks import NETWORKS, build_network
from lit_meta.nn.policies import CategoricalMLPPolicy, GaussianMLPPolicy, build_policy
from lit_meta.nn.resnet import ResNet12

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "NETWORKS",
    "CategoricalMLPPolicy",
    "Conv4",
    "GaussianMLPPolicy",
    "ResNet12",
    "build_network",
    "build_policy",
]
