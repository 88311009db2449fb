"""A local OpenAI-compatible chat-completions server for the LLM plugin's tests.

It listens on 127.0.0.1 on an ephemeral port, records every request it receives, and
answers according to ``mode``:

- ``"ok"``: a chat completion whose content is ``reply_text``;
- ``"status"``: HTTP ``status`` with ``error_body`` as its JSON body;
- ``"malformed"``: HTTP 200 with a body that is not JSON;
- ``"wrong_shape"``: HTTP 200 with JSON lacking ``choices``;
- ``"raw"``: HTTP 200 with ``raw_body`` as the body;
- ``"slow"``: waits until the server is closed (or ``slow_limit`` s) before answering.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec


class SeenRequest(msgspec.Struct, frozen=True):
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeLLMServer:
    """An OpenAI-compatible server for tests; use as a context manager."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.reply_text = "print('hello from the server')"
        self.reply_model = "test-model-0613"
        self.status = 500
        self.error_body: Any = {"error": {"message": "internal error"}}
        self.raw_body = b""
        self.slow_limit = 10.0
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[SeenRequest] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="FakeLLMServer", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._requests)

    def record(self, request: SeenRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()  # slow handlers answer (into a closed socket) and end
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            """Quiet."""

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            server.record(SeenRequest("POST", self.path, dict(self.headers.items()), body))
            mode = server.mode
            try:
                if mode == "ok":
                    self._send(200, json.dumps({
                        "id": "chatcmpl-1", "object": "chat.completion", "model": server.reply_model,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": server.reply_text}}],
                        "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
                    }).encode())
                elif mode == "status":
                    self._send(server.status, json.dumps(server.error_body).encode())
                elif mode == "malformed":
                    self._send(200, b"{this is not json")
                elif mode == "raw":
                    self._send(200, server.raw_body)
                elif mode == "wrong_shape":
                    self._send(200, b'{"object": "chat.completion", "result": "no choices here"}')
                elif mode == "slow":
                    server.released.wait(server.slow_limit)
                    self._send(200, b"{}")
                else:
                    self._send(500, b'{"error": "unknown test mode"}')
            except OSError:
                pass  # the client gave up (the timeout test): nothing to answer to

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
