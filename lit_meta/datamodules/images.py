"""Images on disk into memory, once: decoding to a fixed size and channel count, and the decoded-table
cache every image dataset shares (decoding is slow; tasks are then sampled from the cached ``uint8``
table)."""

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lit_meta.errors import ConfigError, first_line, require
from lit_meta.files import atomic_write, remove_partial_files

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CACHE_FORMAT = 1


@dataclass(frozen=True)
class ImageFormat:
    """How images are decoded for a model: ``side``×``side`` pixels (Lanczos resampling, as learn2learn
    and the MAML code resize Omniglot), ``channels`` 1 (grey) or 3 (RGB), optionally inverted (Omniglot's
    strokes bright on a 0 background)."""

    side: int
    channels: int
    invert: bool = False

    def __post_init__(self) -> None:
        require(self.side > 0, f"image_size must be positive, got {self.side}")
        require(self.channels in (1, 3), f"channels must be 1 (grey) or 3 (RGB), got {self.channels}")

    def decode(self, data: bytes, name: str) -> np.ndarray:
        """The image in ``data`` as ``uint8 [channels, side, side]``; ``name`` says which file it was."""
        try:
            with Image.open(io.BytesIO(data)) as image:
                converted = image.convert("L" if self.channels == 1 else "RGB")
                pixels = np.asarray(converted.resize((self.side, self.side), Image.Resampling.LANCZOS))
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise ConfigError(f"{name} is not a readable image ({first_line(error)})") from None
        if self.invert:
            pixels = 255 - pixels
        return np.ascontiguousarray(pixels.reshape(self.side, self.side, -1).transpose(2, 0, 1), np.uint8)

    def decode_file(self, path: Path) -> np.ndarray:
        """:meth:`decode` of the file at ``path``."""
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise ConfigError(f"{path} cannot be read ({error.strerror or error})") from None
        return self.decode(data, str(path))


def image_files(folder: Path) -> list[Path]:
    """The PNG and JPEG files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def source_key(paths: list[Path], *settings: object) -> str:
    """Identifies decoded data: the source files' names, sizes and modification times, and ``settings``."""
    parts = [repr(settings)]
    for path in paths:
        stat = path.stat()
        parts.append(f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return "|".join(parts)


def cached(path: Path, key: str, build: Callable[[], dict]) -> dict:
    """The dict of tensors stored at ``path`` if it was built from ``key``, else ``build()`` (then stored
    there when the folder is writable; a read-only data folder just decodes again next time). An
    unreadable cache is rebuilt, never trusted."""
    if path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            stored = None
        if isinstance(stored, dict) and stored.get("key") == key and stored.get("format") == CACHE_FORMAT:
            return stored
    stored = {**build(), "key": key, "format": CACHE_FORMAT}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_partial_files(path.parent, path.name, older_than=3600)  # left by a killed writer
        atomic_write(path, lambda file: torch.save(stored, file))
    except OSError:
        pass
    return stored
