"""The few-shot learners by name: what a config's ``network`` value builds."""

from torch import nn

from lit_meta.errors import ConfigError, require_positive
from lit_meta.nn.conv import Conv4
from lit_meta.nn.mlp import MLP

NETWORKS = ("mlp", "conv4")


def build_network(
    network: str,
    in_features: int,
    out_features: int,
    hidden_sizes: list[int],
    activation: str,
    batch_norm: bool = False,
    image_size: int = 28,
) -> nn.Module:
    """The learner called ``network`` (one of :data:`NETWORKS`): ``mlp`` (``hidden_sizes`` are layer
    widths) or ``conv4`` (``in_features`` are image channels, ``hidden_sizes`` the filters per block)."""
    if network == "mlp":
        return MLP(in_features, out_features, hidden_sizes, activation, batch_norm)
    if network == "conv4":
        require_positive("image_size", image_size)
        return Conv4(in_features, out_features, hidden_sizes, image_size)
    raise ConfigError(f"unknown network '{network}'; choose one of {', '.join(NETWORKS)}")


__all__ = ["NETWORKS", "build_network"]
