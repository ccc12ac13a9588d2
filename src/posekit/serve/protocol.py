"""The HTTP connection handling of `posekit serve`: uvicorn's h11 protocol with the limits a
public server needs and uvicorn does not set.

- A connection must deliver a request's headers within `header_timeout` seconds of opening
  (or of its previous response): a client that sends half a request and waits is closed, so
  that idle sockets cannot pile up (slowloris).
- At most `max_connections` connections are open at once, kept below the process's file
  descriptor limit: one more is closed as soon as it is accepted, so that the server never runs
  out of descriptors and keeps answering the others.
- Each kind of refusal is logged at most once per `LOG_EVERY_S` seconds, with a count, however
  many clients cause it.

(Bodies that stall are cut by `posekit.serve.app.BodyLimit`, which sees them.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("posekit.serve")

#: Seconds between two log lines about one kind of refusal.
LOG_EVERY_S = 10.0
#: Descriptors kept free for files, the model and the decode pool.
SPARE_DESCRIPTORS = 64


class RateLimitedLog:
    """Counts events of one kind and logs them at most once per `every` seconds."""

    def __init__(self, what: str, every: float = LOG_EVERY_S) -> None:
        self.what, self.every = what, every
        self.count, self.last = 0, -float("inf")
        self.lock = threading.Lock()

    def note(self) -> None:
        with self.lock:
            self.count += 1
            now = time.monotonic()
            if now - self.last < self.every:
                return
            count, self.count, self.last = self.count, 0, now
        log.warning("refused (%s): %d in the last %g s", self.what, count, self.every)


#: Connections the server accepts in one go before it sees them (the listening backlog): a
#: burst can open this many past the limit before the newest are closed.
BACKLOG = 128


def connection_limit(wanted: int) -> int:
    """`wanted`, lowered to what the file descriptor limit allows (with room for a burst of
    `BACKLOG` connections and `SPARE_DESCRIPTORS` of the process's own)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - BACKLOG - SPARE_DESCRIPTORS))


class _RateLimitFilter(logging.Filter):
    """Lets one record about running out of descriptors through per `LOG_EVERY_S` seconds
    (asyncio logs each failed accept, thousands per second, with a traceback)."""

    def __init__(self) -> None:
        super().__init__()
        self.limited = RateLimitedLog("out of file descriptors: accepting paused")

    def filter(self, record: logging.LogRecord) -> bool:
        if "out of system resource" not in record.getMessage():
            return True
        self.limited.note()
        return False


def quiet_descriptor_errors() -> None:
    """Replace asyncio's per-accept error records by one counted line per interval."""
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _RateLimitFilter) for f in logger.filters):
        logger.addFilter(_RateLimitFilter())


def guarded_protocol(
    header_timeout: float,
    max_connections: int,
    on_malformed: Callable[[str], None] = lambda why: None,
) -> type[H11Protocol]:
    """An h11 protocol class with these limits (see the module docstring); a request that is
    not valid HTTP is answered 400 with one line of JSON, like every other refusal, and
    reported to `on_malformed` (the server's refusal count and log)."""
    slow = RateLimitedLog("no request headers within --header-timeout")
    full = RateLimitedLog("connection over --max-connections")
    waiting: dict[Guarded, None] = {}  # connections waiting for headers, oldest first

    class Guarded(H11Protocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                full.note()
                # make room by closing the connection that has waited longest for its
                # headers (an idle one), else this new one
                victim = next(iter(waiting), self)
                victim.transport.close()
                victim._cancel()
                if victim is self:
                    return
            self._await_headers()

        def _await_headers(self) -> None:
            self._cancel()
            self._timer = self.loop.call_later(header_timeout, self._too_slow)
            waiting[self] = None

        def _cancel(self) -> None:
            waiting.pop(self, None)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _too_slow(self) -> None:
            self._timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                slow.note()
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the headers are in
                self._cancel()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_headers()  # the next request on this connection

        def send_400_response(self, msg: str) -> None:
            on_malformed(f"{msg} from {self.client[0] if self.client else '?'}")
            body = json.dumps({"error": msg}).encode()
            headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
            self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel()
            super().connection_lost(exc)

    return Guarded
