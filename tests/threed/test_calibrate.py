"""`posekit calibrate` on a ChArUco board rendered into virtual cameras with known parameters
(each image pixel traced back through the lens to the board): the focal lengths come back
within 0.5 %, the reprojection error under 0.5 px and the camera centres within millimetres;
a camera that never sees the board, or a bad board file, is one line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from rigs3d import BoardCamera, board_texture, look_at

from cli_output import error_lines
from posekit.cli.main import main
from posekit.threed import Camera, CameraRig, triangulate
from posekit.threed.calibrate import Board

BOARD = Board((7, 5), 60.0, 45.0, "DICT_4X4_50")
PER_MM = 2.0
POSES = 24


def _cameras(fisheye: bool = False) -> list[Camera]:
    """Three 1280x720 cameras 1.5 m in front of the board's area (fisheye: 0.9 m, wide
    lenses), each its own lens."""
    cameras = []
    for i, x in enumerate((-700.0, 0.0, 700.0)):
        distance = 900.0 if fisheye else 1500.0
        rvec, tvec = look_at(np.array([x * distance / 1500, -distance, 150.0 * i]), np.zeros(3))
        f = (500.0 + 40 * i) if fisheye else (1000.0 + 80 * i)
        matrix = [[f, 0, 640 + 5 * i], [0, f, 360 - 4 * i], [0, 0, 1]]
        if fisheye:
            dist = [0.08 - 0.02 * i, -0.02, 0.005, -0.001]
        else:
            dist = [-0.12 + 0.03 * i, 0.06, 0.001, -0.0005, 0.0]
        cameras.append(Camera(f"cam{i}", (1280, 720), matrix, dist, rvec, tvec, fisheye))
    return cameras


def _film(root: Path, cameras: list[Camera]) -> tuple[Path, list[Camera]]:
    """A folder per camera of the board in 24 poses (frame i in every folder is the same
    moment), and the board's YAML."""
    texture = board_texture(BOARD, PER_MM)
    # the board faces the cameras: its x along the world's x, its y down, its back to them
    facing = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    centre = np.array([7 * 60 / 2, 5 * 60 / 2, 0.0])
    rng = np.random.default_rng(0)
    renderers = [BoardCamera(c, supersample=1) for c in cameras]
    for f in range(POSES):
        tilt = cv2.Rodrigues(rng.uniform(-0.6, 0.6, 3) * [1, 1, 0.3])[0]
        rotation = tilt @ facing
        translation = -rotation @ centre + rng.uniform(-350, 350, 3) * [1, 0.8, 0.6]
        for camera, renderer in zip(cameras, renderers, strict=True):
            folder = root / camera.name
            folder.mkdir(exist_ok=True)
            image = renderer.render(texture, PER_MM, rotation, translation)
            cv2.imwrite(str(folder / f"{f:04d}.png"), image)
    (root / "board.yaml").write_text(
        "squares: [7, 5]\nsquare_length: 60\nmarker_length: 45\ndictionary: DICT_4X4_50\n"
    )
    return root, cameras


@pytest.fixture(scope="module")
def filmed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Camera]]:
    return _film(tmp_path_factory.mktemp("boards"), _cameras())


