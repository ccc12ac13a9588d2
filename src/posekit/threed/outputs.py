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

from posekit.threed.cameras import CameraRig
from posekit.threed.reconstruct import Reconstruction
from posekit.utils.extras import require
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
    lines = [json.dumps(e, separators=(",", ":"), allow_nan=False) for e in events3d(rec, angles)]
    return write_text_replacing(path, "".join(line + "\n" for line in lines))


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


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "plot", "3D plots")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "plot", "3D plots")


def _up_axis(rec: Reconstruction) -> int:
    """The world axis people stand along: the one with the largest spread of their points
    within a frame, summed over frames (their height beats their width and depth)."""
    spans = [np.nanmax(p.points, 1) - np.nanmin(p.points, 1) for p in rec.people]
    if not spans:
        return 2
    total = np.nansum(np.concatenate(spans), axis=0)
    return int(np.argmax(total))


def _side_colour(schema_names: tuple[str, ...], a: int, b: int, person: int) -> Any:
    """Left limbs blue, right ones red, the rest the person's colour (so a left/right swap
    shows)."""
    sides = {n.split("_")[0] for n in (schema_names[a], schema_names[b])}
    if sides == {"left"}:
        return "tab:blue"
    if sides == {"right"}:
        return "tab:red"
    return _pyplot().get_cmap("Dark2")(person % 8)


def _draw(ax: Any, rec: Reconstruction, frame: int, up: int) -> None:
    axes = [a for a in range(3) if a != up] + [up]
    for p, person in enumerate(rec.people):
        pts = person.points[frame][:, axes]
        for a, b in rec.schema.skeleton:
            if np.isfinite(pts[[a, b]]).all():
                colour = _side_colour(rec.schema.keypoints, a, b, p)
                ax.plot(*pts[[a, b]].T, color=colour, lw=2)
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
    plt = _pyplot()
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
    plt = _pyplot()
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


def write_reprojections(
    rec: Reconstruction,
    rig: CameraRig,
    videos: dict[str, str],
    folder: str | Path,
    offsets: dict[str, int] | None = None,
) -> list[Path]:
    """Each camera's video with every person's 3D skeleton projected back onto its frames
    (`reprojected_<camera>.mp4`: left limbs blue, right red, the person's id at the head), so
    a wrong association or a bad calibration shows where it happens. A camera's frame n is
    the reconstruction's frame n - its offset."""
    from posekit.predict.sources import read_video
    from posekit.predict.writers import VideoSink

    folder = Path(folder)
    written = []
    index = {int(f): i for i, f in enumerate(rec.frames)}
    for name, source in videos.items():
        camera = rig.camera(name)
        shift = (offsets or {}).get(name, 0)
        projected = [camera.project(np.nan_to_num(p.points, nan=0.0)) for p in rec.people]
        known = [np.isfinite(p.points).all(-1) for p in rec.people]
        sink = None
        try:
            for frame in read_video(source):
                if frame.image is None:
                    continue
                image = frame.image.copy()
                f = index.get(frame.index - shift)
                if f is not None:
                    for p, person in enumerate(rec.people):
                        _draw_2d(image, rec, projected[p][f], known[p][f], person.id, p)
                if sink is None:
                    path = folder / f"reprojected_{name}.mp4"
                    sink = VideoSink.for_source(path, source, image.shape[:2])
                sink.write(image)
        finally:
            if sink is not None:
                sink.close()
                written.append(sink.path)
    return written


#: BGR colours of the reprojected skeleton
_LEFT, _RIGHT, _MIDDLE = (200, 120, 30), (40, 40, 220), (60, 200, 60)


def _draw_2d(
    image: np.ndarray,
    rec: Reconstruction,
    pixels: np.ndarray,
    known: np.ndarray,
    person_id: int,
    slot: int,
) -> None:
    """One person's reprojected skeleton (sub-pixel lines: OpenCV's shift of 4 bits)."""
    import cv2

    fixed = np.rint(np.nan_to_num(pixels) * 16).astype(np.int64)  # 4 fractional bits
    names = rec.schema.keypoints
    for a, b in rec.schema.skeleton:
        if not (known[a] and known[b]):
            continue
        sides = {names[a].split("_")[0], names[b].split("_")[0]}
        colour = _LEFT if sides == {"left"} else _RIGHT if sides == {"right"} else _MIDDLE
        start, end = tuple(map(int, fixed[a])), tuple(map(int, fixed[b]))
        cv2.line(image, start, end, colour, 2, cv2.LINE_AA, shift=4)
    if known.any():
        top = pixels[known][np.argmin(pixels[known][:, 1])]
        cv2.putText(
            image,
            f"{person_id}",
            (int(top[0]), max(12, int(top[1]) - 8)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6,
            (255, 255, 255),
            2,
            cv2.LINE_AA,
        )
