"""The server under hostile requests (Hardening III): each request's cost is bounded (imgsz,
given boxes, decoded pixels of a batch), every value it parses is checked (depth, size, type,
unknown fields), it answers only its own addresses and page without a token, and its
connections are bounded (headers in time, a connection limit that evicts idle ones, malformed
HTTP answered in JSON)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from posekit import Model
from posekit.serve.app import MAX_JSON_DEPTH, create_app
from posekit.serve.config import ServeConfig
from posekit.serve.protocol import guarded_protocol


def _jpeg(h: int = 64, w: int = 96) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def whole() -> Model:
    return Model("rtpose-n")


@pytest.fixture(scope="module")
def top_down() -> Model:
    return Model("heatpose-t")


def _client(model: Model, base: str = "http://127.0.0.1", **config: object) -> TestClient:
    return TestClient(create_app(model, ServeConfig(**config)), base_url=base)  # type: ignore[arg-type]


def _post(c: TestClient, **data: str) -> tuple[int, dict]:
    r = c.post("/v1/predict", files={"image": ("a.jpg", _jpeg())}, data=data)
    return r.status_code, r.json()


def test_a_requests_input_size_is_capped(whole: Model) -> None:
    with _client(whole, max_imgsz=320) as c:
        assert _post(c, imgsz="320")[0] == 200
        code, body = _post(c, imgsz="4096")
        assert code == 422 and body["field"] == "imgsz" and "--max-imgsz" in body["error"]
        assert _post(c, imgsz="640")[0] == 200  # the model's own size is always allowed


@pytest.mark.parametrize(
    ("boxes", "says"),
    [
        ("[" * 100_000 + "]" * 100_000, f"nests deeper than {MAX_JSON_DEPTH}"),
        ("[[0, 0, " + "9" * 400 + ", 1]]", "not valid JSON"),
        ("[[-1e308, -1e308, 1e308, 1e308]]", "within +-1e+06"),
        ("[[100, 100, 10, 10]]", "x1 < x2 and y1 < y2"),
        ("[[5, 5, 5, 5]]", "x1 < x2 and y1 < y2"),
        ("[[true, false, true, true]]", "JSON list of [x1, y1, x2, y2]"),
        (json.dumps([[10, 10, 60, 90]] * 65), "65 boxes is over the limit of 64"),
    ],
)
def test_given_boxes_are_checked_and_bounded(top_down: Model, boxes: str, says: str) -> None:
    with _client(top_down) as c:
        code, body = _post(c, boxes=boxes)
    assert code == 422 and body["field"] == "boxes" and says in body["error"], body


def test_max_det_caps_given_boxes_too(top_down: Model) -> None:
    with _client(top_down) as c:
        code, body = _post(c, boxes=json.dumps([[10, 10, 60, 90]] * 5), max_det="3")
        assert code == 422 and "5 boxes is over the limit of 3" in body["error"]
        assert _post(c, boxes=json.dumps([[10, 10, 60, 90]] * 3), max_det="3")[0] == 200


def test_an_unknown_form_field_and_mistyped_stream_settings_are_refused(whole: Model) -> None:
    with _client(whole) as c:
        code, body = _post(c, confidence="0.9")
        assert code == 422 and body["field"] == "confidence"
        with c.websocket_connect("ws://127.0.0.1/v1/stream") as ws:
            mistyped = [('{"flip": "yes"}', "flip"), ('{"max_det": 1.5}', "max_det")]
            for text, name in [*mistyped, ('{"imgsz": 64.0}', "imgsz")]:
                ws.send_text(text)
                assert ws.receive_json()["field"] == name
            ws.send_text("[" * 50_000 + "]" * 50_000)
            assert "nests deeper" in ws.receive_json()["error"]
            ws.send_text('{"conf": 0.5}')  # the connection is still open
            assert ws.receive_json() == {"settings": {"conf": 0.5}}


def test_a_batch_never_holds_more_decoded_pixels_than_the_limit(
    whole: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six 64x96 images with a limit of two images' pixels: run two at a time."""
    held: list[int] = []
    app = create_app(whole, ServeConfig(max_pixels=2 * 64 * 96))
    service = app.state.service
    original = service.predict

    async def counting(image, settings, boxes):  # type: ignore[no-untyped-def]
        held.append(image.shape[0] * image.shape[1])
        return await original(image, settings, boxes)

    monkeypatch.setattr(service, "predict", counting)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        files = [("images", (f"{i}.jpg", _jpeg())) for i in range(6)]
        r = c.post("/v1/predict/batch", files=files)
    assert r.status_code == 200 and len(r.json()["results"]) == 6 and len(held) == 6


