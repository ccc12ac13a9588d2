"""What `posekit triangulate` leaves in its folder: the 3D people as `posekit.track3d/1` JSON
Lines, a CSV and an NPZ table, a picture of the skeletons, an animated preview (each written
whole to a temporary name beside it, then renamed into place), and each camera's video with
the skeletons projected back onto it (written frame by frame)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from posekit.threed.cameras import Camera, CameraRig
from posekit.threed.reconstruct import Reconstruction
from posekit.track.events import event_line
from posekit.utils.extras import pyplot
from posekit.utils.paths import write_bytes_replacing, write_text_replacing

SCHEMA_VERSION = "posekit.track3d/1"
#: the most frames an animated preview shows (longer clips are subsampled evenly)
PREVIEW_FRAMES = 120


def track3d_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one 3D event."""
    text = resources.files("posekit.threed").joinpath("track3d.schema.json").read_text()
    return json.loads(text)


def _num(v: float, nd: int = 6) -> float | None:
    return round(float(v), nd) if np.isfinite(v) else None


def events3d(
    rec: Reconstruction, angles: dict[str, np.ndarray] | None = None
) -> Iterator[dict[str, Any]]:
    """One event per person per frame in which any of its keypoints was solved, frame by
    frame. `angles` maps a name to (people, F) degrees."""
    names = rec.schema.keypoints
    for f, frame in enumerate(rec.frames):
        for p, person in enumerate(rec.people):
            points = person.points[f]
            if not np.isfinite(points).all(-1).any():
                continue
            keypoints = []
            for k, name in enumerate(names):
                x, y, z = points[k]
                used = [rec.cameras[c] for c in np.nonzero(person.views[f, k])[0]]
                keypoints.append(
                    {
                        "name": name,
                        "x": _num(x),
                        "y": _num(y),
                        "z": _num(z),
                        "error": _num(person.error[f, k], 3),
                        "cameras": used,
                    }
                )
            views = {
                rec.cameras[c]: {
                    "index": int(person.sources[f, c]),
                    "track_id": int(person.track_ids[f, c]) if person.track_ids[f, c] > 0 else None,
                }
                for c in np.nonzero(person.sources[f] >= 0)[0]
            }
            event: dict[str, Any] = {
                "schema": SCHEMA_VERSION,
                "frame": int(frame),
                "timestamp": _num(rec.times[f]) if rec.times is not None else None,
                "person_id": person.id,
                "class": rec.schema.name,
                "unit": rec.unit,
                "keypoints": keypoints,
                "views": views,
            }
            if angles:
                event["angles"] = {n: _num(a[p, f], 2) for n, a in angles.items()}
            yield event


def write_jsonl(
    rec: Reconstruction, path: str | Path, angles: dict[str, np.ndarray] | None = None
) -> Path:
    return write_text_replacing(path, "".join(map(event_line, events3d(rec, angles))))


def write_csv(rec: Reconstruction, path: str | Path) -> Path:
    """One row per person, frame and keypoint: x, y, z (empty when missing), the error and
    the cameras used (joined by '+')."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(["frame", "person_id", "keypoint", "x", "y", "z", "error_px", "cameras"])
    for person in rec.people:
        for f, frame in enumerate(rec.frames):
            for k, name in enumerate(rec.schema.keypoints):
                xyz = person.points[f, k]
                cams = "+".join(rec.cameras[c] for c in np.nonzero(person.views[f, k])[0])
                values = [_text(v) for v in (*xyz, person.error[f, k])]
                out.writerow([int(frame), person.id, name, *values, cams])
    return write_text_replacing(path, buffer.getvalue())


def _text(v: float) -> str:
    return repr(float(v)) if np.isfinite(v) else ""


def write_npz(rec: Reconstruction, path: str | Path) -> Path:
    """Arrays: `points` (people, F, K, 3), `error` (people, F, K), `views` (people, F, K, C),
    `frames`, `person_ids`, `keypoints` (names), `cameras`, `unit`."""
    k, c, f = len(rec.schema.keypoints), len(rec.cameras), len(rec.frames)

    def stack(name: str, shape: tuple[int, ...]) -> np.ndarray:
        arrays = [getattr(p, name) for p in rec.people]
        return np.stack(arrays) if arrays else np.zeros((0, *shape))

    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        points=stack("points", (f, k, 3)),
        error=stack("error", (f, k)),
        views=stack("views", (f, k, c)).astype(bool),
        frames=rec.frames,
        person_ids=np.array([p.id for p in rec.people], dtype=np.int64),
        keypoints=np.array(rec.schema.keypoints),
        cameras=np.array(rec.cameras),
        unit=np.array(rec.unit),
    )
    return write_bytes_replacing(path, buffer.getvalue())


def _up_axis(rec: Reconstruction) -> int:
    """The world axis people stand along: the one with the largest spread of their points
    within a frame, summed over frames (their height beats their width and depth)."""
    spans = [np.nanmax(p.points, 1) - np.nanmin(p.points, 1) for p in rec.people]
    if not spans:
        return 2
    total = np.nansum(np.concatenate(spans), axis=0)
    return int(np.argmax(total))


def _draw(ax: Any, rec: Reconstruction, frame: int, up: int) -> None:
    """Every person's skeleton at `frame`: left limbs blue, right ones red (the schema's own
    sides), the rest in the person's colour, so a left/right swap shows."""
    axes = [a for a in range(3) if a != up] + [up]
    side_colour = {"left": "tab:blue", "right": "tab:red"}
    sides = rec.schema.edge_sides()
    for p, person in enumerate(rec.people):
        pts = person.points[frame][:, axes]
        own = pyplot("3D plots").get_cmap("Dark2")(p % 8)
        for (a, b), side in zip(rec.schema.skeleton, sides, strict=True):
            if np.isfinite(pts[[a, b]]).all():
                ax.plot(*pts[[a, b]].T, color=side_colour.get(side, own), lw=2)
        ok = np.isfinite(pts).all(-1)
        ax.scatter(*pts[ok].T, s=6, color="black")


