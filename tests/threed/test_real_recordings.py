"""Triangulation checked on recordings no one here made: Pose2Sim's demo (PyPI `pose2sim`
0.8.4, BSD-3: four calibrated cameras, a Qualisys calibration, OpenPose BODY_25B detections
of a balancing subject, other people in some views; and a trial with two participants), and
DeepFly3D's fixture (PyPI `df3d` 0.57, LGPL: seven cameras, 15 frames of 38 fly keypoints in
2D and its 3D).

The packages are unpacked by `make reference` into a test cache and read from there
(`POSEKIT_POSE2SIM`, `POSEKIT_DF3D`); without them the tests skip, or fail under
`POSEKIT_REQUIRE_REFERENCE=1`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from posekit.schema import get_schema
from posekit.threed import read_qca, triangulate
from posekit.threed.deepfly import read_df3d_result
from posekit.threed.reconstruct import Reconstruction, TriangulationConfig, reconstruct
from posekit.threed.views import read_view

pytestmark = pytest.mark.slow
BODY25B = get_schema("body25b")
BODY_COXA = 0  # DeepFly3D: the first joint of each leg
LIMBS = {
    "right thigh": ("right_hip", "right_knee"),
    "left thigh": ("left_hip", "left_knee"),
    "right shank": ("right_knee", "right_ankle"),
    "left shank": ("left_knee", "left_ankle"),
}


@pytest.fixture(scope="module")
def pose2sim() -> Path:
    given = os.environ.get("POSEKIT_POSE2SIM")
    default = Path.home() / ".cache/posekit-test/pose2sim-0.8.4/Pose2Sim"
    path = Path(given) if given else default
    if not (path / "S01_Demo_SingleTrial").is_dir():
        if os.environ.get("POSEKIT_REQUIRE_REFERENCE") == "1":
            pytest.fail(f"Pose2Sim's demo is missing at {path}: run `make reference`")
        pytest.skip("no Pose2Sim demo (make reference)")
    return path


def _trial(folder: Path, calibration: Path, config: TriangulationConfig) -> Reconstruction:
    views = [
        read_view(f"cam_{i:02d}", folder / "pose" / f"cam{i:02d}_json", BODY25B)
        for i in range(1, 5)
    ]
    return reconstruct(read_qca(calibration), views, BODY25B, config)


def limb_variation(points: np.ndarray) -> dict[str, float]:
    """Each limb's length variation over frames: standard deviation / mean, in %."""
    out = {}
    for name, (a, b) in LIMBS.items():
        length = np.linalg.norm(points[:, BODY25B.index(a)] - points[:, BODY25B.index(b)], axis=-1)
        out[name] = float(np.nanstd(length) / np.nanmean(length) * 100)
    return out


def test_the_single_trial_beats_plain_dlt_on_error_and_limb_lengths(pose2sim: Path) -> None:
    trial = pose2sim / "S01_Demo_SingleTrial"
    calibration = trial / "calibration" / "Calib.qca.txt"
    plain = _trial(trial, calibration, TriangulationConfig(max_error=1e6, refine=False))
    ours = _trial(trial, calibration, TriangulationConfig())
    assert len(plain.people) == len(ours.people) == 1
    base, person = plain.people[0], ours.people[0]
    # the published baseline: plain DLT over every camera, 13.2 px median
    assert 12.0 < np.nanmedian(base.error) < 14.5
    assert np.nanmedian(person.error) < 8.0
    assert max(limb_variation(person.points).values()) < 3.0
    solved = np.isfinite(person.points).all(-1)
    assert solved.sum() >= np.isfinite(base.points).all(-1).sum()
    # the subject is seen by every camera, the bystanders of cam_01 and cam_02 never chosen
    assert ((person.sources >= 0).sum(1) == 4).mean() > 0.9


def test_the_two_participants_are_found_in_every_view_and_kept_apart(pose2sim: Path) -> None:
    session = pose2sim / "S00_Demo_BatchSession"
    trial = session / "S00_P01_MultiParticipants" / "S00_P01_T02_Participants1-2"
    rec = _trial(
        trial, session / "S00_Calibration" / "Calib.qca.txt", TriangulationConfig(people=2)
    )
    assert len(rec.people) == 2
    for person in rec.people:
        assert np.isfinite(person.points).all(-1).any(-1).all()  # in every frame
        per_camera = (person.sources >= 0).mean(0)
        assert (per_camera >= 0.95).all(), per_camera  # by every camera
    centres = [np.nanmean(p.points, axis=1) for p in rec.people]
    apart = np.linalg.norm(centres[0] - centres[1], axis=-1)
    assert apart.min() > 0.5  # metres: two people, never one merged
    # in no frame does one camera's person serve both
    both = (rec.people[0].sources >= 0) & (rec.people[1].sources >= 0)
    assert (rec.people[0].sources[both] != rec.people[1].sources[both]).all()


@pytest.fixture(scope="module")
def df3d_result() -> Path:
    given = os.environ.get("POSEKIT_DF3D")
    folder = Path(given) if given else Path.home() / ".cache/posekit-test/df3d-0.57"
    path = folder / "data" / "df3d_result.pkl"
    if not path.is_file():
        if os.environ.get("POSEKIT_REQUIRE_REFERENCE") == "1":
            pytest.fail(f"DeepFly3D's fixture is missing at {path}: run `make reference`")
        pytest.skip("no DeepFly3D fixture (make reference)")
    return path


def test_deepfly3d_2d_triangulates_to_its_published_3d(df3d_result: Path) -> None:
    result = read_df3d_result(df3d_result)
    assert result.points3d is not None
    schema = result.schema  # DeepFly3D's 38 points and 28 bones, left and right mirrored
    assert schema.num_keypoints == 38 and len(schema.skeleton) == 28
    assert schema.keypoints[schema.flip_idx[0]] == "right_front_body_coxa"
    # which points each camera sees: DeepFly3D's rule (camera 3, in front, stores guesses for
    # all 38 points and sees 14; cameras 2 and 4 miss the stripes)
    assert np.isfinite(result.pixels[:, 0]).all(-1).sum(-1).tolist() == [19, 19, 16, 14, 16, 19, 19]
    solved = triangulate(result.rig, result.pixels)
    assert np.isfinite(solved.points).all()
    error = np.linalg.norm(solved.points - result.points3d, axis=-1)  # mm
    coxa = [BODY_COXA + 5 * leg + 19 * side for side in (0, 1) for leg in range(3)]
    moving = np.setdiff1d(np.arange(38), coxa)
    bone = np.linalg.norm(result.points3d[:, 1] - result.points3d[:, 0], axis=-1).mean()
    assert np.median(error) < 0.001
    assert error[:, moving].max() < 0.02 * bone  # 0.0102 mm measured, bone 0.516 mm
    # the body-coxa joints' 2D are one fixed position in every frame (the tethered body), their
    # 3D move: they were not triangulated from these 2D points, and agree within a quarter bone
    assert (result.pixels[:, :, coxa].std(1)[np.isfinite(result.pixels[:, 0, coxa])] == 0).all()
    assert error[:, coxa].max() < 0.26 * bone
