"""The few-shot learners by name: what a config's ``network`` value builds."""

from torch import nn

from lit_meta.errors import ConfigError, require, require_positive
from lit_meta.nn.conv import Conv4
from lit_meta.nn.mlp import MLP
from lit_meta.nn.resnet import ResNet12

NETWORKS = ("mlp", "conv4", "resnet12")


def build_network(
    network: str,
    in_features: int,
    out_features: int | None,
    hidden_sizes: list[int],
    activation: str,
    batch_norm: bool = False,
    image_size: int = 28,
    drop_block: float = 0.0,
) -> nn.Module:
    """The learner called ``network`` (one of :data:`NETWORKS`): ``mlp`` (``hidden_sizes`` are layer
    widths), ``conv4`` or ``resnet12`` (``in_features`` are image channels, ``hidden_sizes`` the filters
    per block); ``out_features=None`` builds the embedding without its classification layer."""
    if network not in NETWORKS:
        raise ConfigError(f"unknown network '{network}'; choose one of {', '.join(NETWORKS)}")
    require(
        drop_block == 0.0 or network == "resnet12",
        f"drop_block applies to resnet12 only, but the network is '{network}'",
    )
    if network == "mlp":
        return MLP(in_features, out_features, hidden_sizes, activation, batch_norm)
    require_positive("image_size", image_size)
    if network == "conv4":
        return Conv4(in_features, out_features, hidden_sizes, image_size)
    return ResNet12(in_features, out_features, hidden_sizes, drop_block, image_size)


__all__ = ["NETWORKS", "build_network"]
