"""`posekit demo`: the README's main job on the embedded default (synthetic people).

generate -> check -> train rtpose-n briefly -> evaluate -> predict on held-out images, all into
one folder, ending with what to open first.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import cv2
from rich.console import Console

from posekit.cli.data import print_check
from posekit.cli.options import force_option
from posekit.data.check import check_dataset
from posekit.data.formats import load_dataset
from posekit.data.synth import SynthConfig, generate
from posekit.utils.outputs import claim_output
from posekit.utils.progress import progress_bar, progress_group
from posekit.viz.annotator import grid
from posekit.viz.preview import write_previews

#: What the demo writes into OUT.
DEMO_WRITES = ("data", "ground_truth", "train", "eval", "predictions", "check.json",
               "summary.json")  # fmt: skip


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo"), show_default=True)
@click.option("--images", "n_images", type=click.IntRange(10), default=600, show_default=True)
@click.option("--imgsz", type=click.IntRange(64), default=320, show_default=True)
@click.option(
    "--minutes",
    type=click.FloatRange(0.1),
    default=4.0,
    show_default=True,
    help="Training time budget (the schedule is fitted to it).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@force_option
def demo(out: Path, n_images: int, imgsz: int, minutes: float, seed: int, force: bool) -> None:
    """Generate synthetic people, check them, train rtpose-n briefly, evaluate it and draw its
    predictions on held-out images, all into OUT (an empty folder or an earlier demo's, which
    is replaced; with --force any folder, as long as what the demo writes is not there)."""
    from posekit import Model
    from posekit.eval import EvalConfig
    from posekit.eval.report import print_metrics, save_metrics

    console = Console(highlight=False)
    # a rerun replaces the earlier demo's files; nothing else in OUT is touched
    claim_output(out, "demo", source=f"synthetic people, seed {seed}", force=force,
                 writes=DEMO_WRITES)  # fmt: skip
    data_dir = out / "data"
    cfg = SynthConfig(kind="person", images=n_images, imgsz=imgsz, seed=seed)
    with progress_bar("1/5 generate synthetic people", n_images, unit="img") as advance:
        generate(cfg, data_dir, val=0.15, workers=2, progress=advance)
    with progress_group(unit="img") as add_task:
        results = check_dataset(
            data_dir, progress_factory=lambda s, n: add_task(f"2/5 check {s}", n)
        )
    n_problems = print_check(results, console, max_problems=20)
    (out / "check.json").write_text(
        json.dumps(
            {
                r.name: {
                    "images": r.stats.images,
                    "instances": r.stats.total_instances,
                    "labelled_keypoints": r.stats.labelled_keypoints(),
                    "problems": [str(p) for p in r.problems],
                }
                for r in results
            },
            indent=2,
        )
    )
    if n_problems:
        raise click.ClickException(f"the generated dataset has {n_problems} problem(s)")
    write_previews(load_dataset(data_dir, "val"), out / "ground_truth", n=16, seed=seed)

    console.print(f"[bold]3/5 train rtpose-n[/] for about {minutes:g} min at imgsz {imgsz}")
    result = Model("rtpose-n").train(
        data=str(data_dir),
        epochs=300,
        imgsz=imgsz,
        batch=16,
        workers=1,
        time_limit=minutes,
        val_period=5,
        project=str(out),
        name="train",
        exist_ok=True,
        seed=seed,
    )
    model = Model(result.best)

    console.print("[bold]4/5 evaluate[/] best.pt on the held-out images")
    metrics = model.val(data_dir, split="val", imgsz=imgsz, config=EvalConfig())
    print_metrics(metrics, console)
    save_metrics(metrics, out / "eval")

    val = load_dataset(data_dir, "val")
    paths = [str(val.image_path(im)) for im in val.images[:16]]
    pred_dir = out / "predictions"
    pred_dir.mkdir(parents=True, exist_ok=True)
    drawn = []
    with progress_bar("5/5 predict on held-out images", len(paths), unit="img") as advance:
        for r in model(paths, imgsz=imgsz, stream=True):
            drawn.append(r.plot())
            cv2.imwrite(str(pred_dir / Path(r.path).name), drawn[-1])
            advance(1)
    cv2.imwrite(str(pred_dir / "grid.png"), grid(drawn, cols=4, cell=320))
    (out / "summary.json").write_text(
        json.dumps(
            {
                "train": {
                    "epochs": result.epochs_run,
                    "minutes_budget": minutes,
                    "imgsz": imgsz,
                    "images": n_images,
                },
                "val": {
                    "AP": metrics.coco["AP"],
                    "AP50": metrics.coco["AP50"],
                    "PCK@0.05": metrics.pck,
                },
            },
            indent=2,
        )
    )

    console.rule("[bold]done")
    console.print(f"Everything is in [bold]{out.resolve()}[/]:")
    console.print(f"  {pred_dir / 'grid.png'}   <- open this first: predictions on held-out images")
    console.print(f"  {out / 'ground_truth' / 'grid.png'}   (the labels of held-out images)")
    console.print(f"  {result.save_dir / 'results.png'}   (loss and metric curves)")
    console.print(f"  {out / 'eval'}   (metrics.json, pr_curves.png, per_keypoint.png)")
    console.print(f"  {result.best}   (the checkpoint: posekit predict --model ... --source ...)")
    console.print(f"  {out / 'check.json'}   (dataset check: no problems)")
    console.print(
        f"Held-out AP {metrics.coco['AP']:.3f} after {result.epochs_run} epochs: a few minutes "
        "of CPU training shows the pipeline, not final accuracy (see README, limits)."
    )
