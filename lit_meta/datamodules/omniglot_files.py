"""Omniglot on disk: finding the official archives, checking them, and decoding them once into memory.

Omniglot (Lake, Salakhutdinov & Tenenbaum, 2015) ships as zips of 105×105 PNGs laid out as
``<archive>/<Alphabet>/<characterNN>/<id>_<nn>.png``, 20 drawings per character. Decoding PNGs for every
task is slow, so the drawings are decoded once, resized to 28×28 (Lanczos, as learn2learn and the MAML
code do) and inverted (strokes bright, background 0), and kept as one ``uint8`` tensor; that tensor is
cached as a ``.pt`` file beside the data so later runs skip decoding.
"""

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lit_meta.datamodules.images import ImageFormat, cached
from lit_meta.errors import ConfigError

IMAGE_SIZE = 28
DRAWINGS_PER_CHARACTER = 20
ARCHIVES = {
    "full": ("images_background", "images_evaluation"),
    "small": ("images_background_small1", "images_background_small2"),
}
"""The official archives of each subset: the full set (964 + 659 characters) and the two "small"
background splits (136 and 156 characters; both hold Greek and Latin, which are read once)."""
MD5 = {
    "images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811",
    "images_background_small1.zip": "e704a628b5459e08445c13499850abc4",
    "images_background_small2.zip": "b75a71a51d3b13f821f212756fe481fd",
}
IMAGE_FORMAT = ImageFormat(IMAGE_SIZE, channels=1, invert=True)


@dataclass
class OmniglotImages:
    """Every character of a subset: ``images`` is ``uint8 [characters, 20, 28, 28]``; ``alphabets[c]``
    and ``characters[c]`` name character ``c`` (in archive order, alphabets sorted)."""

    images: Tensor
    alphabets: list[str]
    characters: list[str]


def find_archives(root: Path, subset: str) -> list[Path] | None:
    """The archives (zip files or extracted folders) of ``subset`` under ``root`` or ``root/omniglot-py``
    (where torchvision's downloader puts them), or ``None`` if any is missing."""
    found = []
    for name in ARCHIVES[subset]:
        candidates = [base / stem for base in (root, root / "omniglot-py") for stem in (name, f"{name}.zip")]
        existing = [path for path in candidates if path.is_dir() or path.is_file()]
        if not existing:
            return None
        found.append(existing[0])
    return found


def locate(root: Path, subset: str) -> tuple[str, list[Path]]:
    """The subset to use (``auto`` picks ``full`` when present, else ``small``) and its archives.

    Raises :class:`ConfigError` saying where the files belong if they are not there.
    """
    if not root.is_dir():
        raise ConfigError(
            f"Omniglot root {root} does not exist; create it and put the Omniglot zips there, "
            "or pass --data.download true"
        )
    for name in ("full", "small") if subset == "auto" else (subset,):
        archives = find_archives(root, name)
        if archives is not None:
            return name, archives
    wanted = " and ".join(f"{stem}.zip" for stem in ARCHIVES["full" if subset == "auto" else subset])
    raise ConfigError(
        f"no Omniglot data in {root}: put {wanted} (or their extracted folders) there, "
        "or pass --data.download true to fetch the full set"
    )


def download(root: Path) -> None:
    """Fetch the full official set with torchvision's md5-checked downloader into ``root/omniglot-py``."""
    from torchvision.datasets import Omniglot

    root.mkdir(parents=True, exist_ok=True)
    try:
        for background in (True, False):
            Omniglot(str(root), background=background, download=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError
        raise ConfigError(f"downloading Omniglot into {root} failed ({error})") from None


def load_images(root: Path, subset: str, archives: list[Path], cache_dir: Path | None) -> OmniglotImages:
    """All characters of ``archives``, from the cache in ``cache_dir`` when it matches, else decoded
    (and then cached there if the folder is writable)."""
    key = _fingerprint(archives)
    cache = (cache_dir or root) / f"omniglot-{subset}-{IMAGE_SIZE}px.pt"

    def build() -> dict:
        images = decode(archives)
        return {"images": images.images, "alphabets": images.alphabets, "characters": images.characters}

    stored = cached(cache, key, build)
    return OmniglotImages(stored["images"], stored["alphabets"], stored["characters"])


def decode(archives: list[Path]) -> OmniglotImages:
    """Decode every drawing of ``archives``; a character present in several archives is read once.

    Characters keep the archives' order (each archive's alphabets and characters sorted by name), which
    the split of the full set by character position relies on."""
    drawings: dict[tuple[str, str], list[np.ndarray]] = {}
    for archive in archives:
        for (alphabet, character), files in sorted(_drawings(archive).items()):
            if (alphabet, character) in drawings:
                continue
            if len(files) != DRAWINGS_PER_CHARACTER:
                raise ConfigError(
                    f"{archive} is incomplete: {alphabet}/{character} has {len(files)} drawings, "
                    f"not {DRAWINGS_PER_CHARACTER}"
                )
            drawings[(alphabet, character)] = [
                IMAGE_FORMAT.decode(read(), f"{archive}: {alphabet}/{character}/{name}")[0]
                for name, read in sorted(files)
            ]
    if not drawings:
        raise ConfigError(f"no Omniglot drawings found in {', '.join(map(str, archives))}")
    keys = list(drawings)
    images = torch.from_numpy(np.stack([np.stack(drawings[key]) for key in keys]))
    return OmniglotImages(images, [a for a, _ in keys], [c for _, c in keys])


def _drawings(archive: Path) -> dict[tuple[str, str], list]:
    """``(alphabet, character) -> [(file name, read function)]`` for every PNG in a zip or folder."""
    found: dict[tuple[str, str], list] = {}
    if archive.is_dir():
        for path in archive.glob("*/*/*.png"):
            found.setdefault((path.parent.parent.name, path.parent.name), []).append(
                (path.name, path.read_bytes)
            )
        return found
    _check_md5(archive)
    try:
        bundle = zipfile.ZipFile(archive)
        for name in bundle.namelist():
            parts = name.split("/")
            if len(parts) == 4 and parts[3].endswith(".png"):
                found.setdefault((parts[1], parts[2]), []).append(
                    (parts[3], lambda name=name: bundle.read(name))
                )
    except (zipfile.BadZipFile, OSError) as error:
        raise ConfigError(f"{archive} is not a readable zip file ({error})") from None
    return found


def _check_md5(archive: Path) -> None:
    expected = MD5.get(archive.name)
    if expected is None:
        return
    actual = hashlib.md5(archive.read_bytes()).hexdigest()
    if actual != expected:
        raise ConfigError(
            f"{archive} is corrupt: its md5 is {actual}, the official file's is {expected}; "
            "delete it and download it again"
        )


def _fingerprint(archives: list[Path]) -> str:
    """Identifies the source files (names, sizes, modification times) a cache was decoded from."""
    parts = []
    for archive in archives:
        stat = archive.stat()
        parts.append(f"{archive.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return "|".join(parts)
