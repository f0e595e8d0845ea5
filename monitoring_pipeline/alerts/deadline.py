"""A total deadline for one delivery attempt: connect, send and read together.

A socket timeout bounds each read, so a receiver that sends one byte every few seconds
holds a request for ever. ``Deadline`` gives each socket it watches the time that is
left as its timeout and, when the time is up, shuts those sockets down from a timer:
the blocked call returns at once in the thread that made it, with an error, and no
thread is left running. Name resolution (``getaddrinfo``) is the one step a socket
timeout cannot bound; the system resolver's own timeout bounds it.
"""

from __future__ import annotations

import socket
import threading
import time

DEFAULT_DEADLINE_S = 15.0
DEADLINE_ENV = "ALERT_DELIVERY_DEADLINE_S"
_MIN_TIMEOUT_S = 0.001  # a socket timeout of 0 would mean non-blocking, not "no time left"


class Deadline:
    """``with Deadline(10.0) as d:`` connect with ``timeout=d.remaining()``, then ``d.watch(sock)``."""

    def __init__(self, seconds: float):
        if not seconds > 0:
            raise ValueError(f"a delivery deadline must be > 0 seconds, got {seconds!r}")
        self.seconds = float(seconds)
        self._end = time.monotonic() + self.seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._expired = False
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self._timer.join()

    @property
    def passed(self) -> bool:
        """True once the time is up (whether or not the timer has fired yet)."""
        return self._expired or time.monotonic() >= self._end

    def remaining(self) -> float:
        return max(self._end - time.monotonic(), _MIN_TIMEOUT_S)

    def watch(self, sock: socket.socket) -> socket.socket:
        """Bound ``sock`` by the deadline: its timeout becomes the time left, and it is cut
        when the time is up (at once, if it already is)."""
        with self._lock:
            self._sockets.append(sock)
            expired = self._expired
        if expired:
            _cut(sock)
        else:
            sock.settimeout(self.remaining())
        return sock

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _cut(sock)


def _cut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for an SSL socket: it wakes a blocked read or
    # write in the other thread without touching the TLS state that thread is using.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # closed already, or detached by a TLS wrap (its wrapper is watched instead)
