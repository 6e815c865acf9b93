import errno
import json
import os

import pytest

from wsteer.errors import DataError, WsteerError
from wsteer.io import JsonlAppendLog, atomic_directory, atomic_write_text, read_jsonl, sha256_path, write_jsonl


def test_atomic_write_replaces_and_cleans_up_on_error(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        from wsteer.io import atomic_write

        with atomic_write(target) as handle:
            handle.write("new, half done")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(WsteerError) as err:
        write_jsonl(tmp_path / "out.jsonl", [{"a": 1}])
    assert "No space left" in str(err.value) and "free disk space" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_keeps_old_on_failure(tmp_path):
    target = tmp_path / "adapter"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(ValueError):
        with atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text("2")
            raise ValueError
    assert (target / "a.txt").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


@pytest.mark.parametrize(
    "content, fragment, line",
    [
        (b'{"id": 1}\n{"id": 2\n', "malformed JSON", 2),
        (b'{"id": 1}\n\n\xff\xfe{"id": 3}\n', "not UTF-8", 3),
        (b"[1, 2]\n", "must be a JSON object", 1),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path, content, fragment, line):
    path = tmp_path / "data.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_jsonl(path)
    assert fragment in str(err.value) and f"{path}:{line}" in str(err.value)


def test_jsonl_schema_checks_fields(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Pair:
        prompt: str
        cho: str
        weight: float = 1.0

    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, [{"prompt": "p", "cho": "c", "extra": True}, {"prompt": "p"}])
    with pytest.raises(DataError) as err:
        read_jsonl(path, Pair)
    assert "missing field 'cho'" in str(err.value) and f"{path}:2" in str(err.value)
    write_jsonl(path, [{"prompt": "p", "cho": 3}])
    with pytest.raises(DataError, match="cho must be a string"):
        read_jsonl(path, Pair)


def test_append_log_repairs_torn_tail_and_never_rewrites(tmp_path):
    path = tmp_path / "raw.jsonl"
    with JsonlAppendLog(path) as log:
        log.append({"id": 1})
        log.append({"id": 2})
    before = path.read_bytes()
    with open(path, "ab") as handle:  # a kill in the middle of a write
        handle.write(b'{"id": 3, "te')
    with JsonlAppendLog(path) as log:
        assert [r["id"] for r in log.records] == [1, 2]
        log.append({"id": 3})
    data = path.read_bytes()
    assert data.startswith(before)
    assert [json.loads(line)["id"] for line in data.splitlines()] == [1, 2, 3]


def test_sha256_path_covers_names_and_contents(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_text("x")
    first = sha256_path(tmp_path / "d")
    (tmp_path / "d" / "a").write_text("y")
    assert sha256_path(tmp_path / "d") != first
