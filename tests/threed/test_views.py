"""Reading a camera's 2D keypoints: OpenPose's per-frame JSON and posekit's tracked events,
in OpenCV's pixel convention (posekit's events are half a pixel off it), every problem one
line with its place, and nothing left out without a word."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from posekit.schema import get_schema
from posekit.threed.views import read_events, read_openpose, read_view, view_schema
from posekit.utils.errors import UserError

BODY25B = get_schema("body25b")


def _openpose_frame(folder: Path, name: str, people: list[np.ndarray | list]) -> None:
    folder.mkdir(exist_ok=True)
    body = [
        {"person_id": [-1], "pose_keypoints_2d": np.asarray(p).ravel().tolist()} for p in people
    ]
    (folder / name).write_text(json.dumps({"version": 1.3, "people": body}))


def test_openpose_frames_read_in_order_with_missing_points_nan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    person = np.tile([100.0, 200.0, 0.9], (25, 1))
    person[3] = [0.0, 0.0, 0.0]  # OpenPose's "not found"
    for n in (2, 0, 1):
        _openpose_frame(tmp_path, f"cam1.{n:04d}.json", [person + [n, 0, 0]] * (n + 1))
    _openpose_frame(tmp_path, "cam1.0003.json", [[]])  # a person without body points
    _openpose_frame(tmp_path, "del_000000_0.json", [])  # another stream in the folder
    with caplog.at_level(logging.WARNING, logger="posekit.threed.views"):
        view = read_openpose("cam1", tmp_path, BODY25B)
    assert view.frames.tolist() == [0, 1, 2, 3]
    assert view.keypoints.shape == (4, 3, 25, 3)
    assert view.keypoints[2, 2, 0].tolist() == [102.0, 200.0, 0.9]
    assert np.isnan(view.keypoints[:, :, 3]).all()
    assert np.isnan(view.keypoints[0, 1:]).all() and np.isnan(view.keypoints[3]).all()
    assert (view.ids == -1).all()
    assert "left out: del_000000_N.json (1 files)" in caplog.text


@pytest.mark.parametrize(
    ("person", "message"),
    [
        (np.zeros(72), "72 pose_keypoints_2d numbers, body25b has 25 keypoints x 3 = 75"),
        ([1e300] * 75, "is not a finite coordinate"),
    ],
)
def test_a_bad_openpose_frame_is_one_line_with_its_place(
    tmp_path: Path, person: list, message: str
) -> None:
    _openpose_frame(tmp_path, "cam1.0000.json", [np.zeros(75)])
    _openpose_frame(tmp_path, "cam1.0001.json", [np.zeros(75), person])
    with pytest.raises(UserError, match=r"cam1\.0001\.json: person 1: ") as e:
        read_openpose("cam1", tmp_path, BODY25B)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_an_openpose_frame_that_is_not_json_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x_000000000007_keypoints.json").write_text("{not json")
    with pytest.raises(UserError, match=r"x_000000000007_keypoints.json: invalid JSON"):
        read_openpose("cam1", tmp_path, BODY25B)


def _event(frame: int, track: int, names: tuple[str, ...], x: float) -> str:
    points = [{"name": n, "x": x + i, "y": 50.5, "confidence": 0.8} for i, n in enumerate(names)]
    points[1] = {"name": names[1], "x": None, "y": None, "confidence": None}
    event = {
        "schema": "posekit.track/1",
        "source": "a.mp4",
        "frame": frame,
        "timestamp": 0.0,
        "track_id": track,
        "class_id": 0,
        "class": "person",
        "confidence": 0.9,
        "box": [0, 0, 1, 1],
        "keypoints": points,
    }
    return json.dumps(event) + "\n"


def test_track_events_read_with_their_ids_in_opencv_pixels(tmp_path: Path) -> None:
    coco = get_schema("coco17")
    path = tmp_path / "cam1.jsonl"
    path.write_text(
        _event(5, 3, coco.keypoints, 10.5)
        + "\n"
        + _event(5, 7, coco.keypoints, 20.5)
        + _event(6, 7, coco.keypoints, 30.5)
    )
    view = read_view("cam1", path, coco)
    assert view.frames.tolist() == [5, 6]
    assert view.ids.tolist() == [[3, 7], [7, -1]]
    # posekit's continuous pixels (centre of the first pixel at 0.5) are OpenCV's minus 0.5
    assert view.keypoints[0, 1, 0].tolist() == [20.0, 50.0, 0.8]
    assert np.isnan(view.keypoints[:, :, 1]).all()
    assert np.isnan(view.keypoints[1, 1]).all()
    assert view_schema(None, [path]).name == "person"
    assert view.shifted(2).frames.tolist() == [3, 4]


def test_events_of_another_schema_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cam1.jsonl"
    path.write_text(_event(0, 1, get_schema("coco17").keypoints, 1.5))
    with pytest.raises(UserError, match=r"cam1.jsonl:1: the event's keypoints .* schema body25b"):
        read_events("cam1", path, BODY25B)
    arm = tmp_path / "arm.jsonl"
    arm.write_text(_event(0, 1, ("a", "b", "c"), 1.5))
    with pytest.raises(UserError, match="are no preset's: give --schema"):
        view_schema(None, [arm])
    with pytest.raises(UserError, match="OpenPose folders do not name their keypoints"):
        view_schema(None, [tmp_path])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"schema": "posekit.track/2"}', "not a posekit.track/1 event"),
        ("[1, 2", "invalid JSON"),
        ('{"schema": "posekit.track/1", "frame": -1, "track_id": 1}', "'frame' must be"),
        ('{"schema": "posekit.track/1", "frame": 1, "track_id": true}', "'track_id' must be"),
    ],
)
def test_a_bad_event_line_is_one_line_with_its_number(
    tmp_path: Path, line: str, message: str
) -> None:
    coco = get_schema("coco17")
    path = tmp_path / "cam1.jsonl"
    path.write_text(_event(0, 1, coco.keypoints, 1.5) + line + "\n")
    with pytest.raises(UserError, match=f"cam1.jsonl:2: {message}"):
        read_events("cam1", path, coco)


def test_predictions_json_reads_by_frame_or_by_file_name(tmp_path: Path) -> None:
    coco = get_schema("coco17")

    def entry(x: float) -> dict:
        return {"image_id": 1, "category_id": 1, "score": 0.9, "keypoints": [x, 10.5, 0.8] * 17}

    video = [
        entry(5.5) | {"file_name": "a.mp4", "frame": 7},
        entry(6.5) | {"file_name": "a.mp4", "frame": 3},
    ]
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(video))
    view = read_view("cam1", path, coco)
    assert view.frames.tolist() == [3, 7]
    assert view.keypoints[0, 0, 0].tolist() == [6.0, 10.0, 0.8]  # OpenCV's pixels
    images = [
        entry(1.5) | {"file_name": "b/0002.png"},
        entry(2.5) | {"file_name": "b/0001.png"},
        entry(3.5) | {"file_name": "b/0001.png"},
    ]
    path.write_text(json.dumps(images))
    view = read_view("cam1", path, coco)
    assert view.frames.tolist() == [0, 1]  # the images' sorted order
    assert view.keypoints[0, :, 0, 0].tolist() == [2.0, 3.0]
    path.write_text(json.dumps([{"keypoints": [1, 2, 3]}]))
    with pytest.raises(UserError, match="entry 0: 3 keypoint numbers, person has 17 x 3"):
        read_view("cam1", path, coco)


def test_an_overlong_event_line_is_one_line(tmp_path: Path) -> None:
    coco = get_schema("coco17")
    path = tmp_path / "cam1.jsonl"
    path.write_text(_event(0, 1, coco.keypoints, 1.5) + '{"pad": "' + "x" * (2 << 20) + '"}\n')
    with pytest.raises(UserError, match=r"cam1\.jsonl:2: a line of more than 1048576 bytes"):
        read_events("cam1", path, coco)
