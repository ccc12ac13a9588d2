"""`posekit data ...`: synth, motion, check, convert, split and preview datasets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from posekit.cli.options import (
    force_option,
    image_root_option,
    remaining_settings,
    setting_option,
    video_dir_option,
)
from posekit.data.check import SplitCheck, check_dataset, check_to_dict
from posekit.data.convert import convert
from posekit.data.formats import TARGETS, describe, load_splits
from posekit.data.split import split_on_disk
from posekit.data.synth import KINDS, SynthConfig, generate
from posekit.threed.motion_dataset import MotionDataConfig
from posekit.utils.outputs import claim_output
from posekit.utils.progress import progress_bar, progress_group


@click.group()
def data() -> None:
    """Create, check, convert and split keypoint datasets."""


@data.command()
@click.option("--kind", type=click.Choice(KINDS), default="person", show_default=True)
@setting_option(SynthConfig, "images", default=200, help="How many images.")
@setting_option(SynthConfig, "imgsz", help="Image width in pixels (height is 3/4 of it).")
@setting_option(SynthConfig, "min_height", help="Smallest figure, in pixels.")
@setting_option(SynthConfig, "max_height_frac", help="Largest figure, a fraction of the height.")
@setting_option(SynthConfig, "min_figures", help="Fewest figures per image (with --max-figures).")
@setting_option(SynthConfig, "max_figures", help="Most figures per image (0-4 keeps the mix).")
@click.option("--val", type=click.FloatRange(0, 1), default=0.1, show_default=True)
@click.option("--test", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--workers", type=click.IntRange(1), default=min(4, os.cpu_count() or 1), show_default=True
)
@click.option("--out", type=click.Path(path_type=Path), required=True)
@force_option
def synth(
    kind: str,
    images: int,
    imgsz: int,
    min_height: float,
    max_height_frac: float,
    min_figures: int,
    max_figures: int,
    val: float,
    test: float,
    seed: int,
    workers: int,
    out: Path,
    force: bool,
) -> None:
    """Generate a synthetic dataset (deterministic for a seed) in the posekit layout."""
    cfg = SynthConfig(
        kind=kind,
        images=images,
        imgsz=imgsz,
        seed=seed,
        min_height=min_height,
        max_height_frac=max_height_frac,
        min_figures=min_figures,
        max_figures=max_figures,
    )
    claim_output(out, "data synth", force=force)  # a refusal comes before any progress bar
    with progress_bar(f"synth {kind}", images, unit="img") as advance:
        generate(cfg, out, val=val, test=test, workers=workers, progress=advance, force=force)
    click.echo(f"wrote {images} {kind} images to {out}")


@data.command()
@click.option(
    "--schema",
    default="coco17",
    show_default=True,
    help="The keypoints: coco17, coco18, body25, body25b (or a schema YAML with their names).",
)
@remaining_settings(MotionDataConfig)
@click.option("--out", type=click.Path(path_type=Path), required=True)
@force_option
def motion(schema: str, out: Path, force: bool, **settings: Any) -> None:
    """Generate a sequence dataset of synthetic 3D motion (walking, squatting, falling,
    standing people filmed by random cameras, with a detector's noise and misses): what
    lifting networks (liftpose-27/81/243) train and validate on."""
    from posekit.schema import get_schema
    from posekit.threed.motion_dataset import write_motion_dataset

    cfg = MotionDataConfig(**settings)
    keypoints = get_schema(schema)
    claim_output(out, "data motion", force=force)
    with progress_bar("synth motion", cfg.clips, unit="clip") as advance:
        index = write_motion_dataset(out, keypoints, cfg, advance)
    click.echo(f"wrote {cfg.clips} clips of {cfg.frames} frames ({keypoints.name}) to {index}")


def print_check(results: list[SplitCheck], console: Console, max_problems: int | None) -> int:
    """Print summaries and problems; returns the number of problems."""
    total = 0
    for r in results:
        st = r.stats
        console.rule(f"[bold]{escape(r.name)}[/] — {escape(r.dataset.source)}")
        console.print(
            f"images: {st.images} ({st.images_without_instances} without instances), "
            f"instances: {st.total_instances} ({st.crowd} crowd), labelled keypoints: "
            f"{st.labelled_keypoints()}"
        )
        for cat in r.dataset.categories:
            vis = st.visibility[cat.id]
            n_inst = st.instances.get(cat.id, 0)
            title = f"category {cat.id} '{escape(cat.name)}': {n_inst} instances"
            table = Table(title=title, title_justify="left")
            for col in ("keypoint", "visible (2)", "occluded (1)", "unlabelled (0)"):
                table.add_column(col, justify="left" if col == "keypoint" else "right")
            for j, name in enumerate(cat.schema.keypoints):
                table.add_row(name, str(vis[j, 2]), str(vis[j, 1]), str(vis[j, 0]))
            console.print(table)
        if r.skipped:
            console.print("skipped: " + ", ".join(f"{n} {w}" for w, n in r.skipped.items()))
        for note in r.notes:
            console.print(f"[cyan]note[/] {escape(note)}", highlight=False, soft_wrap=True)
        shown = r.problems if max_problems is None else r.problems[:max_problems]
        for p in shown:
            console.print(f"[red]problem[/] {escape(str(p))}", highlight=False, soft_wrap=True)
        if len(shown) < len(r.problems):
            console.print(f"... and {len(r.problems) - len(shown)} more")
        total += len(r.problems)
    return total


@data.command(
    help=f"""Validate a dataset in any supported format ({describe()}) and
summarise it.

Exit 0 when clean, 1 when problems were found, 2 when the input is unusable."""
)
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--images/--no-images",
    default=True,
    show_default=True,
    help="Check the image files (exist, decode, size).",
)
@click.option(
    "--max-problems",
    type=click.IntRange(0),
    default=None,
    help="Print at most this many problems per split (default: all).",
)
@image_root_option
@video_dir_option
@click.option(
    "--json", "as_json", is_flag=True,
    help="Print the summary and every problem as one JSON object (for scripts).",
)  # fmt: skip
@click.pass_context
def check(
    ctx: click.Context,
    path: Path,
    images: bool,
    max_problems: int | None,
    image_root: Path | None,
    video_dir: Path | None,
    as_json: bool,
) -> None:
    if as_json:
        import json

        results = check_dataset(path, images=images, image_root=image_root,
                                video_dir=video_dir)  # fmt: skip
        n = sum(len(r.problems) for r in results)
        click.echo(json.dumps({"path": str(path), "problems": n,
                               "splits": [check_to_dict(r) for r in results]}))  # fmt: skip
        ctx.exit(1 if n else 0)
    console = Console(highlight=False)
    with progress_group(unit="img") as add_task:
        results = check_dataset(
            path,
            images=images,
            progress_factory=lambda name, total: add_task(f"check {name}", total),
            image_root=image_root,
            video_dir=video_dir,
        )
    n = print_check(results, console, max_problems)
    left_out = sum(sum(r.skipped.values()) for r in results)
    if n:
        verdict = f"{n} problem(s) found"
    elif left_out:  # left out by design (predicted-only frames ...): never called clean
        verdict = f"no problems; {left_out} entries left out, as said above"
    else:
        verdict = "clean"
    console.print(f"[bold]{verdict}[/]")
    ctx.exit(1 if n else 0)


@data.command(
    name="convert",
    help=f"""Convert SRC ({describe()}) to DST.

Nothing is written when every annotation would be dropped or image files are missing.""",
)
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "target",
    type=click.Choice(list(TARGETS)),
    default="coco",
    show_default=True,
    help="posekit and coco both write the posekit layout (COCO JSON per split).",
)
@click.option("--copy", is_flag=True, help="Copy images instead of hard-linking them.")
@click.option(
    "--skip-missing-images",
    is_flag=True,
    help="Leave out images whose files are missing (and their annotations), with a count.",
)
@image_root_option
@video_dir_option
@click.option(
    "--frame-format",
    type=click.Choice(["jpg", "png"]),
    default="jpg",
    show_default=True,
    help="SLEAP .slp: the format of the frames extracted from the videos.",
)
@click.option(
    "--include-predicted",
    is_flag=True,
    help="SLEAP .slp: also convert predicted-only instances (default: user-labelled only).",
)
@force_option
def convert_cmd(
    src: Path,
    dst: Path,
    target: str,
    copy: bool,
    skip_missing_images: bool,
    image_root: Path | None,
    video_dir: Path | None,
    frame_format: str,
    include_predicted: bool,
    force: bool,
) -> None:
    written, report = convert(src, dst, to=target, link_images=not copy, force=force,
                              skip_missing_images=skip_missing_images,
                              image_root=image_root, video_dir=video_dir,
                              include_predicted=include_predicted,
                              frame_format=frame_format)  # fmt: skip
    for p in report.problems:
        click.echo(f"problem {p}", err=True)
    for n in report.notes:
        click.echo(f"note {n}", err=True)
    splits = load_splits(written)
    desc = ", ".join(
        f"{s}: {len(d.images)} images / {len(d.annotations)} instances" for s, d in splits.items()
    )
    click.echo(f"wrote {written} ({desc}); {report.summary()}")


@data.command(name="split")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--val", type=click.FloatRange(0, 1), default=0.1, show_default=True)
@click.option("--test", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write a new dataset here instead of re-splitting PATH in place.",
)
@force_option
def split_cmd(
    path: Path, val: float, test: float, seed: int, out: Path | None, force: bool
) -> None:
    """Re-split a posekit dataset by image (seeded), merging its current splits first.

    Every annotation entry and every key of the files is kept; in place, the new split files
    replace the old ones only once all of them are written."""
    written = split_on_disk(path, out, val=val, test=test, seed=seed, force=force)
    splits = load_splits(written)
    click.echo(f"{written}: " + ", ".join(f"{s} {len(d.images)} images" for s, d in splits.items()))


@data.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--split", default="train", show_default=True)
@click.option("-n", "n_images", type=click.IntRange(1), default=16, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
@force_option
def preview(path: Path, split: str, n_images: int, seed: int, out: Path, force: bool) -> None:
    """Draw ground-truth skeletons on N images of a split and a contact sheet (grid.png)."""
    from posekit.data.formats import load_dataset
    from posekit.viz.preview import write_previews

    write_previews(load_dataset(path, split), out, n=n_images, seed=seed, force=force)
    click.echo(f"wrote previews to {out} (open {out / 'grid.png'} first)")
