"""A failed atomic write leaves no trace: not the temp file, and not the parent directories it had to create."""

import errno
import os

import pytest

from wsteer.errors import WsteerError
from wsteer.io import atomic_directory, atomic_write


def test_failed_atomic_write_removes_the_directories_it_created(tmp_path):
    target = tmp_path / "new" / "deeper" / "out.json"
    with pytest.raises(WsteerError, match="No space left"):
        with atomic_write(target) as handle:
            handle.write("{}")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []


def test_failed_atomic_directory_keeps_directories_that_existed(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "kept" / "new" / "adapter") as tmp:
            (tmp / "weights").write_text("partial")
            raise RuntimeError("killed")
    assert [p.name for p in tmp_path.rglob("*")] == ["kept"]
