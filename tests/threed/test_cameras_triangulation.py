"""Camera rigs and triangulation on virtual cameras with known parameters: the
`calibration.toml` round trip is exact and keeps Anipose's keys; projection and undistortion
invert each other to a hundredth of a pixel; triangulation recovers known points to
micrometres without noise and degrades gracefully with it; a point seen once is missing."""

from __future__ import annotations

import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
from rigs3d import look_at, points, rig

from posekit.threed import Camera, CameraRig, read_qca, triangulate
from posekit.utils.errors import UserError


def test_the_calibration_toml_round_trip_is_exact_and_keeps_anipose_keys(tmp_path: Path) -> None:
    original = rig(fisheye_last=True)
    path = original.write_toml(tmp_path / "calibration.toml")
    data = tomllib.loads(path.read_text())
    assert set(data) == {"cam_0", "cam_1", "cam_2", "cam_3", "metadata"}
    assert {"name", "size", "matrix", "distortions", "rotation", "translation"} <= set(
        data["cam_0"]
    )
    again = CameraRig.read_toml(path)
    assert again.names == original.names and again.unit == "mm"
    assert again.metadata == {"adjusted": False, "error": 0.0}
    for a, b in zip(again.cameras, original.cameras, strict=True):
        assert a.size == b.size and a.fisheye == b.fisheye
        for field in ("matrix", "distortions", "rotation", "translation"):
            assert np.array_equal(getattr(a, field), getattr(b, field))  # bit for bit


def test_a_malformed_calibration_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "calibration.toml"
    path.write_text('[cam_0]\nname = "a"\nsize = [1280, 720]\n')
    with pytest.raises(UserError, match=r"\[cam_0\]: no matrix, distortions, rotation"):
        CameraRig.read_toml(path)
    path.write_text("[cam_0\n")
    with pytest.raises(UserError, match="not a calibration TOML"):
        CameraRig.read_toml(path)


@pytest.mark.parametrize("fisheye", [False, True])
def test_undistort_inverts_the_projection(fisheye: bool) -> None:
    camera = rig(fisheye_last=fisheye).cameras[-1]
    world = points()
    px = camera.project(world)
    camera_frame = world @ camera.rotation_matrix.T + camera.translation
    normalised = camera_frame[..., :2] / camera_frame[..., 2:]
    assert np.abs(camera.undistort(px) - normalised).max() * camera.matrix[0, 0] < 0.01


def test_triangulation_recovers_known_points() -> None:
    cams, world = rig(fisheye_last=True), points()
    px = np.stack([c.project(world) for c in cams.cameras])  # (C, F, K, 2)
    out = triangulate(cams, px)
    assert np.abs(out.points - world).max() < 1e-3  # mm
    assert out.error.max() < 1e-3 and out.views.all()
    # 0.5 px of noise: millimetres, and the reprojection error says so
    noisy = px + np.random.default_rng(1).normal(0, 0.5, px.shape)
    out = triangulate(cams, noisy)
    assert np.abs(out.points - world).max() < 10 and 0.1 < np.nanmean(out.error) < 1.0


def test_views_missing_or_below_confidence_are_left_out() -> None:
    cams, world = rig(), points(n_frames=3, n_keypoints=4)
    px = np.stack([c.project(world) for c in cams.cameras])
    conf = np.ones(px.shape[:-1])
    px[0, 0, 0] = [400.0, 300.0]  # a wrong view of point (0, 0) ...
    conf[0, 0, 0] = 0.1  # ... that its confidence leaves out
    px[1:, 1, 2] = np.nan  # point (1, 2) seen by camera 0 only: missing, not guessed
    out = triangulate(cams, px, conf, min_confidence=0.5)
    assert np.abs(out.points[0, 0] - world[0, 0]).max() < 1e-3
    assert out.views[0, 0].tolist() == [False, True, True, True]
    assert np.isnan(out.points[1, 2]).all() and np.isnan(out.error[1, 2])
    known = ~np.isnan(out.points[..., 0])
    assert known.sum() == 11 and np.abs(out.points[known] - world[known]).max() < 1e-3


def _qca(cameras: list[tuple[str, np.ndarray, np.ndarray]]) -> str:
    """A Qualisys .qca.txt of cameras (name, OpenCV world->camera rotation, centre in mm),
    1088x1920 video, focal 1681 px, principal point (544.5, 960.25), as Qualisys stores them."""
    flip = np.diag([1.0, -1.0, -1.0])
    parts = []
    for name, r_cv, centre in cameras:
        m = flip @ r_cv  # the rows Qualisys stores: world -> its camera (y up, -z forward)
        rot = " ".join(f'r{i + 1}{j + 1}="{float(m[i, j])!r}"' for i in range(3) for j in range(3))
        x, y, z = (float(v) for v in centre)
        parts.append(
            f'<camera active="1" model="none" serial="{name}">'
            '<fov_video bottom="1919" left="0" right="1087" top="0"/>'
            f'<transform {rot} x="{x!r}" y="{y!r}" z="{z!r}"/>'
            f'<intrinsic centerPointU="{544.5 * 64!r}" centerPointV="{960.25 * 64!r}" '
            f'focalLengthU="{1681.0 * 64!r}" focalLengthV="{1681.5 * 64!r}" '
            'radialDistortion1="-0.046" radialDistortion2="0.14" tangentalDistortion1="0.0006" '
            'tangentalDistortion2="0.0007"/></camera>'
        )
    marker = '<camera active="1" model="Oqus 700" serial="m1"/>'  # a marker camera: left out
    return f"<calibration><cameras>{marker}{''.join(parts)}</cameras></calibration>"


