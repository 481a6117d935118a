"""One process per run directory; the lock of a dead process never blocks; refused claims leave nothing."""

import os
import subprocess
import sys

import pytest

from lit_meta.errors import ConfigError
from lit_meta.launch import is_launching_process
from lit_meta.run_lock import LOCK_FILE, OWNER_FILE, RunDirectory


def test_a_second_claim_is_refused_naming_the_holder_until_it_releases(tmp_path):
    first = RunDirectory(tmp_path / "run").claim()
    assert first.created
    holder = rf"is in use by another training process \(process {os.getpid()} on "
    with pytest.raises(ConfigError, match=holder):
        RunDirectory(tmp_path / "run").claim()
    # the refused claim removed nothing of the holder's (it had seen the directory as new, too)
    assert sorted(os.listdir(tmp_path / "run")) == [LOCK_FILE, OWNER_FILE]
    with pytest.raises(ConfigError, match=holder):
        RunDirectory(tmp_path / "run").claim()
    first.release()
    RunDirectory(tmp_path / "run").claim().release()


def test_the_lock_of_a_killed_process_does_not_block(tmp_path):
    holder = (
        "import os, sys, signal; from lit_meta.run_lock import RunDirectory; "
        f"RunDirectory({str(tmp_path / 'run')!r}).claim(); os.kill(os.getpid(), signal.SIGKILL)"
    )
    assert subprocess.run([sys.executable, "-c", holder]).returncode == -9
    assert (tmp_path / "run" / OWNER_FILE).is_file()  # a dead process's leftovers
    RunDirectory(tmp_path / "run").claim().release()


def test_a_claim_that_created_the_directory_removes_it_when_released_unused(tmp_path):
    claim = RunDirectory(tmp_path / "new").claim()
    assert sorted(os.listdir(tmp_path / "new")) == [LOCK_FILE, OWNER_FILE]
    claim.release()
    assert not (tmp_path / "new").exists()
    used = RunDirectory(tmp_path / "used").claim()
    (tmp_path / "used" / "config.yaml").write_text("x")
    used.release()
    assert sorted(os.listdir(tmp_path / "used")) == ["config.yaml", LOCK_FILE]


@pytest.mark.parametrize(
    ("environment", "launching"),
    [
        ({}, True),
        ({"LOCAL_RANK": "1"}, False),
        ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),
        ({"RANK": "0", "LOCAL_RANK": "0"}, True),
        ({"RANK": "3", "LOCAL_RANK": "1"}, False),
        ({"SLURM_PROCID": "2", "SLURM_NTASKS": "4"}, False),
        ({"SLURM_PROCID": "0", "SLURM_NTASKS": "4"}, True),
        ({"SLURM_PROCID": "2", "SLURM_NTASKS": "1"}, True),  # srun of independent single-process fits
    ],
)
def test_only_the_launching_process_takes_the_lock(environment, launching, monkeypatch):
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert is_launching_process() is launching
