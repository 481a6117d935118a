"""Atomic writes: the target is either the old file or the new one, never a part, and nothing is left."""

import errno
import os
import stat

import pytest

from lit_meta.files import (
    atomic_write,
    atomic_write_bytes,
    ensure_writable_directory,
    environment_error_in,
    remove_partial_files,
)


def test_a_write_replaces_the_file_with_the_permissions_a_new_file_gets(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert sorted(os.listdir(tmp_path)) == ["report.json"]


def test_a_replaced_file_keeps_its_mode_and_a_link_keeps_pointing_at_it(tmp_path):
    private = tmp_path / "private.ckpt"
    private.write_bytes(b"old")
    private.chmod(0o600)
    atomic_write_bytes(private, b"new")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_bytes() == b"new"
    link = tmp_path / "latest.ckpt"
    link.symlink_to(private.name)
    atomic_write_bytes(link, b"newer")
    assert link.is_symlink() and private.read_bytes() == b"newer"


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(failure, tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"the good checkpoint")

    def write(file):
        file.write(b"half of a new one")
        raise failure

    with pytest.raises(type(failure)):
        atomic_write(target, write)
    assert target.read_bytes() == b"the good checkpoint"
    assert sorted(os.listdir(tmp_path)) == ["last.ckpt"]


def test_partial_files_of_a_killed_writer_are_removed_and_nothing_else(tmp_path):
    (tmp_path / ".last.ckpt.0a1b2c.partial").write_bytes(b"half")
    (tmp_path / "last.ckpt").write_bytes(b"whole")
    (tmp_path / "notes.partial").write_bytes(b"a user's file, not hidden: not ours")
    removed = remove_partial_files(tmp_path)
    assert [path.name for path in removed] == [".last.ckpt.0a1b2c.partial"]
    assert sorted(os.listdir(tmp_path)) == ["last.ckpt", "notes.partial"]


def test_only_old_partial_files_of_the_named_target_go_when_others_may_be_writing(tmp_path):
    old, fresh, other = (
        tmp_path / name for name in (".c.pt.1.partial", ".c.pt.2.partial", ".d.pt.3.partial")
    )
    for path in (old, fresh, other):
        path.write_bytes(b"half")
    os.utime(old, (0, 0))  # written in 1970: its writer is long gone
    os.utime(other, (0, 0))
    assert remove_partial_files(tmp_path, "c.pt", older_than=3600) == [old]
    assert fresh.exists() and other.exists()


def test_a_directory_to_write_into(tmp_path):
    assert ensure_writable_directory(tmp_path / "a" / "b").is_dir()
    assert os.listdir(tmp_path / "a" / "b") == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        ensure_writable_directory(tmp_path / "file")


def test_errors_of_the_machine_are_found_behind_the_errors_that_wrap_them():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/runs/a/last.ckpt")
        except OSError:
            raise RuntimeError("unexpected pos 64 vs 0") from None  # what torch.save reports on top
    except RuntimeError as error:
        assert environment_error_in(error).errno == errno.ENOSPC
    assert environment_error_in(ValueError("a bug")) is None
    assert environment_error_in(OSError(errno.ENOENT, "No such file")) is None  # not the machine's fault
