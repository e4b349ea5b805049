"""A TCP proxy on 127.0.0.1 that can cut a connection after a number of bytes from the server.

It stands for a network that drops mid-transfer: the client sees the stream end in the middle of
a server response, as when a NAT times out or a server restarts during a FETCH.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class CuttingProxy:
    target_host: str
    target_port: int
    cut_after: int | None = None  # server-to-client bytes per connection before the cut
    connections: int = 0
    _listener: socket.socket = field(init=False, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False, repr=False)
    _closing: bool = field(default=False, init=False, repr=False)
    _open: list[socket.socket] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._start(self._accept_loop)

    def _start(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection((self.target_host, self.target_port))
            self._open.extend((client, upstream))
            self._start(self._pump, client, upstream, None)
            self._start(self._pump, upstream, client, self.cut_after)

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    sink.sendall(data[: max(0, limit - sent)])
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def drop_all(self) -> None:
        """Cut every open connection now, as a server does to an idle client."""
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._open.clear()

    def close(self) -> None:
        self._closing = True
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=2)
