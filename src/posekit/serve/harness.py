"""A real `posekit serve` in a child process, and hostile inputs, for the end-to-end tests and
`benchmarks/serve_load.py`: start on a free loopback port, wait for `/healthz`, read the log
and the resident memory, stop with Ctrl-C's signal (a clean shutdown, as a user would)."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServerProcess:
    """One running server: its base URL, process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def text(self) -> str:
        """The server's log so far (stdout and stderr together)."""
        return self.log.read_text(errors="replace")

    def rss_mb(self) -> float:
        """Resident memory of the server process in MiB (Linux: /proc/PID/status)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("VmRSS missing from /proc status")

    def stop(self, timeout: float = 20) -> int:
        """Ctrl-C, then the exit code (killed, and an error, if it does not stop in time)."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: str, log: Path, *args: str, timeout: float = 120) -> ServerProcess:
    """`posekit serve --model model *args` on a free loopback port, once `/healthz` answers."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "posekit", "serve", "--model", model, "--port", str(port), *args]
    handle = log.open("wb")
    process = subprocess.Popen(
        cmd, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"}
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"posekit serve exited: {log.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return ServerProcess(url, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"posekit serve did not start in {timeout} s: {log.read_text()}")


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height and holds no pixels (a decompression bomb's
    first bytes: a server must refuse it from the header, before it allocates anything)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )
