"""`posekit triangulate` end to end on virtual cameras: each camera's people written as
`posekit track` events (posekit's pixel convention, half a pixel off OpenCV's), read back,
triangulated to the known 3D points, written as valid `posekit.track3d/1` events, a CSV, an
NPZ and pictures; bad input is one line and exit 2."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
import tomli_w
from rigs3d import COCO17, rig, seen, walkers

from cli_output import error_lines
from posekit.cli.main import main
from posekit.threed.outputs import track3d_schema

FRAMES = 8


def _write_events(path: Path, pixels: np.ndarray, frames: np.ndarray) -> None:
    """(N, F, K, 2) OpenCV pixels as posekit events (their pixel centres at .5)."""
    lines = []
    for f, frame in enumerate(frames):
        for n in range(len(pixels)):
            points = [
                {"name": name, "x": float(x) + 0.5, "y": float(y) + 0.5, "confidence": 0.9}
                for name, (x, y) in zip(COCO17.keypoints, pixels[n, f], strict=True)
            ]
            event = {
                "schema": "posekit.track/1",
                "source": path.stem,
                "frame": int(frame),
                "timestamp": f / 30,
                "track_id": n + 1,
                "class_id": 0,
                "class": "person",
                "confidence": 0.9,
                "box": [0.0, 0.0, 1.0, 1.0],
                "keypoints": points,
            }
            lines.append(json.dumps(event))
    path.write_text("\n".join(lines) + "\n")


def triangulate_args(folder: Path, views: list[str], *options: str) -> list[str]:
    """`posekit triangulate` on the scene's calibration and views, into folder/3d."""
    calibration = str(folder / "calibration.toml")
    return [
        "triangulate",
        "--calibration",
        calibration,
        *views,
        *options,
        "--out",
        str(folder / "3d"),
    ]


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, list[str], np.ndarray]:
    """A calibration.toml, one event file per camera (the last camera's clock 3 frames
    ahead), and the true (N, F, K, 3) points."""
    cameras = rig()
    cameras.write_toml(tmp_path / "calibration.toml")
    truth = walkers(FRAMES, [(-600.0, -400.0), (500.0, 500.0)])
    views = []
    for c, pixels in enumerate(seen(cameras, truth)):
        name = cameras.names[c]
        path = tmp_path / f"{name}.jsonl"
        _write_events(path, pixels, np.arange(FRAMES) + (3 if c == 3 else 0))
        views += ["--view", f"{name}={path}"]
    return tmp_path, views, truth


