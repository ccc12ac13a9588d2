"""`posekit serve`'s app through FastAPI's test client: every route, and every refusal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from posekit import Model
from posekit.serve.app import create_app
from posekit.serve.batcher import Batcher, Busy
from posekit.serve.config import REQUEST_SETTINGS, ServeConfig
from posekit.serve.harness import png_header
from posekit.serve.metrics import ServerMetrics


def _jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def trained(overfit_run) -> Model:  # type: ignore[no-untyped-def]
    return Model(overfit_run.best)


@pytest.fixture(scope="module")
def people_jpeg(four_people: Path) -> tuple[bytes, np.ndarray]:
    path = sorted((four_people.parent / "images").rglob("*.jpg"))[0]
    data = path.read_bytes()
    return data, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def _client(model: Model, **config: object) -> TestClient:
    # addressed as a browser on this machine would (the app answers IP addresses and localhost)
    app = create_app(model, ServeConfig(**config))
    return TestClient(app, base_url="http://127.0.0.1")  # type: ignore[arg-type]


def test_predict_gives_exactly_the_librarys_instances(trained: Model, people_jpeg) -> None:  # type: ignore[no-untyped-def]
    data, image = people_jpeg
    settings = {"conf": 0.3, "iou": 0.5, "max_det": 20, "kpt_conf": 0.4}
    expected = trained.predict(image, **settings)[0]
    with _client(trained) as c:
        r = c.post(
            "/v1/predict",
            files={"image": ("p.jpg", data, "image/jpeg")},
            data={k: str(v) for k, v in settings.items()},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == {"width": image.shape[1], "height": image.shape[0]}
    got = body["instances"]
    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected.to_dicts(), strict=True):
        assert g["class"] == e["class"] and abs(g["confidence"] - e["confidence"]) < 1e-4
        gxy = np.array([[k["x"], k["y"]] for k in g["keypoints"]])
        exy = np.array([[k["x"], k["y"]] for k in e["keypoints"]])
        assert np.abs(gxy - exy).max() < 0.01


def test_requests_batched_together_give_the_same_answers(trained: Model, people_jpeg) -> None:  # type: ignore[no-untyped-def]
    """Eight clients at once share network passes (the batch-size histogram says so) and
    each gets what it would get alone."""
    data, image = people_jpeg
    alone = trained.predict(image, conf=0.3)[0]
    app = create_app(trained, ServeConfig(max_batch=8, max_wait_ms=300))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        import concurrent.futures as cf

        with cf.ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda _: c.post(
                        "/v1/predict",
                        files={"image": ("p.jpg", data, "image/jpeg")},
                        data={"conf": "0.3"},
                    ),
                    range(8),
                )
            )
        metrics = c.get("/metrics").text
    assert all(a.status_code == 200 for a in answers)
    for a in answers:
        xy = np.array([[k["x"], k["y"]] for i in a.json()["instances"] for k in i["keypoints"]])
        assert np.abs(xy - alone.keypoints.xy.reshape(-1, 2)).max() < 0.01
    count = float(metrics.split("posekit_batch_size_count ")[1].split()[0])
    assert count < 8, metrics  # fewer network passes than requests


def test_draw_answers_the_annotated_jpeg(trained: Model, people_jpeg) -> None:  # type: ignore[no-untyped-def]
    data, image = people_jpeg
    with _client(trained) as c:
        r = c.post("/v1/predict?draw=1", files={"image": ("p.jpg", data, "image/jpeg")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    drawn = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == image.shape and np.abs(drawn.astype(int) - image).mean() > 0.5


def test_batch_route_answers_every_image_in_order(trained: Model, people_jpeg) -> None:  # type: ignore[no-untyped-def]
    data, image = people_jpeg
    small = _jpeg(cv2.resize(image, (96, 96)))
    with _client(trained) as c:
        r = c.post(
            "/v1/predict/batch",
            files=[
                ("images", ("a.jpg", data, "image/jpeg")),
                ("images", ("b.jpg", small, "image/jpeg")),
            ],
        )
    assert r.status_code == 200
    sizes = [a["image"] for a in r.json()["results"]]
    assert sizes == [
        {"width": image.shape[1], "height": image.shape[0]},
        {"width": 96, "height": 96},
    ]


def test_model_card_and_health() -> None:
    with _client(Model("rtpose-n")) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        card = c.get("/v1/model").json()
        page = c.get("/")
    assert card["family"] == "rtpose" and card["classes"] == ["person"]
    schema = card["schemas"][0]
    assert len(schema["keypoints"]) == 17 and len(schema["edge_css"]) == len(schema["skeleton"])
    assert card["input_mode"] == "letterbox" and card["backend"] == "pytorch"
    assert sorted(card["settings"]) == sorted(REQUEST_SETTINGS)
    assert (
        page.status_code == 200
        and "<canvas" in page.text
        and "http" not in page.text.split("<script>")[1].replace("https:", "")
    )  # nothing fetched from elsewhere


def test_form_fields_derive_from_the_prediction_config() -> None:
    """Names, ranges and defaults of the form fields are PredictConfig's, not retyped."""
    from posekit.predict import PredictConfig

    with _client(Model("rtpose-n")) as c:
        spec = c.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    form = next(v for k, v in schemas.items() if "predict_one" in k)["properties"]
    for name in REQUEST_SETTINGS:
        assert name in form, name
        assert str(getattr(PredictConfig, name)) in form[name]["description"]
    conf = next(s for s in form["conf"]["anyOf"] if s.get("type") == "number")
    assert (conf["minimum"], conf["maximum"]) == (0, 1)


