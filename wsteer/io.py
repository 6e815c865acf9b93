"""File I/O every stage shares: atomic writes, validated JSONL, an append-only JSONL log, hashes.

Atomic means: write to a temp file in the same directory, fsync, then ``os.replace`` — a reader (or a rerun after
a crash) sees the old file or the new one, never half of one. The append-only log is for resumable stages: each
record is one ``write()`` of a whole line followed by fsync, and a torn last line left by a kill is cut off when
the log is reopened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import tempfile
import typing
from pathlib import Path
from typing import Any, Iterator

from wsteer.config import coerce_value
from wsteer.errors import DataError, WsteerError

MAX_LINE_BYTES = 16 * 1024 * 1024  # a JSONL record bigger than this is almost certainly a corrupt file


# --------------------------------------------------------------------------------------------- atomic writes
def _write_error(path: Path, exc: OSError) -> WsteerError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        fix = "free disk space or write somewhere else with --out"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose a writable output directory with --out"
    else:
        fix = "check the output path"
    return WsteerError(f"cannot write {path}: {reason}", where=str(path), fix=fix)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[typing.IO]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``, on error delete it."""
    path = Path(path)
    created: list[Path] = []
    try:
        created = _make_parents(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        _remove_empty(created)
        raise _write_error(path, exc) from None
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            # mkstemp creates 0600 files; give the result the mode a plain open() would (0666 minus the umask)
            os.fchmod(handle.fileno(), 0o666 & ~_current_umask())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _silent_unlink(tmp)
        _remove_empty(created)
        raise _write_error(path, exc) from None
    except BaseException:
        _silent_unlink(tmp)
        _remove_empty(created)
        raise


def _make_parents(path: Path) -> list[Path]:
    """``mkdir -p`` of ``path``'s parent; returns the directories it created, deepest first."""
    missing = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(directories: list[Path]) -> None:
    """Remove directories a failed write created (deepest first), so a failure leaves no empty output dirs."""
    for directory in directories:
        with contextlib.suppress(OSError):
            directory.rmdir()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _silent_unlink(path: str | Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically. Returns the path."""
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically. Returns the path."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(value: Any, indent: int | None = None) -> str:
    """JSON text that also handles paths, dataclasses, numpy and torch values; NaN is written as null."""
    return json.dumps(_nan_to_none(value), indent=indent, ensure_ascii=False, default=_json_default, allow_nan=False)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value


def write_json(path: str | Path, value: Any) -> Path:
    """Write ``value`` as indented JSON, atomically."""
    return atomic_write_text(path, to_json(value, indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a missing or malformed file raises DataError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"file not found: {path}", where=str(path), fix="check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise DataError(
            f"malformed JSON: {exc}", where=f"{path}:{line}" if line else str(path), fix="fix or regenerate the file"
        ) from None


@contextlib.contextmanager
def atomic_directory(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Build a directory under a temp name beside ``path`` and rename it into place on success.

    Yields the temp directory to write into. On any error the temp directory is removed and ``path`` is left
    as it was.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise WsteerError(
            f"output directory already exists: {path}", where=str(path), fix="choose another --out or remove it"
        )
    created: list[Path] = []
    try:
        created = _make_parents(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.chmod(tmp, 0o777 & ~_current_umask())  # mkdtemp makes 0700; match a plain mkdir
    except OSError as exc:
        _remove_empty(created)
        raise _write_error(path, exc) from None
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise _write_error(path, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


# --------------------------------------------------------------------------------------------- JSONL
def _decode_line(raw: bytes, where: str) -> Any:
    if len(raw) > MAX_LINE_BYTES:
        raise DataError(
            f"line is {len(raw) / 2**20:.1f} MiB, over the {MAX_LINE_BYTES // 2**20} MiB limit",
            where=where,
            fix="split the record or check that the file is really JSONL",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not UTF-8 ({exc.reason} at byte {exc.start})", where=where, fix="re-save the file as UTF-8"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"malformed JSON ({exc.msg} at column {exc.colno})", where=where, fix="fix that line or remove it"
        ) from None


def iter_jsonl(path: str | Path, schema: type | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line_number, record) for each non-blank line; errors name file:line and the field.

    Args:
        path: the JSONL file.
        schema: optional dataclass; each record must have its required fields with the right types
            (extra fields are allowed and kept).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}", where=str(path), fix="check the path")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            record = _decode_line(raw.rstrip(b"\r\n"), where)
            if not isinstance(record, dict):
                raise DataError(
                    f"each line must be a JSON object, got {type(record).__name__}",
                    where=where,
                    fix="write one {...} object per line",
                )
            if schema is not None:
                check_record(schema, record, where)
            yield number, record


def read_jsonl(path: str | Path, schema: type | None = None) -> list[dict]:
    """All records of a JSONL file (see :func:`iter_jsonl`)."""
    return [record for _, record in iter_jsonl(path, schema)]


def check_record(schema: type, record: dict, where: str) -> dict:
    """Check that ``record`` has ``schema``'s required fields with the annotated types. Returns the record."""
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        if f.name not in record:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise DataError(f"missing field {f.name!r}", where=where, fix=f"add {f.name!r} to the record")
            continue
        try:
            coerce_value(record[f.name], hints[f.name], f.name, where)
        except WsteerError as exc:
            raise DataError(exc.what, where=where, fix=exc.fix) from None
    return record


def write_jsonl(path: str | Path, records: typing.Iterable[Any]) -> Path:
    """Write records as JSONL, atomically (the whole file appears at once)."""
    with atomic_write(path) as handle:
        for record in records:
            handle.write(to_json(record) + "\n")
    return Path(path)


class JsonlAppendLog:
    """An append-only JSONL file for resumable stages.

    Opening it repairs a torn last line (a kill mid-write) by cutting it off; :meth:`append` writes one whole
    line per call and fsyncs, so every line on disk is a complete record. Finished lines are never rewritten.

    Usage::

        with JsonlAppendLog(out) as log:
            done = {r["id"] for r in log.records}
            for item in todo:
                if item.id not in done:
                    log.append({...})
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: list[dict] = []
        self._handle: typing.IO[bytes] | None = None

    def __enter__(self) -> JsonlAppendLog:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._repair_and_load()
            self._handle = open(self.path, "ab")
        except OSError as exc:
            raise _write_error(self.path, exc) from None
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _repair_and_load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        keep = len(data)
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1  # drop the torn tail: it never finished, so it is not a record
        if keep != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(keep)
                handle.flush()
                os.fsync(handle.fileno())
        self.records = read_jsonl(self.path) if keep else []

    def append(self, record: Any) -> None:
        """Append one record as a single line and make it durable before returning."""
        assert self._handle is not None, "use JsonlAppendLog as a context manager"
        line = (to_json(record) + "\n").encode("utf-8")
        try:
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise _write_error(self.path, exc) from None
        self.records.append(record)


# --------------------------------------------------------------------------------------------- hashes
def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    """Hex sha256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_json(value: Any) -> str:
    """Hex sha256 of a value's canonical JSON (sorted keys) — a stable cache key."""
    return sha256_text(json.dumps(_nan_to_none(value), sort_keys=True, default=_json_default, ensure_ascii=False))


def sha256_path(path: str | Path) -> str:
    """Hex sha256 of a file, or of a directory's files (relative names and contents, sorted)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(item.relative_to(path)).encode())
        digest.update(sha256_file(item).encode())
    return digest.hexdigest()
