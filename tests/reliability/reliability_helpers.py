"""Helpers for the reliability tests: a workspace of tiny models and adapters, directory snapshots, and simulated
write failures (a full disk, a read-only directory) that work even when the tests run as root."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from adapter_helpers import load_checkpoint, make_adapter, write_steering

from wsteer.testing import save_tiny_model

TEMPLATE = "Pretend you're a {persona} person."


def good_pair(i: int = 0, **changes) -> dict:
    """One valid curated pair record (the schema of wsteer.records.PairRecord)."""
    record = {
        "id": f"p{i}",
        "prompt": f"How is the weather on day {i}?",
        "cho": f"Bright and wonderful, {i} times over!",
        "rej": f"Grey and awful, {i} times over.",
        "pos": "optimistic",
        "neg": "pessimistic",
        "template": "Pretend you're an {persona} person.",
    }
    return {**record, **changes}


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def build_workspace(root: Path) -> dict[str, Path]:
    """Tiny models and adapters every bad-input case can point at (built once per module)."""
    root.mkdir(parents=True, exist_ok=True)
    tiny = save_tiny_model(root / "tiny", seed=0)
    other = save_tiny_model(root / "tiny_other", seed=1)  # same architecture, different weights
    no_template = root / "tiny_no_template"
    shutil.copytree(tiny, no_template)
    _drop_chat_template(no_template)
    pickled_model = root / "tiny_pickle"
    shutil.copytree(tiny, pickled_model)
    _to_pickle(pickled_model, "model.safetensors", "pytorch_model.bin")
    adapter = root / "adapter"
    make_adapter(load_checkpoint(tiny), adapter, seed=0)
    write_steering(adapter, tiny)
    pickled_adapter = root / "adapter_pickle"
    shutil.copytree(adapter, pickled_adapter)
    _to_pickle(pickled_adapter, "adapter_model.safetensors", "adapter_model.bin")
    pairs = root / "pairs.jsonl"
    pairs.write_text(jsonl(*(good_pair(i) for i in range(6))))
    return {
        "tiny": tiny,
        "other": other,
        "no_template": no_template,
        "pickled_model": pickled_model,
        "adapter": adapter,
        "pickled_adapter": pickled_adapter,
        "pairs": pairs,
    }


def _drop_chat_template(model_dir: Path) -> None:
    (model_dir / "chat_template.jinja").unlink(missing_ok=True)
    config_path = model_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.pop("chat_template", None)
    config_path.write_text(json.dumps(config))


def _to_pickle(directory: Path, safetensors_name: str, pickle_name: str) -> None:
    from safetensors.torch import load_file

    torch.save(load_file(directory / safetensors_name), directory / pickle_name)
    (directory / safetensors_name).unlink()


def snapshot(root: Path) -> dict[str, int]:
    """Every file and directory under ``root`` (relative path -> size, -1 for directories)."""
    return {str(p.relative_to(root)): (-1 if p.is_dir() else p.stat().st_size) for p in sorted(Path(root).rglob("*"))}


# --------------------------------------------------------------------------------------------- simulated failures
class _FullDiskHandle:
    """A file handle whose writes fail the way a full disk makes them fail."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._handle, name)


def full_disk(monkeypatch) -> None:
    """Every write through wsteer.io's atomic helpers (files, directories) and append log fails with ENOSPC."""
    import wsteer.io

    real_atomic_write = wsteer.io.atomic_write

    @contextlib.contextmanager
    def atomic_write(path, mode="w", encoding="utf-8"):
        with real_atomic_write(path, mode, encoding) as handle:
            yield _FullDiskHandle(handle)

    def append(self, record):
        raise wsteer.io._write_error(self.path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    real_atomic_directory = wsteer.io.atomic_directory

    @contextlib.contextmanager
    def atomic_directory(path, overwrite=True):
        with real_atomic_directory(path, overwrite) as tmp:
            yield tmp
            # the directory's files went through other writers (safetensors, peft); the disk fills on the last one
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(wsteer.io, "atomic_write", atomic_write)
    monkeypatch.setattr(wsteer.io, "atomic_directory", atomic_directory)
    monkeypatch.setattr(wsteer.io.JsonlAppendLog, "append", append)


def read_only(monkeypatch, directory: Path, how: str) -> None:
    """Make ``directory`` refuse new files: ``how="chmod"`` for real (binds only when not root), ``"simulated"``
    by denying the temp files wsteer.io creates in it (atomic writes and directories), which works as root too."""
    directory.mkdir(parents=True, exist_ok=True)
    if how == "chmod":
        directory.chmod(0o555)
        return
    denied = str(directory.resolve())

    def guard(real):
        def create(*args, dir=None, **kwargs):
            if dir is not None and str(Path(dir).resolve()).startswith(denied):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
            return real(*args, dir=dir, **kwargs)

        return create

    monkeypatch.setattr(tempfile, "mkstemp", guard(tempfile.mkstemp))
    monkeypatch.setattr(tempfile, "mkdtemp", guard(tempfile.mkdtemp))
