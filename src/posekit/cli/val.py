"""`posekit val`: evaluate a COCO keypoint results file against a dataset."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from posekit.cli.options import flip_option, half_option, schema_option, setting_option
from posekit.data.coco import list_ids, unmatchable_ids, with_matchable_ids
from posekit.data.dataset import KeypointDataset
from posekit.data.formats import describe, validation_split
from posekit.data.sequences import is_sequence_dataset
from posekit.eval.metrics import EvalConfig, evaluate
from posekit.eval.report import print_metrics, save_lift_metrics, save_metrics
from posekit.predict.predictor import PredictConfig
from posekit.schema import get_schema


def _sigmas(value: str | None) -> list[float] | None:
    """A comma-separated list, a preset name or a schema YAML file."""
    if value is None:
        return None
    if "," in value or value.replace(".", "", 1).isdigit():
        try:
            return [float(v) for v in value.split(",")]
        except ValueError:
            raise click.BadParameter(f"not a list of numbers: {value!r}") from None
    return list(get_schema(value).sigmas)


@click.command()
@click.option(
    "--gt",
    "--data",
    "gt",
    type=click.Path(path_type=Path),
    required=True,
    help=f"Ground truth, in any format posekit reads ({describe()}).",
)
@click.option(
    "--split",
    default="val",
    show_default=True,
    help="Split of a multi-split dataset (a single-split source is used as is).",
)
@click.option(
    "--pred",
    type=click.Path(path_type=Path),
    default=None,
    help="Predictions in COCO keypoint results format (JSON list).",
)
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    default=None,
    help="A model file to run on the split (checkpoint, ONNX export, ...), instead of a "
    "predictions file.",
)
@schema_option
@click.option(
    "--detector",
    type=click.Path(path_type=Path),
    default=None,
    help="Top-down --model: boxes from a COCO detection-results JSON or a detector checkpoint "
    "(default: the ground-truth boxes).",
)
@setting_option(PredictConfig, "imgsz", default=None, help="Input size for --model.")
@setting_option(PredictConfig, "batch", default=8, help="Images per network pass.")
@click.option("--device", default="auto", show_default=True)
@flip_option
@half_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write metrics.json, instances.csv and plots here.",
)
@setting_option(EvalConfig, "max_dets", help="Detections per image that COCO AP counts.")
@click.option(
    "--sigmas",
    default=None,
    help="OKS sigmas: comma-separated values, a preset name or a schema YAML "
    "(default: the dataset's).",
)
@setting_option(EvalConfig, "pck_alpha", help="PCK threshold, as a fraction of the box's side.")
@setting_option(
    EvalConfig, "pcutoff", help="Confidence cut-off for the second EPE (DeepLabCut's p-cutoff)."
)
@click.option(
    "--per-keypoint/--no-per-keypoint",
    default=True,
    show_default=True,
    help="Also compute AP per keypoint (one COCO evaluation per keypoint).",
)
@click.option("--plots/--no-plots", default=True, show_default=True)
@click.option(
    "--exact-2d",
    is_flag=True,
    help="Lifting networks: lift the truth's exact projections instead of the detected 2D "
    "(the lifting error alone).",
)
@click.option(
    "--fix-ids",
    is_flag=True,
    help="Renumber ground-truth annotations with an id <= 0 (pycocotools scores them as "
    "misses) before evaluating.",
)
def val(
    gt: Path,
    split: str,
    pred: Path | None,
    model: Path | None,
    schema: str | None,
    detector: Path | None,
    imgsz: int | None,
    batch: int,
    device: str,
    flip: bool,
    half: bool | None,
    out: Path | None,
    max_dets: int,
    sigmas: str | None,
    pck_alpha: float,
    pcutoff: float,
    per_keypoint: bool,
    plots: bool,
    exact_2d: bool,
    fix_ids: bool,
) -> None:
    """Evaluate predictions (--pred) or a checkpoint (--model) on a dataset split: COCO AP/AR
    (as pycocotools), PCK, EPE, NME. Ground truth the loader had to skip is listed on stderr;
    exit 1 when none is left to evaluate."""
    if (pred is None) == (model is None):
        raise click.UsageError("give exactly one of --pred PREDICTIONS.json and --model M.pt")
    if is_sequence_dataset(gt):
        if model is None:
            raise click.UsageError(f"{gt} is a sequence dataset: evaluate a lifting --model")
        val_lifting(gt, split, model, device, exact_2d, out, plots)
        return
    ds = validation_split(gt, split)  # the rule Model.val follows
    usable = report_ground_truth(ds)
    ds = check_ids(ds, fix_ids)
    config = EvalConfig(
        max_dets=max_dets,
        sigmas=_sigmas(sigmas),
        pck_alpha=pck_alpha,
        pcutoff=pcutoff,
        per_keypoint_ap=per_keypoint,
    )
    if model is not None:
        from posekit.model import Model

        m = Model(model, schema)
        top_down = m.net.input_mode.takes_boxes
        if m.net.single_subject:
            click.echo("single-subject model: evaluated on whole frames", err=True)
        elif top_down:
            used = f"the boxes of {detector}" if detector else "the dataset's ground-truth boxes"
            click.echo(f"top-down model: evaluated on {used}", err=True)
        metrics = m.val(ds, config=config, device=device,
                        detector=detector if top_down else None, imgsz=imgsz, batch=batch,
                        flip=flip, half=half)  # fmt: skip
    else:
        metrics = evaluate(ds, pred, config)
    console = Console(highlight=False)
    print_metrics(metrics, console)
    if out is not None:
        written = save_metrics(metrics, out, plots=plots)
        console.print("wrote " + ", ".join(str(p) for p in written))
    if not usable or metrics.counts.get("counted_ground_truth", 0) == 0:
        click.echo(f"posekit: error: {gt}: no ground-truth instance with a labelled keypoint "
                   "could be evaluated (see the problems above): the figures mean nothing",
                   err=True)  # fmt: skip
        raise SystemExit(1)


def val_lifting(
    data: Path,
    split: str,
    model: Path,
    device: str,
    exact_2d: bool,
    out: Path | None,
    plots: bool,
) -> None:
    """`posekit val` of a lifting network on a sequence dataset: the 3D errors in mm, per
    joint too, and with --out metrics.json (and a bar chart per joint)."""
    from posekit.model import Model

    m = Model(model)
    if m.net.input_kind != "keypoints":
        raise click.UsageError(
            f"{data} is a sequence dataset (2D and 3D keypoints); {model} "
            "reads images: give a lifting network"
        )
    result = m.val_lifting(data, split=split, device=device, exact_2d=exact_2d)
    console = Console(highlight=False)
    console.print(f"{'exact' if exact_2d else 'detected'} 2D, {result.summary()}")
    table = Table(title="MPJPE per joint (mm)", title_justify="left")
    table.add_column("joint")
    table.add_column("MPJPE", justify="right")
    for name, value in result.per_joint().items():
        table.add_row(name, f"{value:.1f}")
    console.print(table)
    if out is not None:
        written = save_lift_metrics(result, out, plots=plots)
        console.print("wrote " + ", ".join(str(p) for p in written))


def check_ids(ds: KeypointDataset, fix: bool) -> KeypointDataset:
    """Warn about ground-truth ids pycocotools cannot match (naming them); with `fix`, the
    dataset with those ids renumbered."""
    bad = unmatchable_ids(ds.annotations)
    if not bad:
        return ds
    shown = list_ids(bad)
    if fix:
        click.echo(f"note: renumbered ground-truth annotation id(s) {shown} (--fix-ids)",
                   err=True)  # fmt: skip
        return with_matchable_ids(ds)
    click.echo(f"warning: ground-truth annotation id(s) {shown}: pycocotools (and this "
               "evaluation, which agrees with it) can never count an instance with an id <= 0 "
               "as found, so AP is lower than the predictions deserve; --fix-ids renumbers "
               "them", err=True)  # fmt: skip
    return ds


#: Ground-truth problems printed by `val` (the rest are counted; `data check` lists all).
MAX_SHOWN = 20


def report_ground_truth(ds: KeypointDataset) -> bool:
    """Say on stderr what of the ground truth could not be used (as `data check` does);
    returns whether any instance with a labelled keypoint is left to evaluate."""
    report = ds.report
    if report.problems:
        click.echo(f"ground truth {ds.source}: {len(report.problems)} problem(s)"
                   + (", skipped: " + ", ".join(f"{n} {w}" for w, n in report.skipped.items())
                      if report.skipped else ""), err=True)  # fmt: skip
        for p in report.problems[:MAX_SHOWN]:
            click.echo(f"problem {p}", err=True)
        if len(report.problems) > MAX_SHOWN:
            click.echo(f"... and {len(report.problems) - MAX_SHOWN} more (posekit data check "
                       "lists them all)", err=True)  # fmt: skip
    for note in report.notes:
        click.echo(f"note {note}", err=True)
    return any(not a.iscrowd and (a.keypoints[:, 2] > 0).any() for a in ds.annotations)
