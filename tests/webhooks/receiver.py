"""A webhook receiver on 127.0.0.1 (http.server in a thread): answers each POST with the next
status of a script and keeps what it received."""
from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    statuses: list[int]
    received: list[Received] = field(default_factory=list)

    scheme_host: str = "http://127.0.0.1"

    def url(self, path: str = "/hooks") -> str:
        return f"{self.scheme_host}:{self.port}{path}"


def signature_valid(secret: str, request: Received) -> bool:
    """The check docs/webhooks.md tells receivers to make, written out independently of the product's code."""
    timestamp = request.headers["Webhook-Timestamp"]
    expected = "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers["Webhook-Signature"])


@contextmanager
def receiver(*statuses: int, tls=None):
    """Answers the POSTs with ``statuses`` in turn, then 200 (over TLS with ``tls``, an ``ssl.SSLContext``)."""
    script = list(statuses)
    state = Receiver(port=0, statuses=script)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append(Received(path=self.path, headers=dict(self.headers.items()), body=body))
            status = script.pop(0) if script else 200
            answer = b'{"ok": true}' if status < 300 else b"receiver is down"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            if 300 <= status < 400:
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        state.scheme_host = "https://localhost"
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
