"""From each camera's 2D people to 3D people: synchronise the views, associate people across
cameras, triangulate each person (dropping views that disagree), then refine over time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from posekit.schema import KeypointSchema
from posekit.threed.associate import associate, pick, synchronise
from posekit.threed.cameras import CameraRig
from posekit.threed.refine import refine
from posekit.threed.triangulate import reprojection_error, triangulate
from posekit.threed.views import View
from posekit.utils.bounds import check_ranges, ranged

log = logging.getLogger(__name__)


@dataclass
class TriangulationConfig:
    """How views become 3D points (each field is also a `posekit triangulate` option)."""

    # views of a keypoint below this confidence are not used (Pose2Sim's likelihood threshold)
    min_confidence: float = ranged(0.3, 0.0, 1.0)
    # a point seen by fewer good views is missing (NaN), never guessed
    min_views: int = ranged(2, 2, 1000)
    # pixels: a point whose views reproject farther on average loses its worst view, again
    # while it has more than min_views (Pose2Sim's rule; a large value turns it off)
    max_error: float = ranged(10.0, 0.0, 1e6)
    # people kept (1: a single-person recording's subject, the person seen longest by the
    # most cameras, as Pose2Sim's single-person mode; 0: every person the views agree on)
    people: int = ranged(1, 0, 1000)
    # pixels: the mean reprojection error under which one person per camera are the same
    association_error: float = ranged(20.0, 0.0, 1e6)
    # refine every person's points over time: reprojection, bone lengths and smoothness
    refine: bool = True
    # pixels: the reprojection spread the refinement allows
    pixel_sigma: float = ranged(5.0, 1e-3, 1e4)
    # the spread of a bone's length over frames, as a fraction of it
    bone_sigma: float = ranged(0.02, 1e-4, 10.0)
    # a point's step between frames, as a fraction of the skeleton's median bone length
    step_sigma: float = ranged(0.1, 1e-4, 100.0)

    def __post_init__(self) -> None:
        check_ranges(self, "triangulation settings")


@dataclass
class Person3D:
    """One person's 3D keypoints over the clip's frames."""

    id: int
    points: np.ndarray  # (F, K, 3) in the rig's unit; NaN: missing
    error: np.ndarray  # (F, K) mean reprojection error over the views used, pixels
    views: np.ndarray  # (F, K, C) bool: the cameras each point was solved from
    sources: np.ndarray  # (F, C) the person's index among each view's people (-1: unseen)
    track_ids: np.ndarray  # (F, C) the view's track id of that person (-1: none)


@dataclass
class Reconstruction:
    """Every person found in 3D, on the frames the views share."""

    schema: KeypointSchema
    cameras: list[str]
    unit: str
    frames: np.ndarray  # (F,)
    people: list[Person3D] = field(default_factory=list)
    times: np.ndarray | None = None  # (F,) seconds (NaN where no view says)


def reconstruct(
    rig: CameraRig,
    views: list[View],
    schema: KeypointSchema,
    config: TriangulationConfig | None = None,
) -> Reconstruction:
    """3D people from the views (one per camera of `rig`, by name); see the module docstring."""
    config = config or TriangulationConfig()
    sync = synchronise(rig, views)
    association = associate(
        rig,
        sync,
        people=config.people or None,
        min_confidence=config.min_confidence,
        max_error=config.association_error,
    )
    out = Reconstruction(schema, rig.names, rig.unit, sync.frames, times=sync.times)
    for slot, person_id in enumerate(association.ids):
        chosen = association.chosen[:, slot]
        px, conf = pick(sync, chosen)
        px = np.where((conf >= config.min_confidence)[..., None], px, np.nan)
        solved = triangulate(
            rig,
            px,
            conf,
            min_confidence=config.min_confidence,
            min_views=config.min_views,
            max_error=config.max_error,
        )
        points, error, views_used = solved.points, solved.error, solved.views
        if config.refine:
            used = np.moveaxis(views_used, -1, 0)
            refined = refine(
                rig,
                points,
                px,
                used,
                schema.skeleton,
                pixel_sigma=config.pixel_sigma,
                bone_sigma=config.bone_sigma,
                step_sigma=config.step_sigma,
            )
            points = refined.points
            error = reprojection_error(rig, points, px, used)  # of the refined points
        f, c = np.nonzero(chosen >= 0)
        track_ids = np.full(chosen.shape, -1, dtype=np.int64)
        track_ids[f, c] = sync.ids[c, f, chosen[f, c]]
        out.people.append(Person3D(person_id, points, error, views_used, chosen, track_ids))
    solved = sum(int(np.isfinite(p.points).all(-1).sum()) for p in out.people)
    log.info(
        "triangulated %d people over %d frames: %d points, median reprojection %.2f px",
        len(out.people),
        len(sync.frames),
        solved,
        _median_error(out),
    )
    return out


def _median_error(rec: Reconstruction) -> float:
    errors = np.concatenate([p.error[np.isfinite(p.error)] for p in rec.people] or [np.empty(0)])
    return float(np.median(errors)) if len(errors) else float("nan")
