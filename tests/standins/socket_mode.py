"""A stand-in for Slack's Socket Mode WebSocket endpoint, on 127.0.0.1.

Slack's Socket Mode (docs.slack.dev/apis/events-api/using-socket-mode): the app calls
`apps.connections.open` with its app-level token and gets a `wss://` URL; it connects, receives
`{"type": "hello"}`, then envelopes:

    {"envelope_id": "…", "type": "events_api" | "interactive" | "slash_commands",
     "payload": {…the same JSON as over HTTP…}, "accepts_response_payload": bool,
     "retry_attempt": 0, "retry_reason": ""}

and must answer each with `{"envelope_id": "…"}` within 3 seconds. slack_sdk's built-in client
speaks plain `ws://` to any port other than 443, so a loopback server needs no TLS.

Use:
    with SocketModeServer() as server:
        slack.socket_mode_url = server.url      # what apps.connections.open returns
        ... start the app ...
        server.wait_for_connection()
        envelope_id = server.send_event(event_callback_payload)
        server.wait_for_ack(envelope_id)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


class SocketModeServer:
    def __init__(self) -> None:
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: list[ServerConnection] = []
        self._lock = threading.Condition()
        self.acks: dict[str, dict[str, Any]] = {}
        self.connection_count = 0

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link/?ticket={uuid.uuid4().hex}"

    def __enter__(self) -> SocketModeServer:
        self._server = serve(self._handle, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _handle(self, connection: ServerConnection) -> None:
        with self._lock:
            self._connections.append(connection)
            self.connection_count += 1
            self._lock.notify_all()
        connection.send(json.dumps({"type": "hello", "num_connections": 1,
                                    "debug_info": {"host": "standin"}}))
        try:
            for raw in connection:
                message = json.loads(raw)
                envelope_id = message.get("envelope_id")
                if envelope_id:
                    with self._lock:
                        self.acks[envelope_id] = message
                        self._lock.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                if connection in self._connections:
                    self._connections.remove(connection)

    def wait_for_connection(self, timeout: float = 10.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: bool(self._connections), timeout):
                raise TimeoutError("no Socket Mode client connected")

    def send(self, kind: str, payload: dict[str, Any], retry_attempt: int = 0) -> str:
        """Push one envelope to the connected client; returns its envelope id."""
        envelope_id = uuid.uuid4().hex
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        with self._lock:
            connection = self._connections[-1]
        connection.send(json.dumps(envelope))
        return envelope_id

    def send_event(self, event_callback: dict[str, Any], retry_attempt: int = 0) -> str:
        return self.send("events_api", event_callback, retry_attempt)

    def wait_for_ack(self, envelope_id: str, timeout: float = 3.0) -> float:
        """Wait for the client's ack; returns the seconds it took (Slack allows 3)."""
        started = time.monotonic()
        with self._lock:
            if not self._lock.wait_for(lambda: envelope_id in self.acks, timeout):
                raise TimeoutError(f"envelope {envelope_id} was not acknowledged in {timeout}s")
        return time.monotonic() - started
