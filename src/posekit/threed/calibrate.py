"""Calibration of several cameras from a ChArUco board they film, as Anipose does it.

1. The board (a small YAML: squares across and down, square and marker size in the rig's
   unit, the ArUco dictionary) is found in every frame of every camera (OpenCV's
   `CharucoDetector`); a detection needs `min_corners` inner corners.
2. Each camera's intrinsics (OpenCV's model: focal lengths, principal point, k1 k2 p1 p2;
   k3 stays 0, as a board rarely reaches the corners that would tell it; or with `fisheye`,
   OpenCV's fisheye model, k1-k4) from its own detections (`cv2.calibrateCamera`,
   `cv2.fisheye.calibrate`), and the board's pose in each of them.
3. Initial extrinsics: the first camera is the world; every other one is reached through
   frames where the board is seen by it and a camera already placed (the pair with most
   shared frames first), its pose the medoid of the per-frame estimates.
4. Bundle adjustment of everything at once (`scipy.optimize.least_squares`, sparse Jacobian,
   Huber loss at 1 px): every camera's intrinsics, distortion and pose (the first camera's
   pose fixed) and every shared frame's board pose, on every detected corner.
The report gives each camera's reprojection error (RMS, pixels) and detections used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares

from posekit.threed.cameras import Camera, CameraRig
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError, quoted
from posekit.utils.yaml_files import read_yaml

log = logging.getLogger(__name__)


@dataclass
class Board:
    """A ChArUco board: `squares` across and down, their side and the markers' side in the
    rig's `unit`, and the ArUco dictionary's OpenCV name."""

    squares: tuple[int, int]
    square_length: float
    marker_length: float
    dictionary: str = "DICT_4X4_50"
    unit: str = "mm"

    def __post_init__(self) -> None:
        where = "ChArUco board"
        if not hasattr(cv2.aruco, self.dictionary):
            raise UserError(
                f"{where}: unknown ArUco dictionary {quoted(self.dictionary)} "
                "(an OpenCV name such as DICT_4X4_50)"
            )
        if len(self.squares) != 2 or min(self.squares) < 2 or max(self.squares) > 100:
            raise UserError(f"{where}: squares must be two counts in [2, 100], got {self.squares}")
        if not 0 < self.marker_length < self.square_length:
            raise UserError(f"{where}: marker_length must be in (0, square_length)")

    @classmethod
    def read_yaml(cls, path: str | Path) -> Board:
        """`squares: [7, 5]`, `square_length: 40`, `marker_length: 30`, `dictionary:
        DICT_4X4_50`, `unit: mm` (the last two optional)."""
        data = read_yaml(Path(path), UserError)
        keys = {"squares", "square_length", "marker_length", "dictionary", "unit"}
        if not isinstance(data, dict) or not {"squares", "square_length", "marker_length"} <= set(
            data
        ):
            raise UserError(f"{path}: a board file needs squares, square_length, marker_length")
        unknown = sorted(set(data) - keys)
        if unknown:
            raise UserError(f"{path}: unknown board keys {quoted(unknown)} (known: {sorted(keys)})")
        try:
            squares = tuple(int(v) for v in data["squares"])
            return cls(
                squares,
                float(data["square_length"]),
                float(data["marker_length"]),  # type: ignore[arg-type]
                str(data.get("dictionary", "DICT_4X4_50")),
                str(data.get("unit", "mm")),
            )
        except (TypeError, ValueError) as e:
            raise UserError(f"{path}: malformed board ({e})") from None

    def opencv(self) -> cv2.aruco.CharucoBoard:
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard(
            self.squares, self.square_length, self.marker_length, dictionary
        )

    def describe(self) -> str:
        return (
            f"{self.squares[0]}x{self.squares[1]} ChArUco, {self.square_length:g} "
            f"{self.unit} squares, {self.dictionary}"
        )


@dataclass
class CalibrationConfig:
    """How boards are found and cameras fitted (each field is also a `posekit calibrate`
    option)."""

    # inner corners a detection needs to be used
    min_corners: int = ranged(6, 4, 10_000)
    # take every n-th frame of a video (calibration boards move slowly)
    every: int = ranged(1, 1, 10_000)
    # the most detections per camera used for its first intrinsics (spread over the clip)
    intrinsic_frames: int = ranged(40, 4, 10_000)
    # bundle adjustment: the most function evaluations
    max_evaluations: int = ranged(200, 1, 100_000)
    # fisheye lenses (OpenCV's fisheye model, k1-k4) instead of the standard model
    fisheye: bool = False

    def __post_init__(self) -> None:
        check_ranges(self, "calibration settings")


@dataclass
class Detection:
    """The board's inner corners found in one frame of one camera."""

    frame: int
    ids: np.ndarray  # (n,) corner ids
    pixels: np.ndarray  # (n, 2)