def _frame_axes(ax: Any, rec: Reconstruction, up: int) -> None:
    every = np.concatenate([p.points.reshape(-1, 3) for p in rec.people] or [np.zeros((1, 3))])
    every = every[np.isfinite(every).all(-1)]
    if not len(every):
        every = np.zeros((1, 3))
    axes = [a for a in range(3) if a != up] + [up]
    low, high = every.min(0)[axes], every.max(0)[axes]
    centre, half = (low + high) / 2, max(float((high - low).max()) / 2, 1e-9)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    labels = "xyz"
    ax.set_xlabel(f"{labels[axes[0]]} ({rec.unit})")
    ax.set_ylabel(f"{labels[axes[1]]} ({rec.unit})")
    ax.set_zlabel(f"{labels[axes[2]]} ({rec.unit})")


def plot_skeletons(rec: Reconstruction, path: str | Path, *, snapshots: int = 4) -> Path:
    """A PNG of every person's skeleton at `snapshots` frames spread over the clip, side by
    side, in the world frame with equal axes, standing upright (left limbs blue, right red)."""
    plt = pyplot("3D plots")
    up = _up_axis(rec)
    frames = sorted({int(i) for i in np.linspace(0, len(rec.frames) - 1, snapshots)})
    fig = plt.figure(figsize=(4 * len(frames), 4.6), dpi=100)
    for n, f in enumerate(frames):
        ax = fig.add_subplot(1, len(frames), n + 1, projection="3d")
        _draw(ax, rec, f, up)
        _frame_axes(ax, rec, up)
        ax.set_title(f"frame {rec.frames[f]}")
    fig.suptitle(f"{len(rec.people)} people triangulated from {', '.join(rec.cameras)}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return write_bytes_replacing(path, buffer.getvalue())


def animate(rec: Reconstruction, path: str | Path, *, fps: float = 10.0) -> Path:
    """An animated GIF of the skeletons, one frame per picture (at most `PREVIEW_FRAMES`)."""
    plt = pyplot("3D plots")
    from PIL import Image

    up = _up_axis(rec)
    count = min(len(rec.frames), PREVIEW_FRAMES)
    pictures = []
    fig = plt.figure(figsize=(4.5, 4.5), dpi=80)
    for f in sorted({int(i) for i in np.linspace(0, len(rec.frames) - 1, count)}):
        fig.clear()
        ax = fig.add_subplot(projection="3d")
        _draw(ax, rec, f, up)
        _frame_axes(ax, rec, up)
        ax.set_title(f"frame {rec.frames[f]}")
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        pictures.append(Image.fromarray(rgba[..., :3]).convert("P", palette=Image.ADAPTIVE))
    plt.close(fig)
    buffer = io.BytesIO()
    pictures[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=int(1000 / fps),
        loop=0,
    )
    return write_bytes_replacing(path, buffer.getvalue())


def _seen_by(rec: Reconstruction, camera: Camera) -> np.ndarray:
    """(people, F, K, 3) every person's points as `camera` sees them: posekit's pixels
    (centres at .5, as drawn), and 1 where the point is known, 0 where it is missing."""
    out = np.zeros((len(rec.people), len(rec.frames), len(rec.schema.keypoints), 3))
    for p, person in enumerate(rec.people):
        out[p, ..., :2] = camera.project(np.nan_to_num(person.points)) + 0.5
        out[p, ..., 2] = np.isfinite(person.points).all(-1)
    return out


def write_reprojections(
    rec: Reconstruction,
    rig: CameraRig,
    videos: dict[str, str],
    folder: str | Path,
    offsets: dict[str, int] | None = None,
) -> list[Path]:
    """Each camera's video with every person's 3D skeleton projected back onto its frames
    (`reprojected_<camera>.mp4`, drawn as posekit draws every skeleton, each person boxed and
    labelled with its id), so a wrong association or a bad calibration shows where it
    happens. A camera's frame n is the reconstruction's frame n - its offset."""
    from posekit.predict.sources import read_video
    from posekit.predict.writers import VideoSink
    from posekit.viz.annotator import SkeletonAnnotator

    folder = Path(folder)
    written = []
    index = {int(f): i for i, f in enumerate(rec.frames)}
    annotator = SkeletonAnnotator(rec.schema, visibility_flags=False)
    for name, source in videos.items():
        camera = rig.camera(name)
        shift = (offsets or {}).get(name, 0)
        drawn = _seen_by(rec, camera)
        sink = None
        try:
            for frame in read_video(source):
                if frame.image is None:
                    continue
                image = frame.image
                f = index.get(frame.index - shift)
                seen = (
                    [] if f is None else [p for p in range(len(drawn)) if drawn[p, f, :, 2].any()]
                )
                if seen:
                    kp = drawn[seen, f]
                    known = kp[..., 2:] > 0
                    low = np.where(known, kp[..., :2], np.inf).min(1)
                    high = np.where(known, kp[..., :2], -np.inf).max(1)
                    labels = [f"id {rec.people[p].id}" for p in seen]
                    image = annotator.annotate(image, kp, np.hstack([low, high]), labels)
                if sink is None:
                    path = folder / f"reprojected_{name}.mp4"
                    sink = VideoSink.for_source(path, source, image.shape[:2])
                sink.write(image)
        finally:
            if sink is not None:
                sink.close()
                written.append(sink.path)
    return written
