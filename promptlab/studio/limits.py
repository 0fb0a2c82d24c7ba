"""Bounds on what clients can make the studio hold: the memory of request bodies in
flight, and the time a request may take to arrive.

The 30 s timeout the server once had applied to each read, so a client sending a
byte every 10 s kept a connection (and its thread) forever; and bodies were read
before the token was checked, so strangers could make the studio hold 32 MB each.
Now the token is checked from the headers first (``api.StudioApp.admit``), each body
reserves its length from a ``BodyBudget`` before it is read, and each request must
arrive, headers and body, before its deadline (``DeadlineSocketIO``).
"""

from __future__ import annotations

import io
import socket
import threading
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class BodyBudget:
    """The bytes of request bodies a studio holds at once. A body reserves its
    declared length before it is read and releases it once answered; when the budget
    is spent, the request is refused (503 with Retry-After) instead of read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def reserve(self, size: int) -> bool:
        with self._lock:
            if self.used + size > self.limit:
                return False
            self.used += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self.used -= size


class DeadlineSocketIO(io.RawIOBase):
    """A socket's reading side whose every read ends at ``deadline()`` (a
    ``time.monotonic`` value) rather than after a fixed time per read: however slowly
    a client trickles bytes, its request ends when its deadline passes
    (``TimeoutError``)."""

    def __init__(self, sock: socket.socket, deadline: Callable[[], float]) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        remaining = self._deadline() - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


def read_body(stream, length: int, chunk: int = 64 * 1024) -> bytearray:
    """``length`` bytes from a WSGI input, read in chunks (a client that declares a
    length and sends less makes the studio hold only what arrived). ``EOFError`` when
    the client stops short; ``TimeoutError``/``OSError`` from the stream pass on."""
    body = bytearray(length)  # the budget already holds this much for the request
    view = memoryview(body)
    got = 0
    while got < length:
        data = stream.read(min(chunk, length - got))
        if not data:
            raise EOFError(f"the body ended after {got} of {length} bytes")
        view[got:got + len(data)] = data
        got += len(data)
    return body
