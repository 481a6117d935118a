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


def is_launching_process() -> bool:
    """Whether this process is the one that started the job, not a worker a launcher started for a
    data-parallel rank > 0 (Lightning's DDP launcher sets ``LOCAL_RANK``/``NODE_RANK``, torchrun
    ``RANK``, SLURM ``SLURM_PROCID``). Only the launching process takes the run lock."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key]) == 0
    return all(int(os.environ.get(key, "0")) == 0 for key in ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK"))


class RunDirectory:
    """Claims ``run_dir`` for one training process: checks it can be written, takes the lock, and
    clears what a killed writer left behind (see :func:`lit_meta.files.remove_partial_files`).

    :meth:`release` frees it; if this claim created the directory and nothing else was written into it
    (the run was refused before it started), the directory is removed again.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.created = False
        self._lock: FileLock | None = None

    def claim(self) -> "RunDirectory":
        run_dir = self.run_dir
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--run_dir {run_dir} is a file, not a directory")
        self.created = not run_dir.exists()
        try:
            ensure_writable_directory(run_dir)
        except OSError as error:
            raise ConfigError(f"the run directory {run_dir} cannot be written ({reason_of(error)})") from None
        lock = FileLock(run_dir / LOCK_FILE)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self._remove_if_unused()
            raise ConfigError(
                f"{run_dir} is in use by another training process ({self._owner()}); wait for it to end "
                "or choose another --run_dir"
            ) from None
        self._lock = lock
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        with contextlib.suppress(OSError):
            atomic_write_text(run_dir / OWNER_FILE, json.dumps(owner))
        for directory in (run_dir, *[path for path in run_dir.iterdir() if path.is_dir()]):
            remove_partial_files(directory)
        return self

    def release(self) -> None:
        if self._lock is None:
            return
        with contextlib.suppress(OSError):
            (self.run_dir / OWNER_FILE).unlink(missing_ok=True)
        self._lock.release()
        self._lock = None
        self._remove_if_unused()

    def _remove_if_unused(self) -> None:
        """Remove the directory this claim created if only lock files are in it."""
        if not self.created or self._lock is not None:
            return
        with contextlib.suppress(OSError):
            if {path.name for path in self.run_dir.iterdir()} <= {LOCK_FILE, OWNER_FILE}:
                for name in (LOCK_FILE, OWNER_FILE):
                    (self.run_dir / name).unlink(missing_ok=True)
                self.run_dir.rmdir()

    def _owner(self) -> str:
        """Who holds the lock, as far as its owner file says."""
        try:
            owner = json.loads((self.run_dir / OWNER_FILE).read_text())
            return (
                f"process {owner['pid']} on {owner['host']}, started {owner['started']}: {owner['command']}"
            )
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that has not said which"


__all__ = ["LOCK_FILE", "OWNER_FILE", "RunDirectory", "is_launching_process"]
