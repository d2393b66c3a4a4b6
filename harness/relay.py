"""A TCP relay that can cut a connection on demand, to stage a server outage without stopping
the server (tansu keeps topics in memory, so restarting it would lose them); used by the tests
and by the chaos run (`harness.chaos`). Real bytes flow through it; it is plumbing, not a fake
of the server behind it. Given a certificate, it ends TLS in front of the server (tansu speaks
plaintext only), as a TLS listener of Kafka would."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path

from harness.servers import LOOPBACK, free_port


class TcpRelay:
    def __init__(self, target_port: int, port: int | None = None,
                 tls_cert: tuple[Path, Path] | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.tls_handshakes = 0
        self._tls: ssl.SSLContext | None = None
        if tls_cert is not None:
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(*tls_cert)
        self._blocked = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server((LOOPBACK, self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def block(self) -> None:
        """Drop every connection and refuse new ones until `unblock`."""
        self._blocked.set()
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def unblock(self) -> None:
        self._blocked.clear()

    def close(self) -> None:
        self.block()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._blocked.is_set():
                client.close()
                continue
            if self._tls is not None:
                try:
                    client.settimeout(10)
                    client = self._tls.wrap_socket(client, server_side=True)
                    client.settimeout(None)
                    self.tls_handshakes += 1
                except (OSError, ssl.SSLError):
                    client.close()
                    continue
            try:
                upstream = socket.create_connection((LOOPBACK, self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
