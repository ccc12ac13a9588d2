"""A seeded fuzz test of the server's inputs: form fields (settings and `boxes`) of
`/v1/predict`, and WebSocket messages (JSON settings, mutated JPEG frames). Whatever a case
sends, the answer is a result or one line of JSON with a client-error status (400, 413, 422;
never 500), the WebSocket answers every message and stays open, and each case takes bounded
time and the run bounded memory (`fuzzing.fuzz`)."""

from __future__ import annotations

import json
import random
from typing import Any

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from fuzzing import HOSTILE_VALUES, fuzz, mutate_bytes, mutate_json
from posekit import Model
from posekit.serve.app import create_app
from posekit.serve.config import REQUEST_SETTINGS, ServeConfig

VALID_SETTINGS = {"conf": 0.3, "iou": 0.5, "max_det": 20, "imgsz": 320, "flip": False}
VALID_BOXES = [[10, 10, 60, 90], [20, 5, 50, 40]]


def _jpeg() -> bytes:
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def _form_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, allow_nan=True)


def _answer_is_one_line(status: int, text: str) -> tuple[int, str]:
    """(0, "") for a result, (2, "posekit: error: ...") for a refusal of one JSON line."""
    assert status in (200, 400, 413, 422), (status, text)
    if status == 200:
        return 0, ""
    body = json.loads(text)
    assert set(body) <= {"error", "field"} and "\n" not in body["error"], body
    return 2, f"posekit: error: {body['error']}"


@pytest.fixture(scope="module")
def clients() -> dict[str, TestClient]:
    made = {}
    for name in ("rtpose-n", "heatpose-t"):
        app = create_app(Model(name), ServeConfig())
        made[name] = TestClient(app, base_url="http://127.0.0.1").__enter__()
    yield made
    for c in made.values():
        c.__exit__(None, None, None)


@pytest.mark.parametrize("name", ["rtpose-n", "heatpose-t"])
def test_fuzz_form_fields(clients: dict[str, TestClient], name: str) -> None:
    client, image = clients[name], _jpeg()

    def case(rng: random.Random, i: int) -> tuple[int, str]:
        form = {k: _form_value(v) for k, v in mutate_json(VALID_SETTINGS, rng).items()}
        if name == "heatpose-t":
            form["boxes"] = _form_value(mutate_json(VALID_BOXES, rng))
        if rng.random() < 0.2:  # a field of no setting, or a setting as hostile text
            form[rng.choice([*REQUEST_SETTINGS, "confidence"])] = str(rng.choice(HOSTILE_VALUES))
        r = client.post("/v1/predict", files={"image": ("a.jpg", image)}, data=form)
        return _answer_is_one_line(r.status_code, r.text)

    fuzz(case, seed=21 if name == "rtpose-n" else 22)


def test_fuzz_websocket_messages(clients: dict[str, TestClient]) -> None:
    image = _jpeg()
    with clients["rtpose-n"].websocket_connect("ws://127.0.0.1/v1/stream") as ws:

        def case(rng: random.Random, i: int) -> tuple[int, str]:
            if i % 2:
                ws.send_bytes(mutate_bytes(image, rng))
            else:
                ws.send_text(json.dumps(mutate_json(VALID_SETTINGS, rng), allow_nan=True))
            reply = ws.receive_json()
            if isinstance(reply, dict) and "error" in reply:
                assert "\n" not in reply["error"]
                return 2, f"posekit: error: {reply['error']}"
            return 0, ""

        fuzz(case, seed=23)
        ws.send_text(json.dumps({"conf": 0.5}))  # still open and served
        assert ws.receive_json() == {"settings": {"conf": 0.5}}
