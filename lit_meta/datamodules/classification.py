"""N-way K-shot classification tasks sampled from a table of images held in memory.

learn2learn's ``TaskDataset`` with ``NWays``, ``KShots``, ``LoadData``, ``RemapLabels`` and
``ConsecutiveLabels`` builds one task at a time through Python objects; this sampler draws the same
tasks (N distinct classes, K + Q distinct images of each, labels 0..N-1 in consecutive blocks) for a
whole meta-batch with a handful of tensor operations, on whichever device holds the table.
"""

import torch
from torch import Tensor

from lit_meta.errors import require, require_positive
from lit_meta.tasks import TaskBatch


class ClassificationTasks:
    """Draws N-way tasks from ``images``, a ``uint8 [classes, examples per class, H, W]`` table.

    :param images: the classes of one split (already including any rotated copies).
    :param ways: classes per task N.
    :param split: the split's name, for error messages.
    """

    def __init__(self, images: Tensor, ways: int, split: str) -> None:
        require(ways >= 2, f"ways must be at least 2, got {ways}")
        require(
            ways <= images.shape[0],
            f"ways={ways} is more than the {images.shape[0]} classes of the {split} split",
        )
        self.images = images
        self.ways = ways
        self.split = split

    @property
    def examples_per_class(self) -> int:
        return self.images.shape[1]

    def check_shots(self, shots: int, queries: int, what: str = "shots") -> None:
        require_positive(what, shots)
        require_positive("queries", queries)
        require(
            shots + queries <= self.examples_per_class,
            f"{what} + queries = {shots + queries} is more than the {self.examples_per_class} images of "
            f"each class in the {self.split} split",
        )

    def sample(self, num_tasks: int, generator: torch.Generator, shots: int, queries: int) -> TaskBatch:
        """``num_tasks`` tasks of ``ways`` × (``shots`` support + ``queries`` query) images.

        Random numbers come from ``generator`` (on the CPU) alone; ``info["classes"]`` holds each
        task's classes (rows of the table) in label order.
        """
        per_class = shots + queries
        classes = torch.rand(num_tasks, self.images.shape[0], generator=generator).topk(self.ways).indices
        picks = torch.rand(num_tasks, self.ways, self.examples_per_class, generator=generator)
        picks = picks.argsort(-1)[..., :per_class]
        device = self.images.device
        rows = (classes[..., None] * self.examples_per_class + picks).flatten().to(device)
        # index_select on the flattened table is far faster than advanced indexing on the 4-d one
        drawn = self.images.flatten(0, 1).index_select(0, rows).float().mul_(1 / 255)
        drawn = drawn.view(num_tasks, self.ways, per_class, 1, *self.images.shape[2:])  # one channel
        labels = torch.arange(self.ways, device=device)

        def flatten(part: Tensor, count: int) -> tuple[Tensor, Tensor]:
            x = part.reshape(num_tasks, self.ways * count, *part.shape[3:])
            y = labels.repeat_interleave(count).expand(num_tasks, -1).clone()
            return x, y

        support_x, support_y = flatten(drawn[:, :, :shots], shots)
        query_x, query_y = flatten(drawn[:, :, shots:], queries)
        return TaskBatch(support_x, support_y, query_x, query_y, info={"classes": classes})