@pytest.mark.slow
def test_calibration_recovers_the_virtual_cameras(filmed, capsys) -> None:  # type: ignore[no-untyped-def]
    root, truth = filmed
    out = root / "calib"
    views = [f"--view={c.name}={root / c.name}" for c in truth]
    assert main(["calibrate", "--board", str(root / "board.yaml"), *views, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cam2: 24 board views (24 shared)" in printed
    rig = CameraRig.read_toml(out / "calibration.toml")
    report = json.loads((out / "report.json").read_text())
    assert rig.unit == "mm" and rig.names == ["cam0", "cam1", "cam2"]
    world = np.eye(4)  # the first camera is the world: compare poses relative to it
    world[:3, :3], world[:3, 3] = truth[0].rotation_matrix, truth[0].translation
    for camera, true, row in zip(rig.cameras, truth, report["cameras"], strict=True):
        assert camera.size == true.size
        assert camera.matrix[0, 0] == pytest.approx(true.matrix[0, 0], rel=0.005)
        assert camera.matrix[1, 1] == pytest.approx(true.matrix[1, 1], rel=0.005)
        assert np.abs(camera.matrix[:2, 2] - true.matrix[:2, 2]).max() < 5.0
        assert row["error"] < 0.5
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = true.rotation_matrix, true.translation
        relative = pose @ np.linalg.inv(world)
        true_centre = -relative[:3, :3].T @ relative[:3, 3]
        centre = -camera.rotation_matrix.T @ camera.translation
        assert np.linalg.norm(centre - true_centre) < 5.0  # mm, at 1.5 m
    # what the rig is for: points where the boards were, seen by the true cameras, come back
    # at the right distances from each other (the world frame is the first camera's, so the
    # comparison is up to a rigid motion)
    points = np.random.default_rng(1).uniform(-300, 300, (200, 3))
    pixels = np.stack([c.project(points) for c in truth])[:, None]
    solved = triangulate(rig, pixels)
    found = solved.points[0]
    true_gaps = np.linalg.norm(points[:, None] - points[None], axis=-1)
    gaps = np.linalg.norm(found[:, None] - found[None], axis=-1)
    assert np.abs(gaps - true_gaps).max() < 1.0  # mm, over 0.6 m
    assert np.nanmax(solved.error) < 0.5  # px


@pytest.mark.slow
def test_a_camera_without_the_board_is_one_line(filmed, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    root, _ = filmed
    blank = tmp_path / "blank"
    blank.mkdir()
    for f in range(3):
        cv2.imwrite(str(blank / f"{f:04d}.png"), np.full((720, 1280), 128, np.uint8))
    views = [f"--view=cam0={root / 'cam0'}", f"--view=cam9={blank}"]
    out = tmp_path / "out"
    assert main(["calibrate", "--board", str(root / "board.yaml"), *views, "--out", str(out)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert (
        "camera cam9: no 7x5 ChArUco, 60 mm squares, DICT_4X4_50 board with 6 corners " in lines[0]
    )
    assert "found in 3 frames of " in lines[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("squares: [7, 5]\nsquare_length: 60\n", "needs squares, square_length, marker_length"),
        ("squares: [7, 5]\nsquare_length: 60\nmarker_length: 70\n", "marker_length must be in"),
        ("squares: [7]\nsquare_length: 6\nmarker_length: 4\n", "squares must be two counts"),
        (
            "squares: [7, 5]\nsquare_length: 6\nmarker_length: 4\ndictionary: DICT_9X9\n",
            "unknown ArUco dictionary 'DICT_9X9'",
        ),
        (
            "squares: [7, 5]\nsquare_length: 6\nmarker_length: 4\ncolour: red\n",
            "unknown board keys ['colour']",
        ),
    ],
)
def test_a_bad_board_file_is_one_line(tmp_path, capsys, text, message) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "board.yaml").write_text(text)
    args = [
        "calibrate",
        "--board",
        str(tmp_path / "board.yaml"),
        "--view",
        f"a={tmp_path}",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and message in lines[0], lines


@pytest.mark.slow
def test_one_camera_calibrates_its_lens(filmed, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    root, truth = filmed
    out = tmp_path / "one"
    args = [
        "calibrate",
        "--board",
        str(root / "board.yaml"),
        f"--view=cam1={root / 'cam1'}",
        "--out",
        str(out),
    ]
    assert main(args) == 0, capsys.readouterr().err
    camera = CameraRig.read_toml(out / "calibration.toml").cameras[0]
    assert camera.matrix[0, 0] == pytest.approx(truth[1].matrix[0, 0], rel=0.005)
    assert json.loads((out / "report.json").read_text())["cameras"][0]["error"] < 0.5


@pytest.mark.slow
def test_fisheye_cameras_calibrate_with_the_fisheye_model(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    root, truth = _film(tmp_path, _cameras(fisheye=True))
    out = tmp_path / "calib"
    views = [f"--view={c.name}={root / c.name}" for c in truth]
    args = [
        "calibrate",
        "--board",
        str(root / "board.yaml"),
        *views,
        "--fisheye",
        "--out",
        str(out),
    ]
    assert main(args) == 0, capsys.readouterr().err
    rig = CameraRig.read_toml(out / "calibration.toml")
    report = json.loads((out / "report.json").read_text())
    for camera, true, row in zip(rig.cameras, truth, report["cameras"], strict=True):
        assert camera.fisheye
        assert camera.matrix[0, 0] == pytest.approx(true.matrix[0, 0], rel=0.005)
        assert row["error"] < 0.5
