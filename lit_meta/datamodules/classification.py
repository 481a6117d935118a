"""N-way K-shot classification tasks sampled from a table of images held in memory.

learn2learn's ``TaskDataset`` with ``NWays``, ``KShots``, ``LoadData``, ``RemapLabels`` and
``ConsecutiveLabels`` builds one task at a time through Python objects; this sampler draws the same
tasks (N distinct classes, K + Q distinct images of each, labels 0..N-1 in consecutive blocks) for a
whole meta-batch with a handful of tensor operations, on whichever device holds the table.

A table is rectangular (every class has as many images, Omniglot's ``[classes, 20, 28, 28]``) or ragged
(an image folder's classes hold different numbers: the images one class after another, and the count of
each). Both draw the same random numbers: the classes of each task from one ``[tasks, classes]`` uniform
draw, the images of each class from a ``[tasks, ways, examples]`` one whose smallest ``K + Q`` win; a
ragged table draws as many positions as its largest class holds and never lets a position past a class's
own count win. Meta-training may draw more classes per task than held-out tasks have (``ways``).
"""

import torch
from torch import Tensor

from lit_meta.errors import require, require_positive
from lit_meta.tasks import TaskBatch, to_device


class ClassificationTasks:
    """Draws N-way tasks from a table of ``uint8`` images held in memory.

    :param images: ``[classes, examples per class, H, W]`` (one channel) or ``[classes, examples, C, H, W]``;
        with ``counts``, the images of all classes one after another, ``[images, C, H, W]``.
    :param ways: classes per task N (a task may ask for another number, see :meth:`sample`).
    :param split: the split's name, for error messages.
    :param counts: images of each class, when classes have different numbers of them.
    :param class_names: names of the classes, for error messages.
    """

    def __init__(
        self,
        images: Tensor,
        ways: int,
        split: str,
        counts: Tensor | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        self.images = images
        self.counts = None if counts is None else torch.as_tensor(counts, dtype=torch.long).cpu()
        if self.counts is None:
            require(
                images.dim() in (4, 5), f"a class table is [classes, examples, (C,) H, W], got {images.shape}"
            )
        else:
            require(images.dim() == 4, f"ragged classes are a table [images, C, H, W], got {images.shape}")
            require(
                int(self.counts.sum()) == images.shape[0] and bool((self.counts > 0).all()),
                "class counts must be positive and add up to the images",
            )
            self.offsets = torch.cumsum(self.counts, 0) - self.counts
        require(
            class_names is None or len(class_names) == self.num_classes, "one class name per class is needed"
        )
        self.class_names = class_names
        self.split = split
        self.check_ways(ways)
        self.ways = ways

    @classmethod
    def from_ragged(
        cls, images: Tensor, counts: Tensor, ways: int, split: str, class_names: list[str] | None = None
    ) -> "ClassificationTasks":
        """Classes of different sizes: ``images`` ``[images, C, H, W]`` holds class 0's ``counts[0]``
        images, then class 1's, and so on."""
        return cls(images, ways, split, counts=counts, class_names=class_names)

    @property
    def num_classes(self) -> int:
        return self.images.shape[0] if self.counts is None else len(self.counts)

    @property
    def examples_per_class(self) -> int:
        """Images of each class (of the largest class, when their numbers differ)."""
        return self.images.shape[1] if self.counts is None else int(self.counts.max())

    @property
    def image_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` of one image."""
        shape = self.images.shape[2:] if self.counts is None else self.images.shape[1:]
        return tuple(shape) if len(shape) == 3 else (1, *shape)

    def to(self, device: torch.device) -> "ClassificationTasks":
        """Keep the table on ``device``, so tasks are sampled there."""
        self.images = self.images.to(device)
        return self

    def check_ways(self, ways: int, what: str = "ways") -> None:
        require(ways >= 2, f"{what} must be at least 2, got {ways}")
        require(
            ways <= self.num_classes,
            f"{what}={ways} is more than the {self.num_classes} classes of the {self.split} split",
        )

    def check_shots(self, shots: int, queries: int, what: str = "shots") -> None:
        require_positive(what, shots)
        require_positive("queries", queries)
        if self.counts is None:
            smallest, where = self.examples_per_class, f"each class in the {self.split} split"
        else:
            index = int(self.counts.argmin())
            smallest = int(self.counts[index])
            name = self.class_names[index] if self.class_names else f"class {index}"
            where = f"class {name} of the {self.split} split"
        require(
            shots + queries <= smallest,
            f"{what} + queries = {shots + queries} is more than the {smallest} images of {where}",
        )

    def sample(
        self, num_tasks: int, generator: torch.Generator, shots: int, queries: int, ways: int | None = None
    ) -> TaskBatch:
        """``num_tasks`` tasks of ``ways`` (default: the table's) × (``shots`` support + ``queries``
        query) images.

        Random numbers come from ``generator`` (on the CPU) alone; ``info["classes"]`` holds each
        task's classes (rows of the table) in label order.
        """
        if ways is None:
            ways = self.ways
        elif ways != self.ways:
            self.check_ways(ways)
        per_class = shots + queries
        classes = torch.rand(num_tasks, self.num_classes, generator=generator).topk(ways).indices
        picks = torch.rand(num_tasks, ways, self.examples_per_class, generator=generator)
        if self.counts is None:
            first = classes * self.examples_per_class
        else:  # positions past a class's last image sort after every real one, so they are never picked
            beyond = torch.arange(self.examples_per_class) >= self.counts[classes].unsqueeze(-1)
            picks = picks.masked_fill(beyond, 2.0)
            first = self.offsets[classes]
        rows = first[..., None] + picks.argsort(-1)[..., :per_class]  # [tasks, ways, K + Q]
        device = self.images.device
        table = self.images.flatten(0, 1) if self.counts is None else self.images
        labels = torch.arange(ways, device=device)

        def gather(part: Tensor, count: int) -> tuple[Tensor, Tensor]:
            # index_select on the flattened table is far faster than advanced indexing on the 4-d one;
            # support and query images are gathered apart, each already in [task, way, image] order
            x = table.index_select(0, to_device(part.flatten(), device)).float().mul_(1 / 255)
            x = x.view(num_tasks, ways * count, *self.image_shape)
            y = labels.repeat_interleave(count).expand(num_tasks, -1).clone()
            return x, y

        support_x, support_y = gather(rows[..., :shots], shots)
        query_x, query_y = gather(rows[..., shots:], queries)
        return TaskBatch(support_x, support_y, query_x, query_y, info={"classes": classes})
