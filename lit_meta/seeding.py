"""Every random seed lit-meta uses comes from here: the run's default seed, seeds derived by name from a
parent seed, and the global generators' states that checkpoints carry for an exact resume.

Seeds are derived with NumPy's ``SeedSequence`` (independent, well-mixed child streams: the generator
seeding practice NumPy documents), so two derived seeds never collide by construction of their names.
"""

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def _entropy(seed: int, names: tuple[str | int, ...]) -> list[int]:
    """``seed`` followed by each name: an integer as itself, a string as its UTF-8 bytes."""
    entropy = [int(seed)]
    for name in names:
        entropy.extend(name.encode() if isinstance(name, str) else [int(name)])
    return entropy


def derive_seeds(seed: int, *names: str | int, count: int, bits: int = 32) -> np.ndarray:
    """``count`` seeds of ``bits`` bits for what ``names`` identify (a stream, a meta-step, a task
    index...) under the parent ``seed``, independent of every other name and of anything drawn before:
    the same run derives the same seeds after a resume."""
    states = np.random.SeedSequence(_entropy(seed, names)).generate_state(count)
    return states if bits == 32 else states % (1 << bits)


def derive_seed(seed: int, *names: str | int, bits: int = 32) -> int:
    """One seed for what ``names`` identify under ``seed`` (see :func:`derive_seeds`)."""
    return int(derive_seeds(seed, *names, count=1, bits=bits)[0])


SEED_BITS = 31
"""Bits of the seeds handed to libraries that take a non-negative 32-bit signed integer (gymnasium's
``reset``, Stable-Baselines3's ``seed``)."""


def meta_step_seed(seed: int, purpose: str, meta_step: int, index: int) -> int:
    """The seed of item ``index`` of ``purpose`` (a task, an SB3 learner, an RL² trial...) at ``meta_step``
    of a run seeded ``seed``, in :data:`SEED_BITS` bits, independent of everything drawn before (the same
    run draws the same after a resume)."""
    return derive_seed(seed, purpose, meta_step, index, bits=SEED_BITS)


def derive_generator(seed: int, *names: str | int) -> np.random.Generator:
    """A NumPy generator seeded with :func:`derive_seed` of ``names``."""
    return np.random.default_rng(derive_seed(seed, *names))


def stream_generator(seed: int, *names: str | int) -> np.random.Generator:
    """A NumPy generator on the seed sequence of ``names`` under ``seed`` itself (a stream of its own,
    e.g. an episode's action noise beside its environment's seed)."""
    return np.random.default_rng(np.random.SeedSequence(_entropy(seed, names)))


def draw_seeds(seed: int, *names: str | int, count: int) -> list[int]:
    """``count`` 31-bit seeds drawn from :func:`derive_generator` of ``names`` (a fixed list of tasks)."""
    return [int(value) for value in derive_generator(seed, *names).integers(2**31, size=count)]


def spawn(seed: int, *names: str | int, count: int) -> list[np.random.SeedSequence]:
    """``count`` independent child seed sequences of what ``names`` identify under ``seed``."""
    return np.random.SeedSequence(_entropy(seed, names)).spawn(count)


@contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Within the block, torch's CPU generator starts from ``seed``; outside it, the global generator is
    untouched (what runs inside depends on ``seed`` alone, not on anything drawn before)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def default_seed(seed: int | None) -> int:
    """``seed``, or (``None``) one derived from the global seed ``seed_everything`` set."""
    return torch.initial_seed() % 2**31 if seed is None else seed


def capture_rng_states() -> dict:
    """The states of Python's, NumPy's, torch's and (if initialised) CUDA's global generators, in a form
    ``torch.load(weights_only=True)`` reads back (tensors, numbers, strings and containers only)."""
    numpy_state = np.random.get_state(legacy=False)
    states = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    """Inverse of :func:`capture_rng_states`."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = states["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():  # as many devices as both runs have
        for device, state in zip(range(torch.cuda.device_count()), states["cuda"], strict=False):
            torch.cuda.set_rng_state(state, device)


__all__ = [
    "capture_rng_states",
    "default_seed",
    "derive_generator",
    "derive_seed",
    "derive_seeds",
    "draw_seeds",
    "meta_step_seed",
    "restore_rng_states",
    "seeded_torch",
    "spawn",
    "stream_generator",
]
