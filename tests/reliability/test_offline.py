"""Offline: a representative slice of the suite (model loading, generation, curation, training refusals, adapter
verbs, the CLI error paths) passes in a subprocess with every offline flag set, proxies pointing at a closed port,
and ``socket.connect`` refusing (tests/reliability/no_network.py) — and nothing even tried to connect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

SUBSET = [  # about 15 tests, ~15 s
    "tests/reliability/test_safe_loading.py",
    "tests/reliability/test_bad_inputs.py::test_bad_input_gets_one_clear_error_and_leaves_nothing_behind",
    "-k",
    "safe_loading or generate or steer or merge",
]


def test_representative_subset_passes_without_network(tmp_path):
    log = tmp_path / "network.log"
    unroutable = "http://127.0.0.1:9"  # the discard port: nothing listens, so a leaked request fails fast
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests" / "reliability")]),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HTTPS_PROXY": unroutable,
        "HTTP_PROXY": unroutable,
        "https_proxy": unroutable,
        "http_proxy": unroutable,
        "NO_PROXY": "",
        "no_proxy": "",
        "WSTEER_NETWORK_LOG": str(log),
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no_network", "-p", "no:cacheprovider", *SUBSET],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
    assert not log.exists(), log.read_text()[:4000]


def test_the_guard_really_refuses_and_records(tmp_path, monkeypatch):
    import socket

    import no_network

    log = tmp_path / "network.log"
    monkeypatch.setenv("WSTEER_NETWORK_LOG", str(log))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            no_network._connect(sock, ("127.0.0.1", 9))
        except OSError as exc:
            assert "offline test" in str(exc)
        else:
            raise AssertionError("the guard let a connection through")
    finally:
        sock.close()
    assert "127.0.0.1" in log.read_text()
