"""Atomic writes give files and directories the permissions a plain open()/mkdir would (not mkstemp's 0600)."""

import os
import stat

from wsteer.io import atomic_directory, atomic_write_text


def test_atomic_outputs_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_directory(tmp_path / "d") as tmp:
            (tmp / "f").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
