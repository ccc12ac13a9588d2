"""`posekit demo`: the README's main job on the embedded default (synthetic people)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from posekit.cli.data import print_check
from posekit.data.check import check_dataset
from posekit.data.layout import load_dataset
from posekit.data.synth import SynthConfig, generate
from posekit.utils.progress import progress_bar, progress_group
from posekit.viz.preview import write_previews


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo"), show_default=True)
@click.option("--images", "n_images", type=click.IntRange(10), default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out: Path, n_images: int, seed: int) -> None:
    """Generate synthetic people, validate them and draw previews, all into OUT.

    Training, evaluation and prediction join this command as they land.
    """
    console = Console(highlight=False)
    data_dir = out / "data"
    cfg = SynthConfig(kind="person", images=n_images, imgsz=640, seed=seed)
    with progress_bar("1/3 generate synthetic people", n_images, unit="img") as advance:
        generate(cfg, data_dir, val=0.2, workers=2, progress=advance)
    with progress_group(unit="img") as add_task:
        results = check_dataset(
            data_dir, progress_factory=lambda s, n: add_task(f"2/3 check {s}", n)
        )
    n_problems = print_check(results, console, max_problems=20)
    summary = {
        r.name: {
            "images": r.stats.images,
            "instances": r.stats.total_instances,
            "labelled_keypoints": r.stats.labelled_keypoints(),
            "problems": [str(p) for p in r.problems],
        }
        for r in results
    }
    (out / "check.json").write_text(json.dumps(summary, indent=2))
    previews = out / "previews"
    write_previews(load_dataset(data_dir, "val"), previews, n=16, seed=seed)
    console.print(f"3/3 previews written to {previews}")
    console.rule("[bold]done")
    console.print(f"Everything is in [bold]{out.resolve()}[/]:")
    console.print(f"  {previews / 'grid.png'}   <- open this first: 16 images, skeletons drawn")
    console.print(f"  {data_dir}   (images/, annotations/train.json, val.json, data.yaml)")
    console.print(f"  {out / 'check.json'}   (validation summary: {n_problems} problem(s))")
    if n_problems:
        raise click.ClickException(f"the generated dataset has {n_problems} problem(s)")
