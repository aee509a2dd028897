"""A loopback TCP relay that forwards bytes in 1,400-byte pieces, as a real network path delivers them.

On loopback a whole request head arrives in one read; through the Internet it comes in segments of
about one MTU. Every SDK call in the matrix goes through this relay so that the server meets the
second case (a head over h11's 16 KB default, for one, fails only then).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

PIECE_BYTES = 1400


def _pump(source: socket.socket, sink: socket.socket, piece: int) -> None:
    """Copy ``source`` to ``sink`` one piece per send until EOF; then pass the EOF on."""
    try:
        while True:
            data = source.recv(64 * 1024)
            if not data:
                break
            for start in range(0, len(data), piece):
                sink.sendall(data[start : start + piece])
    except OSError:
        pass
    with suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class Relay:
    """Listens on 127.0.0.1:PORT and relays each connection to ``upstream`` (``host:port``)."""

    def __init__(self, upstream: str, piece: int = PIECE_BYTES) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.piece = piece
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="relay", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each piece its own segment
        with self._lock:
            self.connections += 1
            self._open |= {client, server}
        back = threading.Thread(target=_pump, args=(server, client, self.piece), daemon=True)
        back.start()
        _pump(client, server, self.piece)
        back.join()
        with self._lock:
            self._open -= {client, server}
        client.close()
        server.close()

    def close(self) -> None:
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the other thread
        self.listener.close()
        with self._lock:
            for sock in self._open:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def relay(upstream: str, piece: int = PIECE_BYTES) -> Iterator[Relay]:
    r = Relay(upstream, piece)
    try:
        yield r
    finally:
        r.close()
