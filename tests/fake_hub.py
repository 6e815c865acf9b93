"""A fake Hugging Face Hub on 127.0.0.1 for offline tests: the few API routes ``huggingface_hub`` calls to create a
repo, upload a folder and download a file back. Files live in memory; every request is logged.

Routes (as huggingface_hub 2.x sends them; a change there fails tests/adapters/test_adapters_portable.py):
  POST /api/repos/create                           -> {"url": …}; 409 if the repo exists
  POST /api/validate-yaml                          -> README.md metadata checked with yaml.safe_load
  POST /api/models/{repo}/preupload/{revision}     -> every file "regular" (inline base64 in the commit)
  POST /api/models/{repo}/commit/{revision}        -> the NDJSON commit: header + one line per file
  HEAD|GET /{repo}/resolve/{revision}/{path}       -> the committed bytes with the headers hf_hub_download reads

Not a general Hub: no LFS/Xet, no auth checks beyond recording the Authorization header.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

_PREUPLOAD = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/?]+)")
_COMMIT = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/?]+)")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>[^?]+)")


class FakeHub:
    """``with FakeHub() as hub:`` serves on ``hub.endpoint``; ``hub.repos[repo_id][path]`` holds uploaded bytes."""

    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.private: dict[str, bool] = {}
        self.commits: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, authorization)
        self.validated_yaml: list[dict] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                hub.requests.append(("POST", self.path, self.headers.get("Authorization")))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hub._post(self, self.path, body)

            def do_HEAD(self):
                hub.requests.append(("HEAD", self.path, self.headers.get("Authorization")))
                hub._resolve(self, send_body=False)

            def do_GET(self):
                hub.requests.append(("GET", self.path, self.headers.get("Authorization")))
                hub._resolve(self, send_body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # loopback only, any free port
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ----------------------------------------------------------------------------------------- responses
    @staticmethod
    def _json(handler, status: int, value) -> None:
        data = json.dumps(value).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _post(self, handler, path: str, body: bytes) -> None:
        if path.startswith("/api/repos/create"):
            return self._create(handler, json.loads(body))
        if path.startswith("/api/validate-yaml"):
            return self._validate(handler, json.loads(body))
        if _PREUPLOAD.match(path):
            files = json.loads(body)["files"]
            answer = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
            return self._json(handler, 200, {"files": answer})
        if match := _COMMIT.match(path):
            return self._commit(handler, match["repo"], body)
        return self._json(handler, 404, {"error": f"no route {path}"})

    def _create(self, handler, payload: dict) -> None:
        repo = f"{payload.get('organization')}/{payload['name']}"
        if repo in self.repos:
            return self._json(handler, 409, {"error": "You already created this model repo", "url": repo})
        self.repos[repo] = {}
        self.private[repo] = payload.get("visibility") == "private" or bool(payload.get("private"))
        return self._json(handler, 200, {"url": f"{self.endpoint}/{repo}", "name": repo})

    def _validate(self, handler, payload: dict) -> None:
        content = payload["content"]
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            metadata = yaml.safe_load(match.group(1)) if match else None
        except yaml.YAMLError as exc:
            return self._json(handler, 400, {"errors": [{"message": str(exc)}]})
        if not isinstance(metadata, dict):
            return self._json(handler, 200, {"warnings": [{"message": "empty or missing yaml metadata"}]})
        self.validated_yaml.append(metadata)
        return self._json(handler, 200, {"errors": [], "warnings": []})

    def _commit(self, handler, repo: str, body: bytes) -> None:
        if repo not in self.repos:
            return self._json(handler, 404, {"error": "Repository not found"})
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        for line in lines:
            if line["key"] == "file":
                value = line["value"]
                assert value["encoding"] == "base64"
                self.repos[repo][value["path"]] = base64.b64decode(value["content"])
            elif line["key"] != "header":
                return self._json(handler, 400, {"error": f"fake hub cannot {line['key']}"})
        oid = hashlib.sha1(body).hexdigest()
        self.commits.setdefault(repo, []).append(oid)
        url = f"{self.endpoint}/{repo}/commit/{oid}"
        return self._json(handler, 200, {"commitUrl": url, "commitOid": oid, "pullRequestUrl": None})

    def _resolve(self, handler, send_body: bool) -> None:
        match = _RESOLVE.match(handler.path)
        data = self.repos.get(match["repo"], {}).get(match["path"]) if match else None
        if data is None:
            handler.send_response(404)
            handler.send_header("X-Error-Code", "EntryNotFound")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
        handler.send_header("X-Repo-Commit", self.commits[match["repo"]][-1])
        handler.end_headers()
        if send_body:
            handler.wfile.write(data)
