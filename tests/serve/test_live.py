"""End to end against a real uvicorn process: HTTP, the WebSocket, and faults that must not
disturb other clients."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import numpy as np
import pytest

from posekit.serve.harness import ServerProcess, png_header, start_server

httpx = pytest.importorskip("httpx")
websockets = pytest.importorskip("websockets")


def _image(four_people: Path) -> bytes:
    return sorted((four_people.parent / "images").rglob("*.jpg"))[0].read_bytes()


def test_predict_stream_and_metrics_over_real_sockets(
    live_server: ServerProcess, four_people: Path
) -> None:
    data = _image(four_people)
    r = httpx.post(
        live_server.url + "/v1/predict",
        files={"image": ("p.jpg", data)},
        data={"conf": "0.3"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["instances"], r.text

    async def stream() -> list[list[dict]]:
        ws_url = live_server.url.replace("http", "ws") + "/v1/stream"
        async with websockets.connect(ws_url) as ws:
            out = []
            for _ in range(3):
                await ws.send(data)
                out.append(json.loads(await ws.recv()))
            return out

    frames = asyncio.run(stream())
    assert frames[-1] and {e["track_id"] for e in frames[-1]} == {e["track_id"] for e in frames[-2]}
    metrics = httpx.get(live_server.url + "/metrics").text
    assert "posekit_batch_size_count" in metrics and "posekit_streams 0.0" in metrics


def test_faults_are_refused_and_other_clients_keep_being_served(
    live_server: ServerProcess, four_people: Path
) -> None:
    """A client that disconnects mid-upload, malformed multipart, a 30000x30000 PNG header
    and a WebSocket sending garbage, while a well-behaved client keeps predicting: its error
    count stays 0, and the server logs one line per fault."""
    data = _image(four_people)
    host, port = live_server.url.removeprefix("http://").split(":")

    async def good_client(n: int) -> int:
        errors = 0
        async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as c:
            for _ in range(n):
                r = await c.post("/v1/predict", files={"image": ("p.jpg", data)})
                errors += r.status_code != 200
        return errors

    async def cut_upload() -> None:  # promises 1 MB, sends 1 kB, leaves
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
            b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + data[:1000]
        )
        await writer.drain()
        writer.close()
        await asyncio.sleep(1)  # the server notices the disconnect, and logs it

    async def faults() -> list[int]:
        async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as c:
            statuses = [
                (
                    await c.post(
                        "/v1/predict",
                        content=b"--b\r\ngarbage",
                        headers={"content-type": "multipart/form-data; boundary=b"},
                    )
                ).status_code,
                (
                    await c.post(
                        "/v1/predict", files={"image": ("a.png", png_header(30000, 30000))}
                    )
                ).status_code,
            ]
        ws_url = live_server.url.replace("http", "ws") + "/v1/stream"
        async with websockets.connect(ws_url) as ws:
            await ws.send(b"\x00garbage")
            statuses.append(400 if "error" in json.loads(await ws.recv()) else 200)
            await ws.send("{not json")
            statuses.append(400 if "error" in json.loads(await ws.recv()) else 200)
        async with websockets.connect(ws_url) as ws:  # leaves mid-stream
            await ws.send(data)
        await cut_upload()
        return statuses

    async def both() -> tuple[int, list[int]]:
        good, bad = await asyncio.gather(good_client(6), faults())
        return good, bad

    good_errors, statuses = asyncio.run(both())
    assert good_errors == 0
    assert statuses[0] in (400, 422) and statuses[1:] == [413, 400, 400]
    assert httpx.get(live_server.url + "/healthz").status_code == 200
    log = live_server.text()
    assert log.count("refused (413)") >= 1 and log.count("refused (stream-400)") >= 2
    assert "client left before its request was read" in log, log  # the cut upload
    assert "Traceback" not in log


def test_serve_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "posekit", "serve", "--model", "rtpose-n", "--max-batch", "0"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "--max-batch" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "posekit", "serve", "--model", str(tmp_path / "missing.pt")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "missing.pt" in out.stderr and "Traceback" not in out.stderr


def test_a_token_from_the_environment_guards_the_live_server(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("POSEKIT_TOKEN", "abc")
    server = start_server("rtpose-n", tmp_path / "log")
    try:
        assert httpx.get(server.url + "/v1/model").status_code == 401
        ok = httpx.get(server.url + "/v1/model", headers={"Authorization": "Bearer abc"})
        assert ok.status_code == 200 and ok.json()["family"] == "rtpose"
        with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))):
            pass  # bound on loopback
    finally:
        assert server.stop() == 0
    assert np.isfinite(1.0)
