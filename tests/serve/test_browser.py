"""The page at `/` in a real browser: Debian's chromium, headless, driven by Selenium through
Debian's chromium-driver (no browser download). An uploaded image is drawn on the canvas in
the schema's colours with a row per keypoint in the table, the slider filters without a new
request, and Chromium's fake camera (a still of the people, as a Y4M clip) goes over the
WebSocket and comes back with stable track ids. Screenshots are kept in the test's folder, and
in $POSEKIT_SCREENSHOTS when it is set (the README's picture comes from there)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from posekit.serve.harness import ServerProcess

pytestmark = pytest.mark.slow

webdriver = pytest.importorskip("selenium.webdriver")
httpx = pytest.importorskip("httpx")

#: CI sets this so that a missing browser fails the run instead of skipping the test
REQUIRE_ENV = "POSEKIT_REQUIRE_BROWSER"


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = "Debian's chromium and chromium-driver are not installed (apt-get install them)"
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(message)
    pytest.skip(message)


def fake_camera_clip(image: Path, path: Path, frames: int = 10) -> Path:
    """A Y4M clip (the format Chromium's fake camera reads) of `image` standing still."""
    bgr = cv2.imread(str(image))
    h, w = (bgr.shape[0] // 2) * 2, (bgr.shape[1] // 2) * 2
    planes = cv2.cvtColor(bgr[:h, :w], cv2.COLOR_BGR2YUV_I420)  # Y, then U, then V
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + planes.tobytes())
    return path


@pytest.fixture(scope="module")
def people_image(four_people: Path) -> Path:
    return sorted((four_people.parent / "images").rglob("*.jpg"))[0]


@pytest.fixture(scope="module")
def browser(people_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium, driver_path = _browser_paths()
    from selenium.webdriver.chrome.service import Service

    clip = fake_camera_clip(people_image, tmp_path_factory.mktemp("camera") / "people.y4m")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,800", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={clip}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def _wait(check: Callable[[], Any], seconds: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _screenshot(driver: Any, folder: Path, name: str) -> None:
    driver.save_screenshot(str(folder / name))
    if os.environ.get("POSEKIT_SCREENSHOTS"):
        out = Path(os.environ["POSEKIT_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out / name))


def _pixel(driver: Any, x: float, y: float) -> tuple[int, int, int]:
    rgba = driver.execute_script(
        "return Array.from(document.getElementById('canvas').getContext('2d')"
        ".getImageData(arguments[0], arguments[1], 1, 1).data);",
        int(x),
        int(y),
    )
    return int(rgba[0]), int(rgba[1]), int(rgba[2])


def _css(colour: str) -> tuple[int, int, int]:
    assert colour.startswith("#") and len(colour) == 7, colour
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _rows(driver: Any) -> int:
    return int(driver.execute_script("return document.querySelectorAll('#table tbody tr').length"))


def _slide(driver: Any, value: float) -> None:
    driver.execute_script(
        "const s = document.getElementById('conf'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('input'));",
        str(value),
    )


def test_page_draws_an_upload_and_the_webcam_stream(
    live_server: ServerProcess, browser: Any, people_image: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    card = httpx.get(live_server.url + "/v1/model").json()
    expected = httpx.post(
        live_server.url + "/v1/predict",
        files={"image": ("p.jpg", people_image.read_bytes())},
        data={"conf": "0.01"},  # what the page asks for: the slider filters after
        timeout=30,
    ).json()["instances"]
    assert expected, "the fixture's model finds nobody: nothing to draw"

    browser.get(live_server.url + "/")
    _wait(lambda: browser.find_element(By.ID, "status").text == "ready", what="the model card")
    assert card["name"] in browser.find_element(By.ID, "model-name").text

    browser.find_element(By.ID, "file").send_keys(str(people_image))
    predicted = _wait(
        lambda: browser.execute_script("return document.body.dataset.predicted"),
        what="the upload's answer",
    )
    assert int(predicted) == len(expected)
    _screenshot(browser, tmp_path, "serve_page_upload.png")

    # rows: one per keypoint of every instance at or above the slider's 0.25
    keypoints = len(card["schemas"][0]["keypoints"])
    shown = [inst for inst in expected if inst["confidence"] >= 0.25]
    assert shown and _rows(browser) == len(shown) * keypoints

    # the last visible keypoint of the last shown instance is drawn last: its centre pixel is
    # exactly its colour in the schema
    kpt_conf = card["settings"]["kpt_conf"]
    last = shown[-1]
    j = max(i for i, p in enumerate(last["keypoints"]) if p["confidence"] >= kpt_conf)
    p = last["keypoints"][j]
    colour = _css(card["schemas"][last["class"]]["keypoint_css"][j])
    assert _pixel(browser, p["x"], p["y"]) == colour
    raw = cv2.imread(str(people_image))[int(p["y"]), int(p["x"])][::-1]
    assert tuple(int(v) for v in raw) != colour  # the colour is the drawing, not the photo

    # the slider filters what is drawn and listed, without asking the server again
    requests_before = _predict_requests(live_server)
    _slide(browser, 1.0)
    assert _rows(browser) == 0
    _slide(browser, 0.0)
    assert _rows(browser) == len(expected) * keypoints
    assert _predict_requests(live_server) == requests_before

    # the webcam (Chromium's fake camera playing the still) over the WebSocket: track ids
    browser.find_element(By.ID, "webcam").click()
    _wait(
        lambda: int(browser.execute_script("return document.body.dataset.frames || 0")) >= 3,
        what="three webcam frames",
    )
    first = browser.execute_script("return document.body.dataset.tracks")
    _wait(
        lambda: int(browser.execute_script("return document.body.dataset.frames || 0")) >= 8,
        what="eight webcam frames",
    )
    later = browser.execute_script("return document.body.dataset.tracks")
    assert first and first == later, (first, later)  # a still scene keeps its ids
    assert "frames/s" in browser.find_element(By.ID, "fps").text
    _screenshot(browser, tmp_path, "serve_page_webcam.png")
    browser.find_element(By.ID, "webcam").click()
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, json.dumps(errors)


def _predict_requests(server: ServerProcess) -> float:
    """POSTs to /v1/predict the server has counted (from /metrics)."""
    total = 0.0
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith("posekit_requests_total{") and 'route="/v1/predict"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_fake_camera_clip_is_a_y4m_of_the_image(people_image: Path, tmp_path: Path) -> None:
    clip = fake_camera_clip(people_image, tmp_path / "c.y4m", frames=2)
    data = clip.read_bytes()
    header, rest = data.split(b"\n", 1)
    w, h = (int(t[1:]) for t in header.split()[1:3])
    frame = w * h * 3 // 2
    assert len(rest) == 2 * (len(b"FRAME\n") + frame)
    y = np.frombuffer(rest[6 : 6 + w * h], np.uint8).reshape(h, w)
    gray = cv2.cvtColor(cv2.imread(str(people_image))[:h, :w], cv2.COLOR_BGR2GRAY).astype(float)
    # OpenCV's I420 is BT.601 limited range (luma 16..235), what Chromium's Y4M reader expects
    assert np.abs(y - (16 + gray * 219 / 255)).mean() < 1
