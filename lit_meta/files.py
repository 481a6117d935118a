"""Writing files so that a crash, a kill or a full disk never leaves a damaged one in their place.

:func:`atomic_write` is the one rule for every file lit-meta writes that a later run reads back
(checkpoints, caches, exported policies, evaluation reports): the bytes go to a temporary file in the
target's own directory, which is flushed and synced to disk and then renamed over the target
(``os.replace``, atomic on one filesystem), and the directory entry is synced too. Until that rename
the previous file is untouched; if writing fails, the temporary file is removed. Only a kill -9 in the
middle can leave one behind: it is hidden (``.<name>.<random>.partial``) and
:func:`remove_partial_files` clears it at the next start.
"""

import contextlib
import errno
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from lit_meta.errors import cause_in_chain

PARTIAL_SUFFIX = ".partial"

ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG, errno.ESTALE,
     errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG}
)  # fmt: skip
"""Failures of the machine or of a path rather than of lit-meta: a full disk or quota, a read-only mount,
missing permission, an I/O error, a stale network handle, a directory or a file in the way, a name too
long."""


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path`` and, once it has returned and the bytes
    are on disk, rename it over ``path``. Any error propagates after the temporary file is removed, and
    leaves ``path`` as it was."""
    path = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)  # write what a link names
    partial = path.parent / f".{path.name}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}"
    # created as any new file would be (mode 0o666 less the umask), unlike tempfile's private 0o600
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            with contextlib.suppress(FileNotFoundError):  # a replaced file keeps its mode
                os.fchmod(file.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    _sync_directory(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda file: file.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode())


def ensure_writable_directory(directory: str | Path) -> Path:
    """Create ``directory`` if needed and check that files can be written into it; raise the
    :class:`OSError` a later write would meet (a file in the way, permissions, a read-only mount)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a directory", str(directory))
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, probe = tempfile.mkstemp(dir=directory, prefix=".write-probe.", suffix=PARTIAL_SUFFIX)
    os.close(descriptor)
    os.unlink(probe)
    return directory


def remove_partial_files(directory: str | Path, name: str = "*", older_than: float = 0.0) -> list[Path]:
    """Remove the temporary files that writes into ``directory`` (of files called ``name``) left when
    their process was killed. Call it where no other process can be writing (under the run lock), or
    with ``older_than`` seconds that no write takes."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed, now = [], time.time()
    for partial in directory.glob(f".{name}.*{PARTIAL_SUFFIX}"):
        with contextlib.suppress(OSError):
            if now - partial.stat().st_mtime >= older_than:
                partial.unlink()
                removed.append(partial)
    return removed


def reason_of(error: OSError) -> str:
    """What went wrong, in the operating system's words (``No space left on device``)."""
    return error.strerror or str(error) or type(error).__name__


def describe_os_error(error: OSError) -> str:
    """``<file>: <reason>`` of an operating-system error, e.g. ``runs/a/csv/metrics.csv: No space left
    on device``."""
    return f"{error.filename}: {reason_of(error)}" if error.filename else reason_of(error)


def environment_error_in(error: BaseException) -> OSError | None:
    """The :class:`OSError` of the machine (see :data:`ENVIRONMENT_ERRNOS`) that ``error`` is or was
    raised from, if any."""
    return cause_in_chain(
        error, lambda cause: isinstance(cause, OSError) and cause.errno in ENVIRONMENT_ERRNOS
    )


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where the filesystem supports syncing a directory)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some filesystems cannot sync a directory; the rename itself has happened
    finally:
        os.close(descriptor)


__all__ = [
    "ENVIRONMENT_ERRNOS",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "describe_os_error",
    "ensure_writable_directory",
    "environment_error_in",
    "reason_of",
    "remove_partial_files",
]
