"""An HTTP proxy in front of the stand-in Slack that loses answers.

Slack sometimes does the work and still answers 5xx, or the connection drops after the request
went through: the caller cannot tell whether its message was posted. The proxy forwards the
request (so the stand-in posts the message) and then answers 503, or hangs up, instead of
passing the answer on.

    proxy = LossyProxy(slack.url)
    proxy.lose("chat.postMessage", times=2, how="503")   # or how="hangup"
    WebClient(base_url=proxy.api_url, ...)
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LossyProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.lost: list[str] = []
        self._plan: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                request = urllib.request.Request(proxy.upstream + self.path, data=body,
                                                 headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=30) as reply:
                        status, data, reply_headers = reply.status, reply.read(), reply.headers
                except urllib.error.HTTPError as error:
                    status, data, reply_headers = error.code, error.read(), error.headers
                how = proxy._take(self.path)
                if how == "hangup":
                    self.close_connection = True
                    self.connection.close()
                    return
                if how == "503":
                    status, data = 503, b'{"ok": false, "error": "service_unavailable"}'
                self.send_response(status)
                for key, value in reply_headers.items():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding",
                                           "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _forward
            do_POST = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def lose(self, method: str, *, times: int = 1, how: str = "503") -> None:
        """The answers to the next `times` calls of the Web API `method` are lost."""
        with self._lock:
            self._plan[method].extend([how] * times)

    def _take(self, path: str) -> str | None:
        method = path.split("?", 1)[0].removeprefix("/api/")
        with self._lock:
            plan = self._plan.get(method)
            if not plan:
                return None
            self.lost.append(method)
            return plan.pop(0)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