def test_a_qualisys_calibration_reads_as_pose2sim_converts_it(tmp_path: Path) -> None:
    """Camera poses in the world become OpenCV world->camera extrinsics in metres,
    intrinsics leave Qualisys' 1/64-pixel units, cameras come in natural name order."""
    poses = []
    for name, position in (("cam10", [3000.0, 0, 1500]), ("cam2", [0.0, 3000, 1500])):
        rvec, _ = look_at(np.array(position), np.zeros(3))
        poses.append((name, cv2.Rodrigues(rvec)[0], np.array(position)))
    path = tmp_path / "Calib.qca.txt"
    path.write_text(_qca(poses))
    rig_ = read_qca(path)
    assert rig_.names == ["cam2", "cam10"] and rig_.unit == "m"
    for camera, (_, r_cv, centre) in zip(rig_.cameras, poses[::-1], strict=True):
        assert camera.size == (1088, 1920)
        assert np.allclose(camera.matrix, [[1681.0, 0, 544.5], [0, 1681.5, 960.25], [0, 0, 1]])
        assert np.allclose(camera.distortions, np.array([-0.046, 0.14, 0.0006, 0.0007]) / 64)
        # stored as a Rodrigues vector (what calibration.toml holds): near a half turn,
        # OpenCV's conversion keeps 1e-8 (3e-5 mm at 3 m)
        assert np.allclose(camera.rotation_matrix, r_cv, atol=1e-7)
        assert np.allclose(camera.translation, -r_cv @ centre / 1000, atol=1e-12)
        # the world origin, which every camera looks at, is at its principal point
        assert np.abs(camera.project(np.zeros(3)) - camera.matrix[:2, 2]).max() < 1e-6


def test_a_wrong_view_is_dropped_by_the_worst_first_rule() -> None:
    """One camera sees another person's wrist at some points (60 px off): with `max_error`,
    that view is dropped for those points and the rest come back exact; without it they are
    pulled off."""
    cams, world = rig(), points()
    px = np.stack([c.project(world) for c in cams.cameras])
    wrong = np.zeros(px.shape[1:3], bool)
    wrong[::3, ::2] = True
    px[1][wrong] += [60.0, -40.0]
    plain = triangulate(cams, px)
    assert np.linalg.norm(plain.points - world, axis=-1)[wrong].min() > 5
    robust = triangulate(cams, px, max_error=5.0)
    assert np.abs(robust.points - world).max() < 1e-3 and robust.error.max() < 1e-3
    assert (~robust.views[..., 1][wrong]).all() and robust.views[..., 1][~wrong].all()
    # points seen by two cameras only keep both views: nothing to compare them against
    px[2:] = np.nan
    pair = triangulate(cams, px, max_error=5.0)
    assert pair.views[..., :2].all() and np.isfinite(pair.points).all()


def test_a_qualisys_file_with_a_doctype_is_refused_in_any_encoding(tmp_path: Path) -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY e "x">]><c>&e;</c>'
    path = tmp_path / "Calib.qca.txt"
    path.write_bytes(text.encode("utf-16"))
    with pytest.raises(UserError, match="refused: the XML declares a DOCTYPE"):
        read_qca(path)


def test_the_fast_undistortion_is_opencvs_where_opencv_converges() -> None:
    """Newton's method on the standard model (posekit.threed.lens) against OpenCV's own
    iteration: the same points wherever OpenCV's reproject exactly, and exact (to 1e-9 px)
    where OpenCV's 100 steps have not converged (strong barrel distortion)."""
    camera = Camera(
        "strong",
        (1280, 720),
        [[900, 0, 640], [0, 900, 360], [0, 0, 1]],
        [-0.4, 0.2, 0.01, -0.01, -0.05],
        [0, 0, 0],
        [0, 0, 0],
    )
    pixels = np.random.default_rng(1).uniform([0, 0], [1280, 720], (20000, 2))

    def reprojection(normalised: np.ndarray) -> np.ndarray:
        rays = np.concatenate([normalised, np.ones((len(normalised), 1))], -1)
        return np.linalg.norm(camera.project(rays) - pixels, axis=-1)

    ours, theirs = camera.undistort(pixels), camera._opencv_undistort(pixels)
    exact = reprojection(theirs) < 1e-9
    assert exact.mean() > 0.9
    np.testing.assert_allclose(ours[exact], theirs[exact], atol=1e-10)
    solvable = reprojection(theirs) < 0.1  # inside the fold: the model can be inverted
    assert (reprojection(ours)[solvable] < 1e-9).all()


def test_the_elementwise_projection_is_opencvs() -> None:
    """`Camera.project` computes OpenCV's standard model in NumPy: the same pixels as
    `cv2.projectPoints`, to picometres of a pixel; other models are OpenCV's own."""
    cameras = rig(fisheye_last=True)
    world = points(50, 17)
    for camera in cameras.cameras:
        model = cv2.fisheye if camera.fisheye else cv2
        expected, _ = model.projectPoints(
            world.reshape(-1, 1, 3),
            camera.rotation,
            camera.translation,
            camera.matrix,
            camera.distortions,
        )
        np.testing.assert_allclose(camera.project(world), expected.reshape(50, 17, 2), atol=1e-9)
