"""A fake OpenAI-compatible chat-completions server on localhost, for tests of the LLM clients."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeChatServer:
    """Answers POST /v1/chat/completions with ``reply(request_body) -> content`` and records every request.

    ``echo_key`` makes a misbehaving server that echoes the Authorization header back in its answer;
    ``status`` != 200 answers that HTTP status with the header in the error body.
    """

    def __init__(self, reply: Callable[[dict], str], echo_key: bool = False, status: int = 200):
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                content = reply(body)
                if echo_key:
                    content += f" (you sent {self.headers.get('Authorization')})"
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(
                    payload.encode() if status == 200 else f"denied {self.headers.get('Authorization')}".encode()
                )

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
