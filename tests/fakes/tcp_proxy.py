"""A TCP forwarder on 127.0.0.1 that a test can cut and restore: a database (or Redis) going away.

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = proxy.url(database_url)       # the same database, through the proxy
        proxy.cut()                          # every open connection drops; new ones are closed at once
        proxy.stall()                        # new connections are accepted and never answered
        proxy.restore()                      # forward again

Each connection is forwarded by one thread (select over both sockets), so a cut takes
effect in the middle of a query, the way a dead network or a restarted server does.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from urllib.parse import urlsplit, urlunsplit

FORWARDING, CUT, STALLED = "forwarding", "cut", "stalled"


class TcpProxy:
    """Forward 127.0.0.1:<port> to `upstream`, until told otherwise."""

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.mode = FORWARDING
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()  # forwarded connections, both ends
        self._held: set[socket.socket] = set()  # stalled connections, never answered
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self.accepted = 0  # connections that reached the proxy, forwarded or not

    # ------------------------------------------------------------------ control

    def url(self, database_url: str) -> str:
        """`database_url` with its host and port replaced by this proxy's."""
        parts = urlsplit(database_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def cut(self) -> None:
        """Drop every open connection; new ones are closed as soon as they arrive."""
        with self._lock:
            self.mode = CUT
        self._drop_all()

    def stall(self) -> None:
        """Drop every open connection; new ones are accepted and then never answered."""
        with self._lock:
            self.mode = STALLED
        self._drop_all()

    def restore(self) -> None:
        """Forward new connections again (dropped ones stay dropped, as after a real outage)."""
        with self._lock:
            self.mode = FORWARDING
        # Stalled connections never got an answer; their clients have given up or will.
        self._drop_all()

    def open_connections(self) -> int:
        """Connections being forwarded now."""
        with self._lock:
            return len(self._open) // 2

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TcpProxy:
        thread = threading.Thread(target=self._accept_loop, name=f"tcp-proxy-{self.port}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def close(self) -> None:
        self._closing.set()
        self._drop_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ forwarding

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            with self._lock:
                mode = self.mode
            if mode == CUT:
                _reset(client)
                continue
            if mode == STALLED:
                with self._lock:
                    self._held.add(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            self._track(client, upstream)
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _track(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open.update(sockets)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peer:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            try:
                while not self._closing.is_set():
                    for key, _ in selector.select(timeout=0.2):
                        data = key.fileobj.recv(65536)
                        if not data:
                            return
                        peer[key.fileobj].setblocking(True)
                        peer[key.fileobj].sendall(data)
                        peer[key.fileobj].setblocking(False)
            except (OSError, ValueError):
                return  # cut (the sockets were closed under us) or a side hung up
            finally:
                for sock in peer:
                    self._forget(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        _reset(sock)

    def _drop_all(self) -> None:
        with self._lock:
            forwarded, held = list(self._open), list(self._held)
            self._held = set()
        # Shut down only: the pump thread wakes on the hang-up and closes its own sockets
        # (closing them here could hand their descriptors to a new connection mid-select).
        for sock in forwarded:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for sock in held:
            _reset(sock)


def _reset(sock: socket.socket) -> None:
    """Close at once with a RST, as a vanished peer looks to the other side."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
