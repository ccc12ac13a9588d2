"""Showing and saving evaluation results: a terminal table, metrics.json, instances.csv, plots."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from posekit.eval.cocoeval import STAT_NAMES
from posekit.eval.metrics import KeypointMetrics
from posekit.eval.pose3d import LiftMetrics
from posekit.utils.paths import write_text_replacing

_COCO_LABELS = {
    "AP": "AP @[OKS .50:.95 | all]", "AP50": "AP @[OKS .50 | all]", "AP75": "AP @[OKS .75 | all]",
    "APm": "AP @[OKS .50:.95 | medium]", "APl": "AP @[OKS .50:.95 | large]",
    "AR": "AR @[OKS .50:.95 | all]", "AR50": "AR @[OKS .50 | all]", "AR75": "AR @[OKS .75 | all]",
    "ARm": "AR @[OKS .50:.95 | medium]", "ARl": "AR @[OKS .50:.95 | large]",
}  # fmt: skip


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def print_metrics(m: KeypointMetrics, console: Console | None = None) -> None:
    """COCO statistics, distance metrics and a per-keypoint table."""
    console = console or Console(highlight=False)
    coco = Table(title="COCO keypoints (maxDets 20)", title_justify="left")
    coco.add_column("metric")
    coco.add_column("value", justify="right")
    for name in STAT_NAMES:
        coco.add_row(f"{name:<5} {_COCO_LABELS[name]}", _fmt(m.coco[name]))
    console.print(coco)
    other = Table(title="Distances", title_justify="left")
    other.add_column("metric")
    other.add_column("value", justify="right")
    other.add_row(f"PCK@{m.pck_alpha:g} (box's longer side)", _fmt(m.pck))
    other.add_row("PCK AUC (alpha 0..0.2)", _fmt(m.pck_auc))
    other.add_row("PCKh@0.5", _fmt(m.pckh))
    other.add_row("PCK torso@0.2", _fmt(m.pck_torso))
    other.add_row("EPE px (DeepLabCut's test 'RMSE')", _fmt(m.epe, 2))
    other.add_row(f"EPE px, confidence >= {m.pcutoff:g}", _fmt(m.epe_pcutoff, 2))
    other.add_row("NME (inter-ocular)", _fmt(m.nme))
    c = m.counts
    other.add_row("matched / counted instances", f"{c['matched']} / {c['counted_ground_truth']}")
    console.print(other)
    kp = Table(title="Per keypoint", title_justify="left")
    kp.add_column("keypoint")
    kp.add_column("AP (OKS on this keypoint)", justify="right")
    kp.add_column(f"PCK@{m.pck_alpha:g}", justify="right")
    for j, name in enumerate(m.keypoint_names):
        ap = m.per_keypoint_ap[j] if m.per_keypoint_ap else None
        kp.add_row(name, _fmt(ap), _fmt(m.per_keypoint_pck[j]))
    console.print(kp)


def save_metrics(m: KeypointMetrics, out_dir: str | Path, *, plots: bool = True) -> list[Path]:
    """Write metrics.json, instances.csv (worst first) and, with `plots`, the two PNG plots."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "metrics.json", out / "instances.csv"]
    written[0].write_text(json.dumps(m.to_dict(), indent=2))
    rows = m.instances()
    with written[1].open("w", newline="") as f:
        fields = ["image_id", "category_id", "gt_row", "matched", "oks", "mean_error_px"]
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    if plots:
        from posekit.eval.plots import plot_per_keypoint, plot_pr_curves

        written.append(plot_pr_curves(m.coco_result, out / "pr_curves.png"))
        written.append(plot_per_keypoint(m, out / "per_keypoint.png"))
    return written


def save_lift_metrics(m: LiftMetrics, out_dir: str | Path, *, plots: bool = True) -> list[Path]:
    """Write metrics.json (the errors and MPJPE per joint, mm) and, with `plots`,
    per_joint.png (a bar chart of MPJPE per joint)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        **m.as_dict(),
        "clips": m.clips,
        "frames": m.frames,
        "per_joint_MPJPE_mm": m.per_joint(),
    }
    written = [write_text_replacing(out / "metrics.json", json.dumps(report, indent=2))]
    if plots:
        from posekit.eval.plots import plot_per_joint_error

        written.append(plot_per_joint_error(m.per_joint(), out / "per_joint.png"))
    return written
