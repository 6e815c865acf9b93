"""A pytest plugin (``-p no_network``) that makes any network connection fail and records who tried.

Loaded by tests/reliability/test_offline.py for a subprocess test run: every ``socket.connect`` to an internet
address raises, and the attempt is appended to the file named by ``WSTEER_NETWORK_LOG`` (code that swallows the
error still shows up there). Unix sockets stay allowed (nothing under test uses them, but multiprocessing may).
"""

from __future__ import annotations

import os
import socket
import traceback

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _refuse(sock: socket.socket, address) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    log = os.environ.get("WSTEER_NETWORK_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"connect {address!r} from:\n{''.join(traceback.format_stack(limit=8))}\n")
    raise OSError(f"network access attempted during an offline test: {address!r}")


def _connect(self, address):
    _refuse(self, address)
    return _real_connect(self, address)


def _connect_ex(self, address):
    _refuse(self, address)
    return _real_connect_ex(self, address)


def pytest_configure(config) -> None:
    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex
