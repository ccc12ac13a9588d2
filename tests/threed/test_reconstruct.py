"""From several cameras' 2D people to 3D people, on virtual cameras watching people whose 3D
keypoints are known: each camera lists them in its own order, one sees a stranger the others
do not, one loses a person for a while; association finds who is who, ids hold over time,
and the refinement brings noisy bones back to constant lengths without inventing points."""

from __future__ import annotations

import numpy as np
import pytest
from rigs3d import COCO17, rig, seen, walkers

from posekit.threed.associate import associate, synchronise
from posekit.threed.reconstruct import TriangulationConfig, reconstruct
from posekit.threed.refine import refine
from posekit.threed.triangulate import triangulate
from posekit.threed.views import View
from posekit.utils.errors import UserError

FRAMES = 16


def _views(people: np.ndarray, noise: float = 0.5, seed: int = 0) -> list[View]:
    """Each camera's view of (N, F, K, 3) people, in a shuffled order per frame, with pixel
    noise; camera 0 also sees a stranger, camera 2 loses person 1 in frames 5-9."""
    rng = np.random.default_rng(seed)
    cameras = rig()
    stranger = walkers(FRAMES, [(300.0, -900.0)], seed=9)[0]
    views = []
    for c, pixels in enumerate(seen(cameras, people)):
        n = len(people) + (c == 0)
        keypoints = np.full((FRAMES, n, 17, 3), np.nan)
        ids = np.full((FRAMES, n), -1)
        for f in range(FRAMES):
            order = rng.permutation(n)
            for slot, who in enumerate(order):
                if who == len(people):
                    xy = cameras.cameras[0].project(stranger[f])
                elif c == 2 and who == 1 and 5 <= f < 10:
                    continue
                else:
                    xy = pixels[who, f]
                keypoints[f, slot, :, :2] = xy + rng.normal(0, noise, xy.shape)
                keypoints[f, slot, :, 2] = 0.9
                ids[f, slot] = 10 * c + who + 1
        views.append(View(cameras.names[c], np.arange(FRAMES), keypoints, ids))
    return views


def test_people_are_found_in_every_camera_and_keep_their_ids() -> None:
    truth = walkers(FRAMES, [(-700.0, -500.0), (600.0, 400.0), (-200.0, 700.0)])
    rec = reconstruct(rig(), _views(truth), COCO17, TriangulationConfig(people=0))
    assert len(rec.people) == 3
    for person in rec.people:
        distance = np.linalg.norm(person.points[None] - truth, axis=-1).mean(-1)  # (N, F)
        who = distance.mean(1).argmin()
        assert distance[who].max() < 5.0  # mm, every frame the same true person
        # the camera views chosen are that person's, never the stranger or another person
        expected = 10 * np.arange(4) + who + 1
        chosen = np.where(person.sources >= 0, person.track_ids, -1)
        assert ((chosen == expected) | (chosen == -1)).all()
        assert (person.sources >= 0).sum() >= FRAMES * 4 - (5 if who == 1 else 0)
    assert sorted(p.id for p in rec.people) == [1, 2, 3]


def test_one_person_is_the_one_most_cameras_agree_on() -> None:
    truth = walkers(FRAMES, [(-700.0, -500.0), (600.0, 400.0)])
    rec = reconstruct(rig(), _views(truth), COCO17, TriangulationConfig(people=1))
    assert len(rec.people) == 1
    person = rec.people[0]
    assert np.isfinite(person.points).all()
    # person 0 is seen by every camera in every frame, person 1 is lost by one for a while
    assert np.linalg.norm(person.points - truth[0], axis=-1).mean(-1).max() < 5.0


def test_the_association_refuses_a_threshold_no_one_meets() -> None:
    truth = walkers(FRAMES, [(0.0, 0.0)])
    sync = synchronise(rig(), _views(truth, noise=3.0))
    assert associate(rig(), sync, max_error=0.01).ids == []


