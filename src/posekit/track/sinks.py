"""Where `posekit track` sends its events besides a file or stdout: a rolling directory that a
streaming reader (Spark's file source, Flink's FileSource) picks up file by file, and a TCP
socket that readers connect to (Spark's socket source, `nc`).

What each does when its reader falls behind, so that a slow consumer never grows the tracker's
memory and never stalls it:
- `RollingDirWriter` writes straight to disk (one open file at a time); a reader that falls
  behind leaves finished files waiting on disk, nothing is held in memory and nothing is lost.
  A file is written under a hidden name (`.events-*.part`, which file sources skip) and renamed
  when complete, so a reader never sees half a file.
- `TcpEventServer` keeps at most `max_queue` frames of events per connected reader; when a
  reader is that far behind, its oldest frames are dropped (counted in `dropped` and logged),
  the others and the tracker carry on. A socket is a live feed, not a store: use the
  directory for no loss.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from posekit.track.events import event_line
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError

log = logging.getLogger("posekit.track")

_FINISHED = re.compile(r"events-(\d{8})\.jsonl")


@dataclass(frozen=True)
class EventSinkConfig:
    """Settings of the event sinks of `posekit track` (`--events-dir`, `--events-tcp`)."""

    events_every: int = ranged(300, 1, 10**9)  # frames per file of the rolling directory
    # seconds (wall time) after which a file of the rolling directory is finished anyway
    events_every_seconds: float = ranged(10.0, 0.001, 10**7)
    # frames of events queued per socket reader; past this a slow reader loses its oldest
    events_queue: int = ranged(10_000, 1, 10**8)

    def __post_init__(self) -> None:
        check_ranges(self, "track")


def host_port(text: str, what: str) -> tuple[str, int]:
    """("host", port) of "HOST:PORT"; a `UserError` naming `what` (the option) otherwise."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UserError(f"{what}: {text!r} is not HOST:PORT")
    return host, int(port)


class RollingDirWriter:
    """JSON Lines events in a directory, a new file every `every_frames` frames or
    `every_seconds` seconds of wall time (whichever comes first; a `write` call is one frame).

    Files are `events-00000001.jsonl`, `events-00000002.jsonl`, ... in the order written; a new
    writer on a folder that already holds some continues the numbering, never overwriting.

    Example:
        >>> with RollingDirWriter("events", every_frames=300) as w:  # doctest: +SKIP
        ...     w.write(frame_events(r))
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        every_frames: int = EventSinkConfig.events_every,
        every_seconds: float = EventSinkConfig.events_every_seconds,
    ) -> None:
        if every_frames < 1 or every_seconds <= 0:
            raise UserError("a rolling directory needs every_frames >= 1 and every_seconds > 0")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.every_frames = every_frames
        self.every_seconds = every_seconds
        numbers = [int(m[1]) for p in self.folder.iterdir() if (m := _FINISHED.fullmatch(p.name))]
        self._seq = max(numbers, default=0)
        self._stream: IO[str] | None = None
        self._part: Path | None = None
        self._frames = 0
        self._opened = 0.0
        self.count = 0  # events written
        self.files: list[Path] = []  # finished files, in order

    def write(self, events: list[dict[str, Any]]) -> None:
        """One frame's events (possibly none: the frame still counts towards a roll)."""
        if self._stream is None:
            self._seq += 1
            self._part = self.folder / f".events-{self._seq:08d}.jsonl.part"
            self._stream = self._part.open("w", encoding="utf-8")
            self._opened = time.monotonic()
            self._frames = 0
        self._stream.writelines(event_line(e) for e in events)
        self.count += len(events)
        self._frames += 1
        full = self._frames >= self.every_frames
        if full or time.monotonic() - self._opened >= self.every_seconds:
            self.roll()

    def roll(self) -> Path | None:
        """Finish the current file now (renamed to its final name); None when none is open."""
        if self._stream is None or self._part is None:
            return None
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self._stream.close()
        final = self.folder / f"events-{self._seq:08d}.jsonl"
        self._part.replace(final)
        self._stream = self._part = None
        self.files.append(final)
        return final

    def close(self) -> None:
        self.roll()

    def __enter__(self) -> RollingDirWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Reader:
    """One connected reader: its socket, its bounded queue and the thread that drains it."""

    def __init__(self, conn: socket.socket, address: str, max_queue: int) -> None:
        self.conn = conn
        self.address = address
        self.queue: collections.deque[bytes] = collections.deque(maxlen=max_queue)
        self.ready = threading.Condition()
        self.closed = False
        self.dropped = 0
        self.thread = threading.Thread(target=self._drain, daemon=True, name=f"events {address}")
        self.thread.start()

    def offer(self, data: bytes) -> bool:
        """Queue one frame's lines; False when the oldest queued frame had to make room."""
        with self.ready:
            full = len(self.queue) == self.queue.maxlen
            if full:
                self.dropped += 1
            self.queue.append(data)  # a full deque drops its oldest item
            self.ready.notify()
        return not full

    def _drain(self) -> None:
        try:
            while True:
                with self.ready:
                    while not self.queue and not self.closed:
                        self.ready.wait()
                    if not self.queue:  # closed and drained
                        return
                    batch = b"".join(self.queue)
                    self.queue.clear()
                self.conn.sendall(batch)
        except OSError:
            pass  # the reader went away; the server notices and forgets it
        finally:
            self.closed = True
            self.conn.close()

    def close(self) -> None:
        with self.ready:
            self.closed = True
            self.ready.notify()


