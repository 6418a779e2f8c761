"""The viewer's open connections: at most so many, and an idle one gives way to a new one.

Each connection is served by a thread of its own. An idle connection (a browser's keep-alive,
a client that connected and sent nothing) times out (the server sets a socket timeout), but
until it does, or if it sends a byte now and then, it must not crowd out a real request. So
when every place is taken, the connection waiting the longest for a request is closed to make
room; only when every place is busy answering does a new connection wait, then get a 503.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import suppress

__all__ = ["Connections"]


class Connections:
    """The places for open connections: `admit` one, mark it `idle` or `busy`, `release` it."""

    def __init__(self, most: int) -> None:
        if most < 1:
            raise ValueError(f"max_connections {most}: give at least 1")
        self.most = most
        self._places = threading.Semaphore(most)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        # Connections waiting for their next request, and since when.
        self._idle: dict[socket.socket, float] = {}
        # Connections closed to make room, whose threads have not ended yet.
        self._given_way: set[socket.socket] = set()

    @property
    def open(self) -> int:
        with self._lock:
            return len(self._open)

    def admit(self, connection: socket.socket, wait_s: float) -> bool:
        """Take a place for `connection`, closing the longest-idle one if none is free; False
        if every place stayed busy answering for `wait_s` seconds."""
        deadline = time.monotonic() + wait_s
        while not self._places.acquire(blocking=False):
            # Every place is taken: one held by an idle connection is freed; while every one
            # is busy answering, wait (a busy one may go idle meanwhile, and then gives way).
            self._close_longest_idle()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._places.acquire(timeout=min(left, 0.05)):
                break
        with self._lock:
            self._open.add(connection)
            # Idle until its first request is read: a client that never sends one gives way.
            self._idle[connection] = time.monotonic()
        return True

    def idle(self, connection: socket.socket) -> None:
        """`connection` waits for its next request."""
        with self._lock:
            if connection in self._open and connection not in self._given_way:
                self._idle[connection] = time.monotonic()

    def busy(self, connection: socket.socket) -> bool:
        """`connection` has a request to answer; False if it was closed to make room."""
        with self._lock:
            self._idle.pop(connection, None)
            return connection in self._open and connection not in self._given_way

    def release(self, connection: socket.socket) -> None:
        """`connection` is closed: its place is free."""
        with self._lock:
            if connection not in self._open:
                return
            self._open.discard(connection)
            self._idle.pop(connection, None)
            self._given_way.discard(connection)
        self._places.release()

    def _close_longest_idle(self) -> None:
        with self._lock:
            if not self._idle or self._given_way:
                return  # none idle, or one already giving way (its thread is ending)
            longest = min(self._idle, key=self._idle.__getitem__)
            del self._idle[longest]
            self._given_way.add(longest)
            # Its thread, reading the next request, sees the end of the stream and ends, which
            # frees the place (an OSError: its client closed it, and the place is being freed).
            with suppress(OSError):
                longest.shutdown(socket.SHUT_RDWR)
