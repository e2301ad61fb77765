"""A local HTTP endpoint for deliveries: records every request, answers with the statuses (and
headers) it is told to, can be slow, and can come back on the same port after closing."""

from __future__ import annotations

import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.support import Received

class HookReceiver:
    def __init__(self, port: int = 0) -> None:
        self.requests: queue.Queue[Received] = queue.Queue()
        self.statuses: list[int] = []
        self.headers: dict[str, str] = {}
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if outer.delay:
                    time.sleep(outer.delay)
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                for name, value in outer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                outer.requests.put(Received(
                    self.command, f"http://{self.headers.get('Host')}{self.path}",
                    urlsplit(self.path).path, dict(self.headers.items()), body))

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def get(self, timeout: float = 10.0) -> Received:
        try:
            return self.requests.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no request reached {self.url} within {timeout}s") from None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
