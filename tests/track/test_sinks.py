"""The event sinks of `posekit track`: the rolling directory shows a reader only whole files and
never overwrites, the socket serves every reader and, when one falls behind, drops that
reader's oldest frames instead of growing memory or stalling the tracker."""

from __future__ import annotations

import json
import socket
import time
import tracemalloc
from pathlib import Path

import pytest

from posekit.track.sinks import EventSinkConfig, RollingDirWriter, TcpEventServer
from posekit.utils.errors import UserError


def _frame(i: int, n: int = 2) -> list[dict]:
    return [{"schema": "posekit.track/1", "frame": i, "track_id": k + 1, "pad": "x" * 200}
            for k in range(n)]  # fmt: skip


def test_rolling_files_appear_whole_in_order_and_a_new_writer_continues(tmp_path: Path) -> None:
    with RollingDirWriter(tmp_path, every_frames=3, every_seconds=1e6) as w:
        for i in range(7):
            w.write(_frame(i))
            visible = sorted(p.name for p in tmp_path.glob("*.jsonl"))
            # what a reader lists is only finished files, each holding 3 whole frames
            assert len(visible) == (i + 1) // 3
            for name in visible:
                lines = (tmp_path / name).read_text().splitlines()
                assert len(lines) == 6 and all(json.loads(x) for x in lines)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["events-00000001.jsonl", "events-00000002.jsonl", "events-00000003.jsonl"]
    assert len((tmp_path / names[-1]).read_text().splitlines()) == 2  # the last, shorter one
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with RollingDirWriter(tmp_path, every_frames=3) as w:  # e.g. after a restart
        w.write(_frame(100))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name in before} == before
    assert (tmp_path / "events-00000004.jsonl").exists()
    assert [json.loads(x)["frame"] for x in w.files[0].read_text().splitlines()] == [100, 100]


def test_a_link_planted_at_the_next_name_is_never_written_through(tmp_path: Path) -> None:
    folder, victim = tmp_path / "events", tmp_path / "victim.txt"
    folder.mkdir()
    victim.write_text("precious")
    (folder / ".events-00000001.jsonl.part").symlink_to(victim)
    (folder / "events-00000002.jsonl").symlink_to(victim)
    with RollingDirWriter(folder, every_frames=1) as w:
        w.write(_frame(0))
    assert victim.read_text() == "precious"
    assert [p.name for p in w.files] == ["events-00000003.jsonl"]
    assert (folder / ".events-00000001.jsonl.part").is_symlink()  # left as it was


def test_a_killed_writers_part_is_finished_by_the_next_run_not_truncated(
    tmp_path: Path,
) -> None:
    lines = "".join(json.dumps({"frame": i}) + "\n" for i in range(500))
    part = tmp_path / ".events-00000001.jsonl.part"
    part.write_text(lines + '{"frame": 50')  # killed mid-line
    with RollingDirWriter(tmp_path, every_frames=1) as w:
        w.write(_frame(7))
    kept = (tmp_path / "events-00000001.jsonl").read_text()
    assert kept == lines and not part.exists()
    assert w.recovered == [tmp_path / "events-00000001.jsonl"]
    assert [p.name for p in w.files] == ["events-00000002.jsonl"]


def test_two_writers_on_one_folder_keep_every_file(tmp_path: Path) -> None:
    a = RollingDirWriter(tmp_path, every_frames=2)
    b = RollingDirWriter(tmp_path, every_frames=2)
    for i in range(4):
        a.write(_frame(i, n=1))
        b.write(_frame(100 + i, n=1))
    a.close()
    b.close()
    assert len(a.files) == len(b.files) == 2 and not set(a.files) & set(b.files)
    lines = [x for p in tmp_path.iterdir() for x in p.read_text().splitlines()]
    assert sorted(json.loads(x)["frame"] for x in lines) == [0, 1, 2, 3, 100, 101, 102, 103]


def test_numbers_past_eight_digits_continue(tmp_path: Path) -> None:
    (tmp_path / "events-99999999.jsonl").write_text("{}\n")
    for run in range(2):
        with RollingDirWriter(tmp_path, every_frames=10) as w:
            w.write(_frame(run, n=1))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["events-100000000.jsonl", "events-100000001.jsonl", "events-99999999.jsonl"]


def test_a_failed_write_names_the_file_and_keeps_the_complete_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = RollingDirWriter(tmp_path, every_frames=10)
    w.write(_frame(0, n=2))
    assert w._stream is not None
    w._stream.flush()

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(w._stream, "write", full)
    with pytest.raises(UserError) as e:
        w.write(_frame(1))
    message = str(e.value)
    assert ".events-00000001.jsonl.part" in message and "No space left" in message
    assert "2 complete lines are in" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events-00000001.jsonl"]


