"""`posekit triangulate`: 3D people from calibrated cameras' 2D keypoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from posekit.cli.logs import setup_logging
from posekit.cli.options import (
    angle_option,
    camera_option,
    force_option,
    parse_angles,
    remaining_settings,
)
from posekit.threed.reconstruct import TriangulationConfig


@click.command()
@click.option(
    "--calibration",
    required=True,
    type=click.Path(path_type=Path),
    help="The cameras: Anipose's / Pose2Sim's calibration.toml, a Qualisys .qca.txt, or "
    "EasyMocap's intri.yml (extri.yml beside it) or their folder.",
)
@camera_option(
    "--view",
    "views",
    required=True,
    help="A camera's 2D keypoints: posekit track events (.jsonl), posekit predict's "
    "predictions.json or an OpenPose JSON folder; "
    "repeat for each camera (names as in the calibration).",
)
@camera_option(
    "--offset",
    "offsets",
    metavar="CAMERA=FRAMES",
    help="The camera's frame N is the others' frame N - FRAMES (its recording started "
    "FRAMES frames earlier); repeatable.",
)
@click.option(
    "--schema",
    default=None,
    help="The keypoints of the views: a preset (body25, body25b, coco18 for OpenPose; "
    "coco17 ...) or a schema YAML (default: the preset whose names the events carry).",
)
@remaining_settings(TriangulationConfig)
@camera_option(
    "--video",
    "videos",
    help="A camera's video: the 3D skeletons are drawn back onto its frames "
    "(reprojected_CAMERA.mp4); repeatable.",
)
@click.option(
    "--fps",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="The views' frame rate: times for frames no view gives one for (OpenPose JSON and "
    "predictions carry none; posekit track events do).",
)
@angle_option
@click.option(
    "--preview/--no-preview",
    default=True,
    show_default=True,
    help="An animated GIF of the skeletons.",
)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@force_option
def triangulate(
    calibration: Path,
    views: dict[str, str],
    offsets: dict[str, str],
    schema: str | None,
    videos: dict[str, str],
    fps: float | None,
    angles: tuple[str, ...],
    preview: bool,
    out: Path,
    force: bool,
    **settings: Any,
) -> None:
    """Triangulate people seen by calibrated cameras: posekit.track3d/1 events (JSON Lines),
    a CSV and an NPZ table, a PNG of the skeletons and an animated preview, in --out."""
    from posekit.analytics import resolve_triple
    from posekit.threed import outputs
    from posekit.threed.associate import check_names
    from posekit.threed.reconstruct import reconstruct
    from posekit.threed.rig_files import read_rig
    from posekit.threed.views import read_view, view_schema
    from posekit.utils.outputs import claim_output

    setup_logging()
    unknown = sorted((set(offsets) | set(videos)) - set(views))
    if unknown:
        raise click.BadParameter(
            f"no --view for {', '.join(unknown)}", param_hint="--offset/--video"
        )
    try:
        frames = {name: int(v) for name, v in offsets.items()}
    except ValueError:
        raise click.BadParameter(
            "an offset is a whole number of frames", param_hint="--offset"
        ) from None
    rig = read_rig(calibration)
    check_names(rig, list(views))
    keypoints = view_schema(schema, list(views.values()))
    triples = {n: resolve_triple(keypoints, t) for n, t in parse_angles(angles).items()}
    config = TriangulationConfig(**settings)
    claim_output(out, "triangulate", source=str(calibration), force=force)
    loaded = [read_view(n, p, keypoints).shifted(frames.get(n, 0)) for n, p in views.items()]
    rec = reconstruct(rig, loaded, keypoints, config)
    if fps is not None:
        clock = rec.frames / fps
        rec.times = clock if rec.times is None else np.where(np.isnan(rec.times), clock, rec.times)
    measured = _angles_3d(rec, triples)
    outputs.write_jsonl(rec, out / "points3d.jsonl", measured)
    outputs.write_csv(rec, out / "points3d.csv")
    outputs.write_npz(rec, out / "points3d.npz")
    outputs.plot_skeletons(rec, out / "skeleton3d.png")
    if preview:
        outputs.animate(rec, out / "preview3d.gif")
    outputs.write_reprojections(rec, rig, videos, out, frames)
    solved = sum(int(np.isfinite(p.points).all(-1).sum()) for p in rec.people)
    click.echo(f"{len(rec.people)} people, {len(rec.frames)} frames, {solved} points -> {out}")


def _angles_3d(rec: Any, triples: dict[str, tuple[int, int, int]]) -> dict[str, Any] | None:
    """(people, F) degrees per named angle, measured on the 3D points."""
    if not triples:
        return None
    from posekit.analytics import joint_angle_3d

    out = {}
    for name, abc in triples.items():
        per_person = [joint_angle_3d(p.points, abc) for p in rec.people]
        out[name] = np.stack(per_person) if per_person else np.zeros((0, len(rec.frames)))
    return out
