"""ResNet-12, the residual few-shot backbone of TADAM (Oreshkin et al., 2018) and MetaOptNet (Lee, Maji,
Ravichandran & Soatto, CVPR 2019), used by most few-shot work since."""

import itertools
from collections.abc import Sequence

from torch import Tensor, nn
from torchvision.ops import DropBlock2d

from lit_meta.errors import require

LEAKY_SLOPE = 0.1


def _conv_bn(width_in: int, width_out: int, kernel_size: int = 3) -> list[nn.Module]:
    return [
        nn.Conv2d(width_in, width_out, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(width_out, track_running_stats=False),
    ]


class ResidualBlock(nn.Module):
    """Three [3×3 conv, batch norm] layers with leaky ReLUs between them, plus a [1×1 conv, batch norm]
    shortcut; then a leaky ReLU, 2×2 max-pooling and, optionally, DropBlock (Ghiasi, Lin & Le, 2018)."""

    def __init__(self, width_in: int, width_out: int, drop_block: float = 0.0, block_size: int = 5) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(width_in, width_out),
            nn.LeakyReLU(LEAKY_SLOPE),
            *_conv_bn(width_out, width_out),
            nn.LeakyReLU(LEAKY_SLOPE),
            *_conv_bn(width_out, width_out),
        )
        self.shortcut = nn.Sequential(*_conv_bn(width_in, width_out, kernel_size=1))
        self.out = nn.Sequential(nn.LeakyReLU(LEAKY_SLOPE), nn.MaxPool2d(2))
        self.drop = DropBlock2d(drop_block, block_size) if drop_block > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.out(self.body(x) + self.shortcut(x)))


class ResNet12(nn.Sequential):
    """Four residual blocks (64-160-320-640 channels in MetaOptNet), global average pooling, and an
    optional linear head. Batch normalisation uses batch statistics (no running averages), as in
    :class:`~lit_meta.nn.conv.Conv4`, so MAML's inner loop and the transductive and non-transductive
    evaluations treat both networks alike.

    :param in_channels: image channels (3 for RGB).
    :param out_features: number of classes, or ``None`` for the embedding alone (Prototypical Networks).
    :param channels: widths of the four blocks.
    :param drop_block: DropBlock probability after each block (0: none); blocks are ``block_size`` wide
        (MetaOptNet: 5 on 84-pixel images), clamped to the largest odd size that fits the feature map.
    :param image_size: side of the square input images, to clamp the DropBlock size.
    """

    def __init__(
        self,
        in_channels: int,
        out_features: int | None,
        channels: Sequence[int] = (64, 160, 320, 640),
        drop_block: float = 0.0,
        image_size: int = 84,
        block_size: int = 5,
    ) -> None:
        require(in_channels > 0, f"network input channels must be positive, got {in_channels}")
        require(
            len(channels) > 0 and all(c > 0 for c in channels),
            f"channels must be positive, got {list(channels)}",
        )
        require(0.0 <= drop_block < 1.0, f"drop_block must be in [0, 1), got {drop_block}")
        layers: list[nn.Module] = []
        side = image_size
        for width_in, width_out in itertools.pairwise([in_channels, *channels]):
            side = max(side // 2, 1)
            odd_size = min(block_size, side) - (min(block_size, side) + 1) % 2  # DropBlock2d wants odd sizes
            layers.append(ResidualBlock(width_in, width_out, drop_block, max(odd_size, 1)))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if out_features is not None:
            require(out_features > 0, f"network outputs must be positive, got {out_features}")
            layers.append(nn.Linear(channels[-1], out_features))
        super().__init__(*layers)
