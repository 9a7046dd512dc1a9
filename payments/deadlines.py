"""A wall-clock deadline for a provider call, enforced on the socket.

urllib3's timeouts are per socket operation: a read timeout of 5 s lets a provider that sends a byte
every 4 s keep a call alive for ever, past the order's lease, while another attempt takes the order
over. Here one watchdog thread per process keeps the calls' deadlines in a heap; when one passes
while its call is still running, it shuts the call's socket down (`shutdown`, never `close`, so no
descriptor is reused under the caller), the blocked read returns, and the caller reports a timeout.

The connection a call uses is known only inside urllib3, so the pool's connection classes record
themselves on the calling thread's watch when they send a request. A connection goes back to the
pool only after its watch ended (the gateway reads the answer with `preload_content=False` and
releases it after), so a late watchdog never shuts a socket another call has taken.

Written here rather than taken from a library: urllib3, httpx and requests all offer per-operation
timeouts only, and a thread per call (`threading.Timer`) would cost a thread start on every charge.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

_current = threading.local()


class Watch:
    """One call's deadline; `expired` once the watchdog cut the call off."""

    __slots__ = ("_lock", "at", "connection", "done", "expired", "socket")

    def __init__(self, at: float):
        self.at = at
        self.connection: HTTPConnection | None = None
        # The socket itself, once the request is sent: http.client drops the connection's reference
        # (`sock = None`) as soon as the headers of a `Connection: close` answer are read, while the
        # response goes on reading the body from it.
        self.socket: socket.socket | None = None
        self.done = False
        self.expired = False
        self._lock = threading.Lock()

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self.connection = connection
            expired = self.expired
        if expired:
            raise urllib3.exceptions.ReadTimeoutError(None, "", "deadline passed before sending")  # type: ignore[arg-type]

    def sent_on(self, sock: socket.socket | None) -> None:
        with self._lock:
            self.socket = sock

    def cut_off(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            sock = self.socket or getattr(self.connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed: the call is ending anyway
                    sock.shutdown(socket.SHUT_RDWR)

    def end(self) -> None:
        with self._lock:
            self.done = True


class _Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._pid: int | None = None

    def add(self, watch: Watch) -> None:
        with self._lock:
            if self._pid != os.getpid():  # threads do not survive a fork
                self._pid = os.getpid()
                self._heap.clear()
                threading.Thread(target=self._run, name="payment-deadlines", daemon=True).start()
            heapq.heappush(self._heap, (watch.at, next(self._order), watch))
            if self._heap[0][2] is watch:
                self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._changed.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                due = []
                while self._heap and self._heap[0][0] <= time.monotonic():
                    due.append(heapq.heappop(self._heap)[2])
            for watch in due:
                watch.cut_off()


_watchdog = _Watchdog()


@contextmanager
def deadline(seconds: float) -> Iterator[Watch]:
    """Run the block's provider call under a wall-clock deadline `seconds` from now."""
    watch = Watch(time.monotonic() + seconds)
    _current.watch = watch
    _watchdog.add(watch)
    try:
        yield watch
    finally:
        watch.end()
        _current.watch = None


def _watched_request(connection: HTTPConnection, send: Any, *args: Any, **kwargs: Any) -> None:
    """Send the request with the calling thread's watch (if any) knowing the connection, then its socket."""
    watch = getattr(_current, "watch", None)
    if watch is not None:
        watch.attach(connection)
    send(*args, **kwargs)
    if watch is not None:
        watch.sent_on(connection.sock)


class WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watched_request(self, super().request, *args, **kwargs)


class WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watched_request(self, super().request, *args, **kwargs)


class WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


POOL_CLASSES = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}