def test_without_a_token_only_this_machines_addresses_and_page_are_served(whole: Model) -> None:
    with _client(whole, base="http://evil.example") as c:
        r = c.get("/v1/model")
        assert r.status_code == 403 and "evil.example" in r.json()["error"]
    with _client(whole) as c:
        assert c.get("/v1/model").status_code == 200
        for origin in ("http://evil.example", "http://evil.example:80"):
            with (
                pytest.raises(WebSocketDisconnect),
                c.websocket_connect("ws://127.0.0.1/v1/stream", headers={"origin": origin}),
            ):
                pass
        same = {"origin": "http://127.0.0.1"}
        with c.websocket_connect("ws://127.0.0.1/v1/stream", headers=same) as ws:
            ws.send_text('{"conf": 0.5}')
            assert "settings" in ws.receive_json()
    with _client(whole, base="http://pose.example", token="t") as c:  # a token serves names
        assert c.get("/v1/model", headers={"authorization": "Bearer t"}).status_code == 200


def test_with_a_token_the_api_description_needs_it_and_no_cdn_page_is_served(
    whole: Model,
) -> None:
    with _client(whole, token="t") as c:
        assert c.get("/openapi.json").status_code == 401
        assert c.get("/openapi.json", headers={"authorization": "Bearer t"}).status_code == 200
        assert c.get("/docs").status_code in (401, 404)
        assert c.get("/docs", headers={"authorization": "Bearer t"}).status_code == 404
        assert c.get("/healthz").status_code == 200


@pytest.fixture
def guarded_server(whole: Model) -> Iterator[int]:
    """The app under uvicorn with the guarded protocol: headers within 0.5 s, body data at
    least every 0.5 s, 5 connections."""
    import uvicorn

    refused: list[str] = []
    app = create_app(whole, ServeConfig(body_timeout=0.5))
    protocol = guarded_protocol(0.5, 5, refused.append)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=protocol, log_level="error")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield port
    server.should_exit = True
    thread.join(10)


def _get(port: int, path: str = "/healthz", host: str = "127.0.0.1") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def _closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_idle_connections_are_closed_and_evicted_for_real_requests(guarded_server: int) -> None:
    port = guarded_server
    idle = []
    for _ in range(12):  # twice the connection limit, each half a request
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        idle.append(s)
    time.sleep(0.2)
    assert _get(port).startswith(b"HTTP/1.1 200")  # an idle one made room
    time.sleep(1.0)  # past the header timeout: every idle one is closed
    assert all(_closed(s) for s in idle)
    for s in idle:
        s.close()


def test_malformed_http_is_one_line_of_json(guarded_server: int) -> None:
    with socket.create_connection(("127.0.0.1", guarded_server), timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
    assert "error" in json.loads(body)


def test_a_body_that_stalls_is_cut(guarded_server: int, caplog: pytest.LogCaptureFixture) -> None:
    with socket.create_connection(("127.0.0.1", guarded_server), timeout=10) as s:
        s.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
        )
        start = time.monotonic()
        while s.recv(65536):
            pass
        assert time.monotonic() - start < 5
    assert "no body data for 0.5 s" in caplog.text
