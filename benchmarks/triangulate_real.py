"""Triangulation on recordings no one here made, and its throughput, in one run.

- Pose2Sim's demo (PyPI `pose2sim` 0.8.4; `make reference` unpacks it): four cameras, 100
  frames of OpenPose BODY_25B. Plain DLT over every camera, Pose2Sim's drop-the-worst rule at
  its default 15 px, and posekit's default (drop at 10 px, then refinement of bone lengths and
  smoothness): points solved, median reprojection error, and each thigh's and shank's length
  variation over frames (standard deviation / mean). Its two-person trial: people found,
  frames and cameras each is seen in, the closest they come.
- DeepFly3D's fixture (PyPI `df3d` 0.57): its 2D triangulated against its published 3D.
- Throughput: points triangulated per second by `triangulate` (4 cameras with lens
  distortion, all views good), with the undistortion and without it (pre-normalised).

    python benchmarks/triangulate_real.py [--pose2sim DIR] [--df3d DIR] [--points 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from posekit.schema import get_schema
from posekit.threed import read_qca, triangulate
from posekit.threed.deepfly import read_df3d_result
from posekit.threed.reconstruct import TriangulationConfig, reconstruct
from posekit.threed.views import read_view

CACHE = Path.home() / ".cache" / "posekit-test"
BODY25B = get_schema("body25b")
LIMBS = {
    "R thigh": ("right_hip", "right_knee"),
    "L thigh": ("left_hip", "left_knee"),
    "R shank": ("right_knee", "right_ankle"),
    "L shank": ("left_knee", "left_ankle"),
}


def _views(trial: Path) -> list:
    return [
        read_view(f"cam_{i:02d}", trial / "pose" / f"cam{i:02d}_json", BODY25B) for i in range(1, 5)
    ]


def _variation(points: np.ndarray) -> str:
    out = []
    for name, (a, b) in LIMBS.items():
        length = np.linalg.norm(points[:, BODY25B.index(a)] - points[:, BODY25B.index(b)], axis=-1)
        out.append(f"{name} {np.nanstd(length) / np.nanmean(length) * 100:4.2f}%")
    return "  ".join(out)


def pose2sim_single(root: Path) -> None:
    trial = root / "S01_Demo_SingleTrial"
    rig = read_qca(trial / "calibration" / "Calib.qca.txt")
    views = _views(trial)
    runs = {
        "plain DLT, all cameras": TriangulationConfig(max_error=1e6, refine=False),
        "drop the worst at 15 px (Pose2Sim)": TriangulationConfig(max_error=15, refine=False),
        "drop at 10 px": TriangulationConfig(refine=False),
        "drop at 10 px + refinement (default)": TriangulationConfig(),
    }
    print("Pose2Sim demo, single trial (4 cameras, 100 frames, BODY_25B):")
    for label, config in runs.items():
        start = time.perf_counter()
        person = reconstruct(rig, views, BODY25B, config).people[0]
        seconds = time.perf_counter() - start
        solved = int(np.isfinite(person.points).all(-1).sum())
        views_used = person.views.sum(-1)[np.isfinite(person.points).all(-1)].mean()
        print(
            f"  {label:38s} points {solved}  views/point {views_used:4.2f}  median "
            f"{np.nanmedian(person.error):5.2f} px  {_variation(person.points)}  {seconds:4.1f} s"
        )


def pose2sim_two_people(root: Path) -> None:
    session = root / "S00_Demo_BatchSession"
    trial = session / "S00_P01_MultiParticipants" / "S00_P01_T02_Participants1-2"
    rig = read_qca(session / "S00_Calibration" / "Calib.qca.txt")
    start = time.perf_counter()
    rec = reconstruct(rig, _views(trial), BODY25B, TriangulationConfig(people=2))
    seconds = time.perf_counter() - start
    print(f"Pose2Sim demo, two participants: {len(rec.people)} people in {seconds:.1f} s")
    for p in rec.people:
        frames = int(np.isfinite(p.points).all(-1).any(-1).sum())
        cams = " ".join(f"{(p.sources[:, c] >= 0).mean() * 100:3.0f}%" for c in range(4))
        print(
            f"  person {p.id}: frames {frames}/{len(rec.frames)}  seen per camera {cams}  "
            f"median {np.nanmedian(p.error):5.2f} px"
        )
    if len(rec.people) == 2:
        centres = [np.nanmean(p.points, axis=1) for p in rec.people]
        apart = np.linalg.norm(centres[0] - centres[1], axis=-1)
        print(f"  closest approach of their mean keypoints: {np.nanmin(apart):.2f} {rec.unit}")


def deepfly(folder: Path) -> None:
    result = read_df3d_result(folder / "data" / "df3d_result.pkl")
    solved = triangulate(result.rig, result.pixels)
    error = np.linalg.norm(solved.points - result.points3d, axis=-1)
    coxa = [5 * leg + 19 * side for side in (0, 1) for leg in range(3)]
    moving = np.setdiff1d(np.arange(38), coxa)
    bone = np.linalg.norm(result.points3d[:, 1] - result.points3d[:, 0], axis=-1).mean()
    print(
        f"DeepFly3D fixture (7 cameras, {error.shape[0]} frames, 38 points): "
        f"{np.isfinite(solved.points).all(-1).sum()} points, against its 3D: median "
        f"{np.median(error) * 1000:.2f} µm, moving joints max "
        f"{error[:, moving].max() * 1000:.1f} µm "
        f"({error[:, moving].max() / bone * 100:.1f}% of the coxa-femur bone), body-coxa "
        f"(fixed 2D) max {error[:, coxa].max() * 1000:.0f} µm, reprojection median "
        f"{np.nanmedian(solved.error):.2f} px"
    )


def throughput(n_points: int, repeats: int = 3) -> None:
    """Points per second, the first run (which also first touches its arrays' memory) and the
    best of `repeats` more (the sustained rate of a process that triangulates clip after clip)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "threed"))
    from rigs3d import points, rig

    cameras = rig(4)
    truth = points(n_points // 50, 50)
    pixels = np.stack([c.project(truth) for c in cameras.cameras])
    n = truth.shape[0] * truth.shape[1]
    runs = []
    for _ in range(1 + repeats):
        start = time.perf_counter()
        normalised = [c.undistort(pixels[i]) for i, c in enumerate(cameras.cameras)]
        undistort = time.perf_counter() - start
        start = time.perf_counter()
        out = triangulate(cameras, pixels, normalised=normalised)
        runs.append((undistort, time.perf_counter() - start))
    (u0, s0), (u, s) = runs[0], min(runs[1:], key=sum)
    print(
        f"throughput, {n} points x 4 cameras: {n / (u + s) / 1e6:.2f} M points/s with "
        f"undistortion ({u:.2f} s + {s:.2f} s), {n / s / 1e6:.2f} M/s pre-normalised (best of "
        f"{repeats}; the first run {n / (u0 + s0) / 1e6:.2f} and {n / s0 / 1e6:.2f} M/s); max "
        f"error {np.abs(out.points - truth).max():.1e} mm"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pose2sim", type=Path, default=CACHE / "pose2sim-0.8.4" / "Pose2Sim")
    parser.add_argument("--df3d", type=Path, default=CACHE / "df3d-0.57")
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    if (args.pose2sim / "S01_Demo_SingleTrial").is_dir():
        pose2sim_single(args.pose2sim)
        pose2sim_two_people(args.pose2sim)
    else:
        print(f"no Pose2Sim demo at {args.pose2sim} (make reference)")
    if (args.df3d / "data").is_dir():
        deepfly(args.df3d)
    else:
        print(f"no DeepFly3D fixture at {args.df3d} (make reference)")
    throughput(args.points)


if __name__ == "__main__":
    main()