def test_rolling_by_time_and_memory_stays_flat_without_a_reader(tmp_path: Path) -> None:
    with RollingDirWriter(tmp_path, every_frames=10**9, every_seconds=0.05) as w:
        w.write(_frame(0))
        time.sleep(0.06)
        w.write(_frame(1))  # the time is up: this frame finishes the file
        assert len(w.files) == 1
    tracemalloc.start()
    with RollingDirWriter(tmp_path / "big", every_frames=500) as w:
        for i in range(2000):
            w.write(_frame(i))
        first = tracemalloc.get_traced_memory()[0]
        for i in range(2000, 20000):
            w.write(_frame(i))
        grown = tracemalloc.get_traced_memory()[0] - first
    tracemalloc.stop()
    assert grown < 200_000, grown  # 18000 frames (~7 MB of events) went to disk, not memory
    assert len(list((tmp_path / "big").glob("events-*.jsonl"))) == 40
    with pytest.raises(UserError):
        RollingDirWriter(tmp_path, every_frames=0)


def _read_lines(sock: socket.socket, count: int, timeout: float = 10.0) -> list[dict]:
    sock.settimeout(timeout)
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return [json.loads(x) for x in data.splitlines()]


def _connect(server: TcpEventServer, readers: int) -> socket.socket:
    s = socket.create_connection((server.host, server.port))
    deadline = time.monotonic() + 10
    while server.readers < readers and time.monotonic() < deadline:
        time.sleep(0.01)
    return s


def test_every_socket_reader_gets_the_frames_after_it_connects() -> None:
    with TcpEventServer("127.0.0.1", 0) as server:
        server.write(_frame(0))  # nobody listens yet: goes nowhere
        a = _connect(server, 1)
        server.write(_frame(1))
        b = _connect(server, 2)
        server.write(_frame(2))
        assert [e["frame"] for e in _read_lines(a, 4)] == [1, 1, 2, 2]
        assert [e["frame"] for e in _read_lines(b, 2)] == [2, 2]
        a.close()
        deadline = time.monotonic() + 10
        while server.readers > 1 and time.monotonic() < deadline:
            server.write(_frame(3))  # a reader that left is noticed and forgotten
            time.sleep(0.01)
        assert server.readers == 1 and server.dropped == 0
        b.close()


def test_a_reader_that_falls_behind_loses_its_oldest_frames_not_the_trackers_time() -> None:
    big = [{"frame": 0, "pad": "y" * 20_000}]
    with TcpEventServer("127.0.0.1", 0, max_queue=50) as server:
        slow = _connect(server, 1)
        t0 = time.perf_counter()
        for i in range(3000):  # 60 MB for a reader that reads nothing
            server.write([dict(big[0], frame=i)])
        seconds = time.perf_counter() - t0
        assert seconds < 20, seconds  # never blocked on the reader
        assert server.dropped > 2000  # the kernel's buffers and 50 queued frames, no more
        fresh = _connect(server, 2)
        server.write(_frame(5000))
        got = _read_lines(fresh, 2)
        assert [e["frame"] for e in got] == [5000, 5000]  # the other reader is unaffected
        # what the slow reader still gets is its newest frames, in order, ending with 5000
        slow.settimeout(10)
        data = b""
        while not data.endswith(b'"frame":5000,"track_id":2,"pad":"' + b"x" * 200 + b'"}\n'):
            chunk = slow.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        frames = [json.loads(x)["frame"] for x in data.splitlines()]
        assert frames == sorted(frames) and frames[-1] == 5000 and len(frames) < 3000
        slow.close()
        fresh.close()


def test_a_readers_queue_is_bounded_in_bytes_too() -> None:
    """Frames of many events: 1,000 frames of 100 kB for a reader that reads nothing stay
    within `max_queue_mb` (here 2 MB), although far fewer frames than `max_queue`."""
    frame = [{"frame": 0, "pad": "z" * 100_000}]
    with TcpEventServer("127.0.0.1", 0, max_queue=10_000, max_queue_mb=2) as server:
        slow = _connect(server, 1)
        for i in range(1000):
            server.write([dict(frame[0], frame=i)])
        with server._lock:
            (reader,) = server._readers
        assert reader.queued_bytes <= 2 * 1024 * 1024 and server.dropped > 900
        slow.close()


def test_sink_settings_have_ranges() -> None:
    with pytest.raises(UserError, match="events_every"):
        EventSinkConfig(events_every=0)