def detect_boards(
    board: Board, frames: Iterable[tuple[int, np.ndarray]], min_corners: int
) -> list[Detection]:
    """The board in each (frame number, image) with at least `min_corners` corners."""
    detector = cv2.aruco.CharucoDetector(board.opencv())
    found = []
    for number, image in frames:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        corners, ids, _, _ = detector.detectBoard(gray)
        if ids is not None and len(ids) >= min_corners:
            found.append(Detection(number, ids.ravel().astype(np.int64), corners.reshape(-1, 2)))
    return found


@dataclass
class CameraReport:
    name: str
    detections: int  # frames with the board
    shared: int  # of which seen by another camera too (used by the bundle adjustment)
    error: float  # RMS reprojection error after the adjustment, pixels


@dataclass
class Calibration:
    rig: CameraRig
    reports: list[CameraReport] = field(default_factory=list)


def calibrate(
    board: Board,
    detections: dict[str, list[Detection]],
    sizes: dict[str, tuple[int, int]],
    config: CalibrationConfig | None = None,
) -> Calibration:
    """A rig from each camera's board detections (cameras in the mapping's order, the first
    the world frame) and image sizes (width, height); see the module docstring."""
    config = config or CalibrationConfig()
    corners = board.opencv().getChessboardCorners().astype(np.float64)  # (N, 3)
    names = list(detections)
    empty = [n for n in names if not detections[n]]
    if empty:
        raise UserError(f"no board ({board.describe()}) found by camera {', '.join(empty)}")
    intrinsics = {n: _intrinsics(n, corners, detections[n], sizes[n], config) for n in names}
    poses = {n: _board_poses(corners, detections[n], *intrinsics[n], config.fisheye) for n in names}
    placed = _place_cameras(names, poses)
    problem = _Adjustment(corners, names, detections, intrinsics, placed, poses, config.fisheye)
    result = least_squares(
        problem.residuals,
        problem.x0,
        jac_sparsity=problem.sparsity(),
        loss="huber",
        f_scale=1.0,
        x_scale="jac",
        method="trf",
        max_nfev=config.max_evaluations,
    )
    cameras, errors = problem.cameras(result.x, sizes)
    reports = [
        CameraReport(n, len(detections[n]), problem.shared_count(n), errors[n]) for n in names
    ]
    for r in reports:
        log.info(
            "camera %s: %d board views (%d shared), reprojection %.3f px RMS",
            r.name,
            r.detections,
            r.shared,
            r.error,
        )
    return Calibration(CameraRig(cameras, unit=board.unit), reports)


