"""`posekit calibrate`: a camera rig from ChArUco board videos or image folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from posekit.cli.logs import setup_logging
from posekit.cli.options import camera_option, force_option, remaining_settings
from posekit.threed.calibrate import CalibrationConfig


@click.command()
@click.option(
    "--board",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The board, a YAML file: squares: [7, 5], square_length: 40, marker_length: 30, "
    "dictionary: DICT_4X4_50, unit: mm.",
)
@camera_option(
    "--view",
    "views",
    required=True,
    help="A camera's board video, or folder of images (frames line up by sorted order); "
    "repeat for each camera. The first is the world frame.",
)
@remaining_settings(CalibrationConfig)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@force_option
def calibrate(board: Path, views: dict[str, str], out: Path, force: bool, **settings: Any) -> None:
    """Calibrate cameras from a ChArUco board they film: intrinsics per camera, poses from
    frames the cameras share, then bundle adjustment of all at once. Writes
    calibration.toml (Anipose's / Pose2Sim's format) and report.json to --out."""
    from posekit.threed import calibrate as calibration
    from posekit.utils.outputs import claim_output
    from posekit.utils.paths import write_text_replacing

    setup_logging()
    config = CalibrationConfig(**settings)
    described = calibration.Board.read_yaml(board)
    claim_output(out, "calibrate", source=str(board), force=force)
    detections, sizes = {}, {}
    for name, path in views.items():
        detections[name], sizes[name] = calibration.detect_in_source(described, name, path, config)
    result = calibration.calibrate(described, detections, sizes, config)
    result.rig.write_toml(out / "calibration.toml")
    report = {
        "board": described.describe(),
        "unit": described.unit,
        "cameras": [vars(r) for r in result.reports],
    }
    write_text_replacing(out / "report.json", json.dumps(report, indent=2) + "\n")
    for r in result.reports:
        click.echo(
            f"{r.name}: {r.detections} board views ({r.shared} shared), "
            f"reprojection {r.error:.3f} px RMS"
        )
    click.echo(f"-> {out / 'calibration.toml'}")
