"""One training process per run directory: an exclusive lock held for the life of a fit.

The lock is ``<run_dir>/run.lock``, taken with the ``filelock`` package (``flock`` on Unix): the
operating system releases it when its process ends, however it ends, so the lock of a dead process
never blocks. Beside it, ``run.lock.owner`` says who holds it (process id, host, start time, command),
so that a refused second fit can name the process it would have collided with.
"""

import contextlib
import json
import os
import socket
import sys
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout

from lit_meta.errors import ConfigError
from lit_meta.files import (
    atomic_write_text,
    ensure_writable_directory,
    reason_of,
    remove_partial_files,
)

LOCK_FILE = "run.lock"
OWNER_FILE = "run.lock.owner"


class RunDirectory:
    """Claims ``run_dir`` for one training process: checks it can be written, takes the lock, and
    clears what a writer killed there left behind (see :func:`lit_meta.files.remove_partial_files`).

    :meth:`release` frees it; if this claim created the directory and nothing but the lock was written
    into it (the run was refused before it started), the directory is removed, while still locked.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.created = False
        self._lock: FileLock | None = None

    def claim(self, subdirectories: tuple[str, ...] = ()) -> "RunDirectory":
        """Take the directory; the partial files of killed writers in it and in ``subdirectories`` are
        removed."""
        run_dir = self.run_dir
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--run_dir {run_dir} is a file, not a directory")
        try:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            try:
                run_dir.mkdir()
                self.created = True
            except FileExistsError:
                self.created = False
            ensure_writable_directory(run_dir)
        except OSError as error:
            reason = reason_of(error)
            raise ConfigError(f"the run directory {run_dir} cannot be written ({reason})") from None
        lock = FileLock(run_dir / LOCK_FILE)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise ConfigError(
                f"{run_dir} is in use by another training process ({self._owner()}); wait for it to end "
                "or choose another --run_dir"
            ) from None
        if not (run_dir / LOCK_FILE).is_file():  # locked just as a refused run gave the directory up
            lock.release()
            raise ConfigError(f"{run_dir} was being removed by another process; try again")
        self._lock = lock
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        with contextlib.suppress(OSError):
            atomic_write_text(run_dir / OWNER_FILE, json.dumps(owner))
        for directory in (run_dir, *(run_dir / name for name in subdirectories)):
            remove_partial_files(directory)
        return self

    def release(self) -> None:
        if self._lock is None:
            return
        with contextlib.suppress(OSError):
            (self.run_dir / OWNER_FILE).unlink(missing_ok=True)
            if self.created and [path.name for path in self.run_dir.iterdir()] == [LOCK_FILE]:
                (self.run_dir / LOCK_FILE).unlink()
                self.run_dir.rmdir()
        self._lock.release()
        self._lock = None

    def _owner(self) -> str:
        """Who holds the lock, as far as its owner file says."""
        try:
            owner = json.loads((self.run_dir / OWNER_FILE).read_text())
            pid, host, started = owner["pid"], owner["host"], owner["started"]
            return f"process {pid} on {host}, started {started}: {owner['command']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that has not said which"


__all__ = ["LOCK_FILE", "OWNER_FILE", "RunDirectory"]
