"""Downloading a published file, against a local HTTP server (never the internet): a good
file lands in the cache once; a truncated one, a wrong digest, a 404, an oversized declaration
and an unreachable server are one line each and leave nothing in the cache."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from posekit import Model
from posekit.models.loading import fetch_published
from posekit.utils import download
from posekit.utils.download import Published, fetch
from posekit.utils.errors import UserError

BODY = bytes(range(256)) * 4096  # 1 MiB


class Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Handler.requests.append(self.path)
        if self.path.endswith("/good.pt"):
            self._send(BODY, len(BODY))
        elif self.path.endswith("/short.pt"):  # declares more than it sends, then closes
            self._send(BODY[:1000], len(BODY))
        elif self.path.endswith("/huge.pt"):
            self._send(b"", 1 << 40)
        else:
            self.send_error(404, "Not Found")

    def _send(self, body: bytes, declared: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.requests = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v8.4.0"
    httpd.shutdown()
    httpd.server_close()


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_good_file_is_downloaded_once_and_checked(server: str, tmp_path: Path) -> None:
    digest = hashlib.sha256(BODY).hexdigest()
    dest = tmp_path / "cache" / "good.pt"
    got = fetch(Published(f"{server}/good.pt", digest, len(BODY)), dest, show_progress=False)
    assert got == dest and dest.read_bytes() == BODY and _left(dest.parent) == ["good.pt"]
    fetch(Published(f"{server}/good.pt", digest), dest, show_progress=False)
    assert len(Handler.requests) == 1  # the cached copy served the second call


def test_a_cached_file_that_differs_from_the_pin_is_fetched_again(
    server: str, tmp_path: Path
) -> None:
    dest = tmp_path / "good.pt"
    dest.write_bytes(b"corrupt")
    fetch(Published(f"{server}/good.pt", hashlib.sha256(BODY).hexdigest()), dest)
    assert dest.read_bytes() == BODY


@pytest.mark.parametrize(
    ("name", "sha256", "says"),
    [
        ("short.pt", None, "stopped at 1000 of 1048576 bytes"),
        ("good.pt", "0" * 64, "not the published file (SHA-256"),
        ("missing.pt", None, "answered 404 Not Found"),
        ("huge.pt", None, "declares 1099511627776 bytes"),
    ],
)
def test_a_bad_download_is_one_line_and_keeps_nothing(
    server: str, tmp_path: Path, name: str, sha256: str | None, says: str
) -> None:
    dest = tmp_path / "cache" / name
    with pytest.raises(UserError) as e:
        fetch(Published(f"{server}/{name}", sha256), dest, show_progress=False)
    assert says in str(e.value) and "\n" not in str(e.value) and name in str(e.value)
    assert _left(dest.parent) == []


def test_offline_is_one_line_naming_the_url_and_where_to_put_the_file(tmp_path: Path) -> None:
    dest = tmp_path / "yolo11n-pose.pt"
    url = "http://127.0.0.1:9/yolo11n-pose.pt"  # the discard port: nothing listens
    with pytest.raises(UserError) as e:
        fetch(Published(url), dest, show_progress=False)
    message = str(e.value)
    assert url in message and str(dest) in message and "offline" in message
    assert "\n" not in message and not dest.exists()


def test_a_link_planted_at_the_destination_is_replaced_not_written_through(
    server: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    dest = tmp_path / "cache" / "good.pt"
    dest.parent.mkdir()
    dest.symlink_to(outside)
    fetch(Published(f"{server}/good.pt"), dest, show_progress=False)
    assert outside.read_text() == "keep" and not dest.is_symlink() and dest.read_bytes() == BODY


def test_only_a_bare_published_name_is_fetched(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSEKIT_ULTRALYTICS_RELEASES", server)
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path))
    assert fetch_published("my-own.pt") is None
    assert fetch_published("weights/yolo11n-pose.pt") is None  # a path: the user's, not theirs
    with pytest.raises(FileNotFoundError):
        Model("weights/yolo11n-pose.pt")
    assert Handler.requests == []
    with pytest.raises(UserError, match="answered 404"):
        Model("yolo11n-pose.pt")  # served by nobody here
    assert Handler.requests == ["/v8.4.0/yolo11n-pose.pt"]
    assert download.cache_folder() == tmp_path