class TcpEventServer:
    """Serves the event stream as JSON Lines to every reader that connects to `host:port`
    (Spark: `spark.readStream.format("socket").option("host", h).option("port", p)`).

    Readers get the lines written after they connect. Each has its own queue of at most
    `max_queue` frames; past that its oldest frames are dropped and counted, so one slow reader
    costs neither memory nor time of the tracker or of the other readers. `port=0` picks a free
    port (see `port`).
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *,
        max_queue: int = EventSinkConfig.events_queue, max_readers: int = 16,
    ) -> None:  # fmt: skip
        if max_queue < 1:
            raise UserError("max_queue must be at least 1")
        self.max_queue = max_queue
        self.max_readers = max_readers
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.2)
        self.host, self.port = self._sock.getsockname()[:2]
        self._readers: list[_Reader] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.count = 0  # events written
        self.dropped = 0  # frames dropped for readers that fell behind (all readers together)
        self._accepter = threading.Thread(target=self._accept, daemon=True, name="events accept")
        self._accepter.start()

    @property
    def readers(self) -> int:
        with self._lock:
            return sum(not r.closed for r in self._readers)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._readers = [r for r in self._readers if not r.closed]
                if len(self._readers) >= self.max_readers:
                    log.warning(
                        "event socket: refused %s, %d readers already", addr, len(self._readers)
                    )
                    conn.close()
                    continue
                self._readers.append(_Reader(conn, f"{addr[0]}:{addr[1]}", self.max_queue))
            log.info("event socket: reader %s:%s connected", *addr[:2])

    def write(self, events: list[dict[str, Any]]) -> None:
        """One frame's events, to every connected reader; never blocks."""
        if not events:
            return
        data = "".join(event_line(e) for e in events).encode()
        self.count += len(events)
        with self._lock:
            readers = [r for r in self._readers if not r.closed]
        for r in readers:
            if not r.offer(data):
                self.dropped += 1
                if r.dropped in (1, 1000) or r.dropped % 100_000 == 0:
                    log.warning("event socket: reader %s is behind; %d frames dropped for it",
                                r.address, r.dropped)  # fmt: skip

    def close(self) -> None:
        """Stop accepting; send what is queued to each reader, then close its connection."""
        self._stop.set()
        self._sock.close()
        self._accepter.join()
        with self._lock:
            readers, self._readers = self._readers, []
        for r in readers:
            r.close()
        for r in readers:
            r.thread.join(timeout=5)

    def __enter__(self) -> TcpEventServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