def _intrinsics(
    name: str,
    corners: np.ndarray,
    found: list[Detection],
    size: tuple[int, int],
    config: CalibrationConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(K, distortion) of one camera from up to `intrinsic_frames` of its detections."""
    usable = [d for d in found if len(d.ids) >= config.min_corners]
    picks = np.unique(
        np.linspace(0, len(usable) - 1, min(len(usable), config.intrinsic_frames)).astype(int)
    )
    objects = [corners[usable[i].ids].astype(np.float32) for i in picks]
    images = [usable[i].pixels.astype(np.float32) for i in picks]
    try:
        if config.fisheye:
            flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW
            criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-9)
            _, matrix, dist, _, _ = cv2.fisheye.calibrate(
                [o[None].astype(np.float64) for o in objects],
                [i[None].astype(np.float64) for i in images],
                size,
                None,
                None,
                flags=flags,
                criteria=criteria,
            )
        else:
            _, matrix, dist, _, _ = cv2.calibrateCamera(
                objects, images, size, None, None, flags=cv2.CALIB_FIX_K3
            )
    except cv2.error as e:
        reason = str(e).strip().splitlines()[-1]
        raise UserError(
            f"camera {name}: {len(objects)} board views do not determine its lens "
            f"({reason}): film the board in more poses"
        ) from None
    return matrix, dist.ravel()[:4]


def _board_poses(
    corners: np.ndarray,
    found: list[Detection],
    matrix: np.ndarray,
    dist: np.ndarray,
    fisheye: bool,
) -> dict[int, np.ndarray]:
    """{frame: (4, 4) board -> camera} from each detection (PnP with the intrinsics; a
    fisheye view undistorted first, PnP then on normalised coordinates)."""
    out = {}
    for d in found:
        if fisheye:
            seen = d.pixels[:, None].astype(np.float64)
            normal = cv2.fisheye.undistortPoints(seen, matrix, dist)
            ok, rvec, tvec = cv2.solvePnP(corners[d.ids], normal, np.eye(3), None)
        else:
            ok, rvec, tvec = cv2.solvePnP(corners[d.ids], d.pixels, matrix, dist)
        if ok:
            out[d.frame] = _matrix(rvec.ravel(), tvec.ravel())
    return out


def _matrix(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64))[0]
    m[:3, 3] = tvec
    return m


def _place_cameras(
    names: list[str], poses: dict[str, dict[int, np.ndarray]]
) -> dict[str, np.ndarray]:
    """{camera: (4, 4) world -> camera}, the first camera the world (see the module docstring)."""
    placed = {names[0]: np.eye(4)}
    while len(placed) < len(names):
        best = None
        for a in placed:
            for b in (n for n in names if n not in placed):
                shared = sorted(set(poses[a]) & set(poses[b]))
                if shared and (best is None or len(shared) > len(best[2])):
                    best = (a, b, shared)
        if best is None:
            alone = [n for n in names if n not in placed]
            raise UserError(
                f"camera {', '.join(alone)} never sees the board in a frame where "
                f"{', '.join(placed)} see it too: no way to place it"
            )
        a, b, shared = best
        # world -> b = (board -> b) (board -> a)^-1 (world -> a), per shared frame
        candidates = [poses[b][f] @ np.linalg.inv(poses[a][f]) @ placed[a] for f in shared]
        centres = np.array([-c[:3, :3].T @ c[:3, 3] for c in candidates])
        spread = np.linalg.norm(centres[:, None] - centres[None], axis=-1).sum(1)
        placed[b] = candidates[int(spread.argmin())]
    return placed


class _Adjustment:
    """Bundle adjustment: per camera 14 unknowns (rvec, tvec, fx, fy, cx, cy, and k1 k2 p1 p2
    or the fisheye's k1-k4; the first camera's pose is fixed), per shared frame the board's
    pose (6)."""

    def __init__(self, corners, names, detections, intrinsics, placed, poses, fisheye) -> None:  # type: ignore[no-untyped-def]
        self.corners, self.names, self.fisheye = corners, names, fisheye
        counts: dict[int, int] = {}
        for n in names:
            for f in poses[n]:
                counts[f] = counts.get(f, 0) + 1
        # frames that relate cameras (a single camera: every frame refines its lens)
        self.frames = sorted(f for f, c in counts.items() if c >= min(2, len(names)))
        frame_slot = {f: i for i, f in enumerate(self.frames)}
        cams, slots, ids, pixels = [], [], [], []
        for c, n in enumerate(names):
            for d in detections[n]:
                if d.frame in frame_slot and d.frame in poses[n]:
                    cams.append(np.full(len(d.ids), c))
                    slots.append(np.full(len(d.ids), frame_slot[d.frame]))
                    ids.append(d.ids)
                    pixels.append(d.pixels)
        if not cams:
            raise UserError(
                "no frame shows the board to two cameras: the cameras cannot be related"
            )
        self.cam, self.slot = np.concatenate(cams), np.concatenate(slots)
        self.ids, self.target = np.concatenate(ids), np.concatenate(pixels).astype(np.float64)
        x = []
        for c, n in enumerate(names):
            matrix, dist = intrinsics[n]
            rvec = cv2.Rodrigues(placed[n][:3, :3])[0].ravel()
            pose = [] if c == 0 else [*rvec, *placed[n][:3, 3]]
            x += pose + [
                matrix[0, 0],
                matrix[1, 1],
                matrix[0, 2],
                matrix[1, 2],
                *dist,
            ]
        self.camera_size = [8 if c == 0 else 14 for c in range(len(names))]
        self.camera_start = np.concatenate([[0], np.cumsum(self.camera_size)[:-1]])
        self.frame_start = int(sum(self.camera_size))
        for f in self.frames:  # the board in the world, from the first camera placed that saw it
            n = next(n for n in names if f in poses[n])
            world = np.linalg.inv(placed[n]) @ poses[n][f]
            x += [*cv2.Rodrigues(world[:3, :3])[0].ravel(), *world[:3, 3]]
        self.x0 = np.array(x, dtype=np.float64)

    def _camera(
        self, x: np.ndarray, c: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        p = x[self.camera_start[c] : self.camera_start[c] + self.camera_size[c]]
        rvec, tvec = (np.zeros(3), np.zeros(3)) if c == 0 else (p[:3], p[3:6])
        fx, fy, cx, cy = p[-8:-4]
        matrix = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        return rvec, tvec, matrix, p[-4:]

    def _world(self, x: np.ndarray) -> np.ndarray:
        """(observations, 3) each observed corner in the world."""
        boards = x[self.frame_start :].reshape(-1, 6)
        rotations = np.stack([cv2.Rodrigues(b[:3])[0] for b in boards])
        local = self.corners[self.ids]
        return np.einsum("nij,nj->ni", rotations[self.slot], local) + boards[self.slot, 3:]

    def residuals(self, x: np.ndarray) -> np.ndarray:
        world = self._world(x)
        out = np.empty_like(self.target)
        for c in range(len(self.names)):
            mine = self.cam == c
            rvec, tvec, matrix, dist = self._camera(x, c)
            model = cv2.fisheye if self.fisheye else cv2
            px, _ = model.projectPoints(world[mine].reshape(-1, 1, 3), rvec, tvec, matrix, dist)
            out[mine] = px.reshape(-1, 2)
        return (out - self.target).ravel()

    def sparsity(self) -> sp.csr_matrix:
        rows, cols = [], []
        n = len(self.cam)
        for axis in range(2):
            r = 2 * np.arange(n) + axis
            for j in range(14):
                size = np.asarray(self.camera_size)[self.cam]
                ok = j < size
                rows.append(r[ok])
                cols.append(self.camera_start[self.cam][ok] + j)
            for j in range(6):
                rows.append(r)
                cols.append(self.frame_start + 6 * self.slot + j)
        r, c = np.concatenate(rows), np.concatenate(cols)
        return sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(2 * n, len(self.x0))).tocsr()

    def shared_count(self, name: str) -> int:
        c = self.names.index(name)
        return len(np.unique(self.slot[self.cam == c]))

    def cameras(
        self, x: np.ndarray, sizes: dict[str, tuple[int, int]]
    ) -> tuple[list[Camera], dict[str, float]]:
        residual = self.residuals(x).reshape(-1, 2)
        cameras, errors = [], {}
        for c, n in enumerate(self.names):
            rvec, tvec, matrix, dist = self._camera(x, c)
            cameras.append(Camera(n, sizes[n], matrix, dist, rvec, tvec, self.fisheye))
            mine = residual[self.cam == c]
            errors[n] = float(np.sqrt((mine**2).sum(-1).mean())) if len(mine) else float("nan")
        return cameras, errors


def detect_in_source(
    board: Board, camera: str, source: str | Path, config: CalibrationConfig
) -> tuple[list[Detection], tuple[int, int]]:
    """The board in every `config.every`-th frame of a video, or in every image of a folder
    (numbered by their sorted order, so that folders of several cameras line up), and the
    image size; a camera where the board is never found is one line naming what was searched."""
    from posekit.predict.sources import SourceError, iter_frames

    searched = 0
    size: tuple[int, int] | None = None

    def numbered() -> Iterable[tuple[int, np.ndarray]]:
        nonlocal size, searched
        for position, frame in enumerate(iter_frames(str(source), vid_stride=config.every)):
            if frame.image is None:
                raise UserError(f"camera {camera}: {frame.path}: {frame.error}")
            h, w = frame.image.shape[:2]
            if size is None:
                size = (w, h)
            elif size != (w, h):
                raise UserError(
                    f"camera {camera}: {frame.path} is {w}x{h}, the first frame {size[0]}x{size[1]}"
                )
            searched += 1
            yield (frame.index if frame.video else position), frame.image

    try:
        found = detect_boards(board, numbered(), config.min_corners)
    except SourceError as e:
        raise UserError(f"camera {camera}: {e}") from None
    if not found or size is None:
        raise UserError(
            f"camera {camera}: no {board.describe()} board with {config.min_corners}"
            f" corners found in {searched} frames of {source}"
        )
    return found, size
