"""Virtual cameras with known parameters and people with known 3D keypoints, for the 3D
tests: what they see is computed through the cameras, so every answer is known."""

from __future__ import annotations

import cv2
import numpy as np

from posekit.schema import get_schema
from posekit.threed import Camera, CameraRig
from posekit.threed.calibrate import Board


def look_at(position: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Rodrigues rotation, translation) of a camera at `position` looking at `target`, y down."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    r = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    return cv2.Rodrigues(r)[0].ravel(), -r @ position


def rig(n: int = 4, fisheye_last: bool = False) -> CameraRig:
    """`n` 1280x720 cameras on a 3 m circle around the origin, 1.5 m up, each with its own
    focal length and lens distortion (mm)."""
    cameras = []
    for i in range(n):
        angle = 2 * np.pi * i / n
        position = np.array([3000 * np.cos(angle), 3000 * np.sin(angle), 1500.0])
        rvec, tvec = look_at(position, np.array([0.0, 0.0, 900.0]))
        f = 900.0 + 60 * i
        matrix = [[f, 0, 640.5 + i], [0, f * 1.001, 360.25 - i], [0, 0, 1]]
        fisheye = fisheye_last and i == n - 1
        dist = (
            [0.05, -0.01, 0.002, 0.001] if fisheye else [-0.12 + 0.02 * i, 0.05, 1e-3, -5e-4, -0.01]
        )
        cameras.append(Camera(f"cam{i}", (1280, 720), matrix, dist, rvec, tvec, fisheye))
    return CameraRig(cameras, unit="mm", metadata={"adjusted": False, "error": 0.0})


def points(n_frames: int = 20, n_keypoints: int = 17, seed: int = 0) -> np.ndarray:
    """(F, K, 3) points in a 1 m box around a standing person's height (mm)."""
    rng = np.random.default_rng(seed)
    return rng.uniform([-500, -500, 100], [500, 500, 1800], (n_frames, n_keypoints, 3))


#: a person standing at the origin, COCO-17 keypoints (mm, z up), facing +y
STANDING = np.array(
    [
        [0, 90, 1650],
        [35, 80, 1680],
        [-35, 80, 1680],
        [80, 20, 1660],
        [-80, 20, 1660],
        [190, 0, 1420],
        [-190, 0, 1420],
        [230, 10, 1130],
        [-230, 10, 1130],
        [250, 60, 860],
        [-250, 60, 860],
        [110, 0, 930],
        [-110, 0, 930],
        [120, 20, 500],
        [-120, 20, 500],
        [120, 0, 80],
        [-120, 0, 80],
    ],
    dtype=np.float64,
)


def walkers(n_frames: int, starts: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """(N, F, 17, 3) people walking in straight lines from `starts` (x, y mm), each turned
    its own way, their arms swinging: bone lengths stay exactly the same."""
    rng = np.random.default_rng(seed)
    out = []
    for x0, y0 in starts:
        heading = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(heading), np.sin(heading)
        turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        frames = []
        for f in range(n_frames):
            body = STANDING.copy()
            swing = 0.4 * np.sin(f / 4)
            for shoulder, elbow, wrist, sign in ((5, 7, 9, 1), (6, 8, 10, -1)):
                c, s = np.cos(sign * swing), np.sin(sign * swing)
                spin = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
                body[[elbow, wrist]] = (body[[elbow, wrist]] - body[shoulder]) @ spin.T + body[
                    shoulder
                ]
            frames.append(body @ turn.T + [x0, y0, 0] + turn @ [0, 12.0 * f, 0])
        out.append(np.stack(frames))
    return np.stack(out)


def seen(cameras: CameraRig, people: np.ndarray) -> np.ndarray:
    """(C, N, F, K, 2) what each camera sees of (N, F, K, 3) points."""
    return np.stack([c.project(people) for c in cameras.cameras])


COCO17 = get_schema("coco17")


def board_texture(board: Board, per_unit: float) -> np.ndarray:
    """The board as an image, `per_unit` pixels per unit of its squares (no margin)."""
    size = (
        round(board.squares[0] * board.square_length * per_unit),
        round(board.squares[1] * board.square_length * per_unit),
    )
    return board.opencv().generateImage(size, marginSize=0)


class BoardCamera:
    """Renders a planar texture seen by a camera, lens distortion included: every image pixel
    is traced back along its ray (OpenCV's undistortion) to the board's plane."""

    def __init__(self, camera: Camera, supersample: int = 2) -> None:
        self.camera, self.k = camera, supersample
        w, h = camera.size
        # the centres of the supersampled pixels, in the image's pixel coordinates
        u = (np.arange(w * supersample) + 0.5) / supersample - 0.5
        v = (np.arange(h * supersample) + 0.5) / supersample - 0.5
        grid = np.stack(np.meshgrid(u, v), -1)
        xy = camera.undistort(grid)
        self.rays = np.concatenate([xy, np.ones((*xy.shape[:2], 1))], -1)  # camera frame

    def render(
        self, texture: np.ndarray, per_unit: float, rotation: np.ndarray, translation: np.ndarray
    ) -> np.ndarray:
        """The gray image of `texture` (its pixel i, j at board point ((i + .5) / per_unit,
        (j + .5) / per_unit, 0)) posed by board -> world `rotation`, `translation`."""
        r = self.camera.rotation_matrix @ rotation
        t = self.camera.rotation_matrix @ translation + self.camera.translation
        origin = -r.T @ t  # the camera centre in board coordinates
        direction = self.rays @ r  # rays in board coordinates (r.T @ d for each ray)
        s = -origin[2] / direction[..., 2]
        point = origin + s[..., None] * direction
        behind = s <= 0
        map_x = (point[..., 0] * per_unit - 0.5).astype(np.float32)
        map_y = (point[..., 1] * per_unit - 0.5).astype(np.float32)
        map_x[behind] = -1e6
        big = cv2.remap(
            texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=128
        )
        w, h = self.camera.size
        return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