def test_views_that_share_no_frame_or_name_no_camera_are_one_line() -> None:
    views = _views(walkers(FRAMES, [(0.0, 0.0)]))
    with pytest.raises(UserError, match=r"views camX are not cameras of the calibration"):
        synchronise(
            rig(), [*views[:3], View("camX", views[3].frames, views[3].keypoints, views[3].ids)]
        )
    apart = [v.shifted(100 * i) for i, v in enumerate(views)]
    with pytest.raises(UserError, match=r"no frame is seen by two views .*check the offsets"):
        synchronise(rig(), apart)
    with pytest.raises(UserError, match="needs at least 2 views"):
        synchronise(rig(), views[:1])


def _bone_spread(points: np.ndarray) -> float:
    """The largest coefficient of variation (%) of a limb's length over frames."""
    limbs = [(5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16)]
    lengths = np.stack([np.linalg.norm(points[:, a] - points[:, b], axis=-1) for a, b in limbs])
    return float((np.nanstd(lengths, 1) / np.nanmean(lengths, 1)).max() * 100)


def test_refinement_keeps_bones_constant_and_comes_closer_to_the_truth() -> None:
    cameras = rig()
    truth = walkers(FRAMES, [(0.0, 0.0)])[0]
    rng = np.random.default_rng(1)
    pixels = seen(cameras, truth) + rng.normal(0, 3.0, (4, FRAMES, 17, 2))
    pixels[1:, 4, 9] = np.nan  # the left wrist of frame 4 is seen by one camera only
    solved = triangulate(cameras, pixels)
    used = np.moveaxis(solved.views, -1, 0)
    refined = refine(cameras, solved.points, pixels, used, COCO17.skeleton)
    assert np.isnan(refined.points[4, 9]).all()  # missing stays missing
    assert np.isfinite(refined.points).all(-1).sum() == FRAMES * 17 - 1
    before = np.nanmean(np.linalg.norm(solved.points - truth, axis=-1))
    after = np.nanmean(np.linalg.norm(refined.points - truth, axis=-1))
    assert after < 0.8 * before
    assert _bone_spread(refined.points) < 0.5 * _bone_spread(solved.points)
    true_lengths = np.linalg.norm(truth[0, 5] - truth[0, 7])
    assert refined.lengths[COCO17.skeleton.index((5, 7))] == pytest.approx(true_lengths, rel=0.02)


def test_a_view_outside_its_cameras_image_is_one_line() -> None:
    views = _views(walkers(FRAMES, [(0.0, 0.0)]))
    wrong = views[1]
    flipped = wrong.keypoints.copy()
    flipped[..., :2] = flipped[..., :2] * 2.5  # a view of a camera with 2.5x the resolution
    views[1] = View(wrong.name, wrong.frames, flipped, wrong.ids)
    with pytest.raises(
        UserError,
        match=r"view cam1: \d+% of its keypoints lie outside camera "
        r"cam1's 1280x720 image",
    ):
        synchronise(rig(), views)


def test_a_crowd_is_associated_camera_by_camera() -> None:
    """Eight people in six cameras make 9^6 combinations a frame: too many to score at
    once, so people are matched camera by camera; each is still found, whole, in every
    frame (and the shuffled orders and a missing person do not mix them up)."""
    starts = [(-900.0 + 600 * (i % 4), -500.0 + 1000 * (i // 4)) for i in range(8)]
    truth = walkers(6, starts, seed=4)
    cameras = rig(6)
    rng = np.random.default_rng(5)
    views = []
    for c, pixels in enumerate(seen(cameras, truth)):
        keypoints = np.full((6, 8, 17, 3), np.nan)
        for f in range(6):
            for slot, who in enumerate(rng.permutation(8)):
                if (c, who) == (3, 2):
                    continue  # camera 3 never sees person 2
                keypoints[f, slot, :, :2] = pixels[who, f] + rng.normal(0, 0.5, (17, 2))
                keypoints[f, slot, :, 2] = 0.9
        views.append(View(cameras.names[c], np.arange(6), keypoints, np.full((6, 8), -1)))
    rec = reconstruct(cameras, views, COCO17, TriangulationConfig(people=0, refine=False))
    assert len(rec.people) == 8
    matched = set()
    for person in rec.people:
        distance = np.linalg.norm(person.points[None] - truth, axis=-1).mean(-1)  # (N, F)
        who = int(distance.mean(1).argmin())
        assert distance[who].max() < 5.0
        matched.add(who)
    assert matched == set(range(8))