@pytest.mark.parametrize(
    "files, data, status, needle",
    [
        ({"image": ("a.jpg", b"", "image/jpeg")}, {}, 400, "empty"),
        ({"image": ("a.jpg", b"not an image at all", "image/jpeg")}, {}, 400, "not an image"),
        ({"image": ("a.png", png_header(30000, 30000), "image/png")}, {}, 413, "over the limit"),
        ({"image": ("a.jpg", "TRUNC", "image/jpeg")}, {}, 400, "image"),
        ({"image": ("a.jpg", "GOOD", "image/jpeg")}, {"conf": "2"}, 422, "conf"),
        ({"image": ("a.jpg", "GOOD", "image/jpeg")}, {"imgsz": "100"}, 422, "imgsz"),
        ({"image": ("a.jpg", "GOOD", "image/jpeg")}, {"max_det": "x"}, 422, "max_det"),
        ({"image": ("a.jpg", "GOOD", "image/jpeg")}, {"boxes": "[[1, 2, 3, 4]]"}, 422, "boxes"),
        ({}, {}, 422, "image"),
    ],
)
def test_bad_input_is_one_line_of_json_with_its_status(files, data, status, needle) -> None:  # type: ignore[no-untyped-def]
    good = _jpeg(np.full((64, 64, 3), 120, np.uint8))
    for key, (name, content, kind) in list(files.items()):
        if content == "GOOD":
            files[key] = (name, good, kind)
        elif content == "TRUNC":
            files[key] = (name, good[: len(good) // 3], kind)
    with _client(Model("rtpose-n")) as c:
        r = c.post("/v1/predict", files=files or None, data=data)
    assert r.status_code == status, r.text
    body = r.json()
    assert needle in body["error"] and "Traceback" not in r.text and "/" not in body["error"][:1]
    if status == 422 and needle != "image":
        assert body["field"] == needle


def test_an_upload_over_the_limit_is_refused_before_it_is_read() -> None:
    with _client(Model("rtpose-n"), max_upload_mb=0.5) as c:
        r = c.post("/v1/predict", files={"image": ("a.jpg", b"\xff" * 800_000, "image/jpeg")})
        head = (
            b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n"
        )
        chunked = c.post(
            "/v1/predict",
            content=iter([head] + [b"x" * 300_000] * 3),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        garbled = c.post(
            "/v1/predict",
            content=b"x" * 1000,
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        still = c.get("/healthz")
    assert r.status_code == 413 and "0.5 MB" in r.json()["error"]
    assert chunked.status_code == 413
    assert garbled.status_code in (400, 422) and "error" in garbled.json()
    assert still.status_code == 200


def test_a_token_guards_every_route_but_health() -> None:
    with _client(Model("rtpose-n"), token="s3cret") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/v1/model").status_code == 401
        assert c.get("/metrics").status_code == 401
        assert c.get("/v1/model", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/v1/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        from starlette.websockets import WebSocketDisconnect

        with (
            pytest.raises(WebSocketDisconnect) as e,
            c.websocket_connect("ws://127.0.0.1/v1/stream"),
        ):
            pass
        assert e.value.code == 1008
        with c.websocket_connect("ws://127.0.0.1/v1/stream?token=s3cret") as ws:
            ws.send_text("{}")
            assert ws.receive_json() == {"settings": {}}


def test_the_stream_tracks_with_stable_ids_and_survives_garbage(
    trained: Model, people_jpeg
) -> None:  # type: ignore[no-untyped-def]
    from jsonschema import validate

    from posekit.track.events import event_schema

    data, _ = people_jpeg
    with _client(trained) as c, c.websocket_connect("ws://127.0.0.1/v1/stream") as ws:
        frames = []
        for i in range(4):
            if i == 2:
                ws.send_bytes(b"garbage")
                assert "error" in ws.receive_json()
                ws.send_text("not json")
                assert "error" in ws.receive_json()
            ws.send_bytes(data)
            frames.append(ws.receive_json())
    schema = event_schema()
    for events in frames:
        for e in events:
            validate(e, schema)
    ids = [sorted(e["track_id"] for e in events) for events in frames]
    assert ids[-1] and ids[-1] == ids[-2], ids  # confirmed tracks keep their ids
    assert [e["frame"] for e in frames[-1]] == [3] * len(frames[-1])


def test_a_full_queue_is_refused_not_grown() -> None:
    """With one image allowed to wait, a third concurrent request gets Busy (503) while the
    first runs and the second waits."""
    import threading

    release = threading.Event()

    def slow(images, settings, boxes):  # type: ignore[no-untyped-def]
        release.wait(5)
        return [f"result {len(images)}"] * len(images)

    async def scenario() -> list[object]:
        b = Batcher(slow, max_batch=1, max_wait_ms=0, queue_size=1, metrics=ServerMetrics())
        b.start()
        img = np.zeros((4, 4, 3), np.uint8)
        first = asyncio.create_task(b.submit(img, {}))
        await asyncio.sleep(0.05)  # the first is running
        second = asyncio.create_task(b.submit(img, {}))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy):
            await b.submit(img, {})
        release.set()
        out = await asyncio.gather(first, second)
        await b.stop()
        return out

    assert asyncio.run(scenario()) == ["result 1", "result 1"]


def test_a_client_that_leaves_costs_no_network_pass() -> None:
    calls: list[int] = []

    def run(images, settings, boxes):  # type: ignore[no-untyped-def]
        calls.append(len(images))
        return ["r"] * len(images)

    async def scenario() -> None:
        b = Batcher(run, max_batch=8, max_wait_ms=100, queue_size=8, metrics=ServerMetrics())
        b.start()
        img = np.zeros((4, 4, 3), np.uint8)
        gone = asyncio.create_task(b.submit(img, {}))
        kept = asyncio.create_task(b.submit(img, {}))
        await asyncio.sleep(0.01)
        gone.cancel()
        assert await kept == "r"
        await b.stop()

    asyncio.run(scenario())
    assert calls == [1]


def test_waiting_for_company_only_when_requests_come_close_together() -> None:
    """Sparse arrivals (one client) are run at once, not held for max_wait; a burst of
    arrivals closer than max_wait is waited for and shares one pass."""
    import time

    calls: list[int] = []

    def run(images, settings, boxes):  # type: ignore[no-untyped-def]
        calls.append(len(images))
        return ["r"] * len(images)

    async def scenario() -> tuple[float, list[int]]:
        b = Batcher(run, max_batch=8, max_wait_ms=200, queue_size=8, metrics=ServerMetrics())
        b.start()
        img = np.zeros((4, 4, 3), np.uint8)
        for _ in range(3):  # one client, 0.3 s apart: longer than max_wait
            await b.submit(img, {})
            await asyncio.sleep(0.3)
        t0 = time.perf_counter()
        await b.submit(img, {})
        alone = time.perf_counter() - t0
        calls.clear()
        for _ in range(6):  # a burst: arrivals closer than max_wait teach the batcher to wait
            await asyncio.gather(*(b.submit(img, {}) for _ in range(2)))
        first = asyncio.create_task(b.submit(img, {}))
        await asyncio.sleep(0.05)  # a second request 50 ms later still shares the pass
        await asyncio.gather(first, b.submit(img, {}))
        await b.stop()
        return alone, calls[-1:]

    alone, last = asyncio.run(scenario())
    assert alone < 0.1  # not held for the 200 ms
    assert last == [2]


def test_metrics_count_requests_and_refusals() -> None:
    with _client(Model("rtpose-n")) as c:
        c.post("/v1/predict", files={"image": ("a.jpg", b"nope", "image/jpeg")})
        text = c.get("/metrics").text
    assert 'posekit_requests_total{route="/v1/predict",status="400"} 1.0' in text
    assert 'posekit_errors_total{reason="400"} 1.0' in text
    assert json.dumps  # the exposition is text, not JSON


def test_workers_note_says_why_one_process_and_exits_0() -> None:
    from click.testing import CliRunner

    from posekit.cli.main import cli

    out = CliRunner().invoke(cli, ["serve", "--workers-note"])
    assert out.exit_code == 0, out.output
    assert "one process" in out.output and "reverse proxy" in out.output
    assert "--model" not in out.output  # printed before the required options are checked
