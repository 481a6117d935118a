"""Memory measurements the benchmarks share."""

import resource
import weakref

import torch


def peak_saved_tensors_mb(run) -> float:
    """Peak size of the tensors autograd keeps alive for backward while ``run`` executes: the memory a
    meta-gradient needs beyond the model itself, independent of the allocator and the device."""
    live = {"now": 0, "peak": 0}

    class Saved:
        def __init__(self, tensor: torch.Tensor) -> None:
            self.tensor = tensor

    def release(size: int) -> None:
        live["now"] -= size

    def pack(tensor: torch.Tensor) -> Saved:
        size = tensor.numel() * tensor.element_size()
        live["now"] += size
        live["peak"] = max(live["peak"], live["now"])
        box = Saved(tensor)
        weakref.finalize(box, release, size)
        return box

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda box: box.tensor):
        run()
    return live["peak"] / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
