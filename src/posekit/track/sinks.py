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
import contextlib
import fcntl
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from posekit.track.events import event_line
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError

log = logging.getLogger("posekit.track")

#: a finished file or a `.part` of the rolling directory, and its number (8 digits or more)
_NUMBERED = re.compile(r"\.?events-(\d{8,})\.jsonl(?:\.part)?")


@dataclass(frozen=True)
class EventSinkConfig:
    """Settings of the event sinks of `posekit track` (`--events-dir`, `--events-tcp`)."""

    events_every: int = ranged(300, 1, 10**9)  # frames per file of the rolling directory
    # seconds (wall time) after which a file of the rolling directory is finished anyway
    events_every_seconds: float = ranged(10.0, 0.001, 10**7)
    # frames of events queued per socket reader; past this a slow reader loses its oldest
    events_queue: int = ranged(10_000, 1, 10**8)
    # and at most this many megabytes of them (whichever bound is reached first)
    events_queue_mb: float = ranged(64.0, 0.001, 100_000)

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

    Files are `events-00000001.jsonl`, `events-00000002.jsonl`, ... in the order written. No
    file is ever truncated, replaced or written through a link:
    - a file's number is claimed by creating its `.part` exclusively (`O_EXCL | O_NOFOLLOW`):
      a name taken by anything (another writer's file, a planted link) moves on to the next
      number, so that several trackers can share one folder;
    - a finished file is published by a hard link to its final name, which fails rather than
      replace a file there, and only then is the `.part` name removed;
    - the writer holds a lock on its open `.part`; a new writer finishes every unlocked `.part`
      it finds (a killed tracker's), cut after its last complete line, before it starts.

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
        self._stream: IO[bytes] | None = None
        self._part: Path | None = None
        self._seq = 0
        self._frames = 0
        self._opened = 0.0
        self.count = 0  # events written
        self.files: list[Path] = []  # finished files, in order
        self.recovered = [p for p in self._recover_abandoned() if p is not None]

    def _numbers(self) -> list[int]:
        """The numbers of the files and `.part`s in the folder."""
        return [int(m[1]) for p in self.folder.iterdir() if (m := _NUMBERED.fullmatch(p.name))]

    def _recover_abandoned(self) -> list[Path | None]:
        """Finish the `.part`s no live writer holds (a killed tracker's), keeping their complete
        lines; each is logged."""
        done = []
        for part in sorted(self.folder.glob(".events-*.jsonl.part")):
            m = _NUMBERED.fullmatch(part.name)
            if m is None or part.is_symlink() or not part.is_file():
                continue
            try:
                fd = os.open(part, os.O_RDWR | os.O_NOFOLLOW)
            except OSError:
                continue
            with os.fdopen(fd, "r+b") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live writer's
                final, lines = self._finish_partial(f, part, int(m[1]))
            log.info(
                "finished %s, left by an earlier run, as %s (%d complete lines kept)",
                part,
                final,
                lines,
            )
            done.append(final)
        return done

    def _finish_partial(self, f: IO[bytes], part: Path, number: int) -> tuple[Path | None, int]:
        """Cut the open `part` after its last complete line and publish it (removed instead
        when no line is complete): (its final name or None, the lines kept)."""
        f.seek(0)
        data = f.read()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            f.truncate(keep)
        if keep == 0:
            part.unlink()
            return None, 0
        f.flush()
        os.fsync(f.fileno())
        return self._publish(part, number), data.count(b"\n", 0, keep)

    def _publish(self, part: Path, number: int) -> Path:
        """Give `part` its final name (the first free from `number` on) without replacing
        anything (a hard link fails where a name exists), then drop the `.part` name."""
        while True:
            final = self.folder / f"events-{number:08d}.jsonl"
            try:
                os.link(part, final)
                break
            except FileExistsError:
                number = max(number, *self._numbers()) + 1
        part.unlink()
        return final

    def _open(self) -> None:
        """Claim the next free number with a new `.part`, locked while it is written."""
        number = max(self._numbers(), default=0) + 1
        while True:
            part = self.folder / f".events-{number:08d}.jsonl.part"
            try:
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
                break
            except FileExistsError:
                number += 1
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._stream, self._part, self._seq = os.fdopen(fd, "wb"), part, number
        self._opened = time.monotonic()
        self._frames = 0

    def write(self, events: list[dict[str, Any]]) -> None:
        """One frame's events (possibly none: the frame still counts towards a roll)."""
        if self._stream is None:
            self._open()
        assert self._stream is not None
        try:
            self._stream.write("".join(event_line(e) for e in events).encode())
        except OSError as e:
            self._fail(e)
        self.count += len(events)
        self._frames += 1
        full = self._frames >= self.every_frames
        if full or time.monotonic() - self._opened >= self.every_seconds:
            self.roll()

    def roll(self) -> Path | None:
        """Finish the current file now (published under its final name); None when none is
        open."""
        if self._stream is None or self._part is None:
            return None
        try:
            self._stream.flush()
            os.fsync(self._stream.fileno())
            final = self._publish(self._part, self._seq)
        except OSError as e:
            self._fail(e)
        self._stream.close()
        self._stream = self._part = None
        self.files.append(final)
        return final

    def _fail(self, error: OSError) -> NoReturn:
        """A write failed (a full disk): keep the current file's complete lines as a finished
        file, and say so in one line that names it."""
        stream, part = self._stream, self._part
        self._stream = self._part = None
        assert stream is not None and part is not None
        with contextlib.suppress(OSError):
            stream.close()  # what the buffer still held is lost
        kept = "nothing was kept"
        try:
            with part.open("r+b") as f:
                final, lines = self._finish_partial(f, part, self._seq)
            if final is not None:
                kept = f"its {lines} complete lines are in {final}"
        except OSError:
            kept = f"its complete lines stay in {part}, which the next run finishes"
        raise UserError(f"cannot write events to {part}: {error.strerror or error}; {kept}")

    def close(self) -> None:
        self.roll()

    def __enter__(self) -> RollingDirWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Reader:
    """One connected reader: its socket, its bounded queue and the thread that drains it."""

    def __init__(
        self, conn: socket.socket, address: str, max_queue: int, max_bytes: int = 1 << 62
    ) -> None:
        self.conn = conn
        self.address = address
        self.queue: collections.deque[bytes] = collections.deque(maxlen=max_queue)
        self.max_bytes = max_bytes
        self.queued_bytes = 0
        self.ready = threading.Condition()
        self.closed = False
        self.dropped = 0
        self.thread = threading.Thread(target=self._drain, daemon=True, name=f"events {address}")
        self.thread.start()

    def offer(self, data: bytes) -> bool:
        """Queue one frame's lines; False when the oldest queued frame had to make room."""
        with self.ready:
            dropped = 0
            while self.queue and (
                len(self.queue) == self.queue.maxlen
                or self.queued_bytes + len(data) > self.max_bytes
            ):
                self.queued_bytes -= len(self.queue.popleft())
                dropped += 1
            self.dropped += dropped
            self.queue.append(data)
            self.queued_bytes += len(data)
            self.ready.notify()
        return not dropped

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
                    self.queued_bytes = 0
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
    `max_queue` frames and `max_queue_mb` megabytes; past either, its oldest frames are dropped
    and counted, so one slow reader costs neither memory nor time of the tracker or of the
    other readers. `port=0` picks a free port (see `port`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_queue: int = EventSinkConfig.events_queue,
        max_readers: int = 16,
        max_queue_mb: float = EventSinkConfig.events_queue_mb,
    ) -> None:
        if max_queue < 1:
            raise UserError("max_queue must be at least 1")
        self.max_queue = max_queue
        self.max_queue_bytes = int(max_queue_mb * 1024 * 1024)
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
                address = f"{addr[0]}:{addr[1]}"
                self._readers.append(_Reader(conn, address, self.max_queue, self.max_queue_bytes))
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
