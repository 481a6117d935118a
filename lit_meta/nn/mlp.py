"""Fully connected learners."""

import itertools
from collections.abc import Sequence

from torch import nn

from lit_meta.errors import ConfigError, require

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MLP(nn.Sequential):
    """A multilayer perceptron ``in -> hidden... -> out``; a hidden layer is ``Linear [-> BatchNorm] -> act``.

    Inputs are flattened first, so images work as they are. The MAML paper's sine regressor is
    ``MLP(1, 1, [40, 40], "relu")``, the Reptile paper's ``MLP(1, 1, [64, 64], "tanh")``, and the MAML
    paper's non-convolutional Omniglot network ``MLP(784, N, [256, 128, 64, 64], "relu", batch_norm=True)``.

    :param out_features: outputs, or ``None`` to end after the last hidden layer (an embedding).
    :param batch_norm: batch normalisation after each hidden linear layer, always with the statistics
        of the batch it is given (no running averages), as in the MAML paper's code.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int | None,
        hidden_sizes: Sequence[int] = (40, 40),
        activation: str = "relu",
        batch_norm: bool = False,
    ) -> None:
        require(
            in_features > 0 and (out_features is None or out_features > 0),
            "network input and output sizes must be positive",
        )
        require(
            all(size > 0 for size in hidden_sizes),
            f"hidden_sizes must all be positive, got {list(hidden_sizes)}",
        )
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"unknown activation '{activation}'; choose one of {', '.join(sorted(ACTIVATIONS))}"
            )
        widths = [in_features, *hidden_sizes]
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in itertools.pairwise(widths):
            layers.append(nn.Linear(width_in, width_out))
            if batch_norm:
                layers.append(nn.BatchNorm1d(width_out, track_running_stats=False))
            layers.append(ACTIVATIONS[activation]())
        if out_features is not None:
            layers.append(nn.Linear(widths[-1], out_features))
        super().__init__(*layers)
