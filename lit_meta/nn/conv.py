"""Convolutional learners."""

import itertools
from collections.abc import Sequence

from torch import nn

from lit_meta.errors import require


class Conv4(nn.Sequential):
    """The few-shot image classifier of the MAML paper (Finn, Abbeel & Levine, 2017, sec. 5.2, after
    Vinyals et al., 2016): blocks of [3×3 convolution, batch norm, ReLU, 2×2 max-pool], then a linear
    layer on the flattened features. ``Conv4(1, 5, [64] * 4)`` is the Omniglot network (28×28 inputs
    shrink to 1×1×64 features).

    Batch normalisation always uses the statistics of the batch it is given (no running averages),
    as the MAML and Reptile papers' code does; whether query predictions see the query batch
    (transduction) is decided by how the network is called, see ``lit_meta.evaluation.adaptation.predict``.

    :param in_channels: image channels (1 for Omniglot).
    :param out_features: number of classes N, or ``None`` for the embedding alone (the flattened
        features; Prototypical Networks).
    :param channels: filters of each convolutional block (four blocks of 64 in the paper).
    :param image_size: side of the square input images, to size the final linear layer.
    """

    def __init__(
        self,
        in_channels: int,
        out_features: int | None,
        channels: Sequence[int] = (64, 64, 64, 64),
        image_size: int = 28,
    ) -> None:
        require(
            in_channels > 0 and (out_features is None or out_features > 0),
            "network input channels and outputs must be positive",
        )
        require(
            len(channels) > 0 and all(c > 0 for c in channels),
            f"channels must be positive, got {list(channels)}",
        )
        blocks: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise([in_channels, *channels]):
            blocks += [
                nn.Conv2d(width_in, width_out, kernel_size=3, padding=1),
                nn.BatchNorm2d(width_out, track_running_stats=False),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        side = image_size
        for _ in channels:
            side //= 2
        require(side >= 1, f"{len(channels)} pooling blocks shrink {image_size}-pixel images to nothing")
        head = [] if out_features is None else [nn.Linear(channels[-1] * side * side, out_features)]
        super().__init__(*blocks, nn.Flatten(), *head)