def test_triangulate_writes_the_known_points_and_valid_events(scene, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, views, truth = scene
    out = folder / "3d"
    args = triangulate_args(
        folder,
        views,
        "--offset",
        "cam3=3",
        "--people",
        "0",
        "--no-refine",
        "--no-preview",
        "--angle",
        "left_knee=left_hip,left_knee,left_ankle",
    )
    assert main(args) == 0, capsys.readouterr().err
    assert "2 people, 8 frames, 272 points" in capsys.readouterr().out
    data = np.load(out / "points3d.npz")
    assert data["points"].shape == (2, FRAMES, 17, 3)
    assert data["unit"] == "mm" and list(data["cameras"]) == ["cam0", "cam1", "cam2", "cam3"]
    for points in data["points"]:
        # exact to micrometres: a half-pixel slip in the conventions would be millimetres
        assert np.abs(points[None] - truth).max(-1).max(-1).max(-1).min() < 1e-3
    validator = jsonschema.Draft202012Validator(track3d_schema())
    events = [json.loads(line) for line in (out / "points3d.jsonl").read_text().splitlines()]
    assert len(events) == 2 * FRAMES
    for event in events:
        validator.validate(event)
        assert set(event["views"]) == {"cam0", "cam1", "cam2", "cam3"}
        assert 0 <= event["angles"]["left_knee"] <= 180
    assert events[0]["views"]["cam0"]["track_id"] in (1, 2)
    # the views' clock: each frame's time from the first camera's events
    assert [e["timestamp"] for e in events[::2]] == [round(f / 30, 6) for f in range(FRAMES)]
    rows = list(csv.DictReader((out / "points3d.csv").open()))
    assert len(rows) == 2 * FRAMES * 17
    assert rows[0].keys() == {
        "frame",
        "person_id",
        "keypoint",
        "x",
        "y",
        "z",
        "error_px",
        "cameras",
    }
    assert (out / "skeleton3d.png").stat().st_size > 10_000


def test_the_preview_is_an_animation(scene) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    folder, views, _ = scene
    out = folder / "3d"
    args = triangulate_args(folder, views, "--offset", "cam3=3")
    assert main(args) == 0
    with Image.open(out / "preview3d.gif") as gif:
        assert gif.n_frames == FRAMES


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: [*a, "--view", "camX=x.jsonl"], "views camX are not cameras of the calibration"),
        (lambda a: [*a, "--offset", "cam3=x"], "an offset is a whole number of frames"),
        (lambda a: [*a, "--offset", "cam9=1"], "no --view for cam9"),
        (lambda a: [*a, "--view", "cam0=y.jsonl"], "camera 'cam0' given twice"),
        (lambda a: [*a, "--schema", "body25b"], "are not those of schema body25b"),
        (lambda a: a, "no frame is seen by two views"),  # cam3's clock is off without --offset
    ],
)
def test_bad_input_is_one_line_and_exit_2(scene, capsys, change, message) -> None:  # type: ignore[no-untyped-def]
    folder, views, _ = scene
    views = views[:2] + views[-2:]  # cam0 and cam3, sharing frames 3-7
    args = triangulate_args(folder, views)
    if message.startswith("no frame"):
        lines = (folder / "cam3.jsonl").read_text().splitlines()
        shifted = [json.loads(line) | {"frame": json.loads(line)["frame"] + 50} for line in lines]
        (folder / "cam3.jsonl").write_text("".join(json.dumps(e) + "\n" for e in shifted))
    assert main(change(args)) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and message in lines[0], lines


def test_a_singular_calibration_is_one_line(scene, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, views, _ = scene
    path = folder / "calibration.toml"
    data = tomllib.loads(path.read_text())
    data["cam_1"]["matrix"] = [[0.0, 0.0, 640.0], [0.0, 0.0, 360.0], [0.0, 0.0, 1.0]]
    path.write_text(tomli_w.dumps(data))
    args = ["triangulate", "--calibration", str(path), *views, "--out", str(folder / "3d")]
    assert main(args) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "camera 'cam1': the intrinsic matrix must have focal" in lines[0]


def test_the_skeletons_are_drawn_back_onto_each_cameras_video(scene) -> None:  # type: ignore[no-untyped-def]
    from posekit.predict.sources import read_video

    folder, views, truth = scene
    cameras = rig()
    video = folder / "cam1.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10, (1280, 720))
    for _ in range(FRAMES):
        writer.write(np.zeros((720, 1280, 3), np.uint8))
    writer.release()
    out = folder / "3d"
    args = triangulate_args(
        folder,
        views,
        "--offset",
        "cam3=3",
        "--people",
        "0",
        "--no-preview",
        "--video",
        f"cam1={video}",
    )
    assert main(args) == 0
    frames = [f.image for f in read_video(str(out / "reprojected_cam1.mp4"))]
    assert len(frames) == FRAMES
    # the middle of each person's left shin, as cam1 sees it, is drawn; an empty spot is not
    for f in (0, FRAMES - 1):
        for person in truth:
            x, y = cameras.cameras[1].project((person[f, 13] + person[f, 15]) / 2)
            assert frames[f][round(y) - 2 : round(y) + 3, round(x) - 2 : round(x) + 3].max() > 60
    assert frames[0][:40, :40].max() < 30


def test_an_unknown_angle_keypoint_is_one_line_before_any_work(scene, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, views, _ = scene
    out = folder / "3d"
    args = triangulate_args(folder, views, "--angle", "hip,knee,ankle")
    assert main(args) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "'hip'" in lines[0], lines
    assert not out.exists()
