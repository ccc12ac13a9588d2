"""`posekit predict`: run a checkpoint on images, folders, globs, videos or streams."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from posekit.cli.logs import setup_logging
from posekit.cli.options import (
    detector_option,
    flip_option,
    half_option,
    schema_option,
    setting_option,
)
from posekit.predict.predictor import PredictConfig

log = logging.getLogger("posekit.predict")

#: Image formats that hold no colour, and the format their annotated copy is written in.
GREY_TO_COLOUR = {".pgm": ".ppm", ".pbm": ".ppm"}


@click.command()
@click.option(
    "--model",
    required=True,
    type=click.Path(path_type=Path),
    help="A checkpoint (.pt), an ONNX export (.onnx: runs with ONNX Runtime), a "
    "transformers folder or .safetensors, or a published .pth.",
)
@click.option(
    "--source",
    required=True,
    help="Image, folder, glob (quoted), video file, camera index or stream URL.",
)
@setting_option(PredictConfig, "conf", help="Minimum detection confidence.")
@setting_option(
    PredictConfig,
    "kpt_conf",
    help="Keypoints below this confidence are drawn hidden (kept in JSON with their score).",
)
@setting_option(
    PredictConfig,
    "iou",
    default=None,
    help=f"NMS overlap (class-aware). Default: the model's ({PredictConfig.iou}; Ultralytics "
    "files 0.7).",
)
@setting_option(
    PredictConfig,
    "oks_nms",
    default=None,
    help="Drop a detection whose keypoint OKS with a better one exceeds this (1: off). "
    f"Default: the model's ({PredictConfig.oks_nms}; Ultralytics files 1).",
)
@setting_option(PredictConfig, "imgsz", default=None, help="Default: the model's.")
@setting_option(PredictConfig, "batch", help="Images per network pass.")
@setting_option(PredictConfig, "max_det", help="Detections kept per image.")
@setting_option(
    PredictConfig, "crop_batch", help="Top-down models: crops per network pass (bounds memory)."
)
@setting_option(PredictConfig, "vid_stride", help="Predict every n-th video frame.")
@click.option("--device", default="auto", show_default=True)
@detector_option
@schema_option
@flip_option
@half_option
@click.option(
    "--save/--no-save", default=True, show_default=True, help="Annotated images / videos."
)
@click.option("--save-json", is_flag=True, help="predictions.json in COCO results format.")
@click.option("--save-txt", is_flag=True, help="labels/<name>.txt per image (YOLO-style rows).")
@click.option("--show-hidden", is_flag=True, help="Draw low-confidence keypoints faintly.")
@click.option("--project", default="runs/predict", show_default=True)
@click.option("--name", default="exp", show_default=True)
@click.option("--exist-ok", is_flag=True, help="Reuse project/name instead of making name2, ...")
def predict(
    model: Path,
    source: str,
    conf: float,
    kpt_conf: float,
    iou: float | None,
    oks_nms: float | None,
    imgsz: int | None,
    batch: int,
    max_det: int,
    crop_batch: int,
    vid_stride: int,
    device: str,
    detector: Path | None,
    schema: str | None,
    flip: bool,
    half: bool | None,
    save: bool,
    save_json: bool,
    save_txt: bool,
    show_hidden: bool,
    project: str,
    name: str,
    exist_ok: bool,
) -> None:
    """Detect keypoints; writes annotated images or videos (same fps and size as the input)
    and, on request, COCO results JSON that `posekit val --pred` reads. Exit status 1 when
    any input could not be read (the others are still processed)."""
    from posekit import Model
    from posekit.predict.sources import count_frames, expand_source
    from posekit.utils.runs import next_run_dir

    setup_logging()
    m = Model(model, schema, detector=detector)
    m.needs_images("predict on images")
    # check the source before making any folder: a wrong path is one error line
    items = expand_source(source)
    out = next_run_dir(project, name, exist_ok)
    total = count_frames(items, vid_stride)
    run = _Run(out, save=save, save_txt=save_txt, show_hidden=show_hidden, kpt_conf=kpt_conf)
    stream = m.predict(
        source,
        stream=True,
        conf=conf,
        kpt_conf=kpt_conf,
        iou=iou,
        oks_nms=oks_nms,
        imgsz=imgsz,
        batch=batch,
        max_det=max_det,
        crop_batch=crop_batch,
        vid_stride=vid_stride,
        device=device,
        flip=flip,
        half=half,
        on_error=run.failed,
    )
    from posekit.predict.writers import CocoResultsWriter
    from posekit.utils.progress import progress_bar

    coco = CocoResultsWriter() if save_json else None
    t0 = time.perf_counter()
    try:
        with progress_bar("predict", total, unit="frame") as advance:
            for r in stream:
                run.add(r)
                if coco is not None:
                    coco.add(r)
                advance(1)
    finally:
        run.close()
    seconds = time.perf_counter() - t0
    if coco is not None:
        coco.save(out / "predictions.json")
    done = run.counts["images"] + run.counts["frames"]
    click.echo(
        f"{run.counts['images']} images, {run.counts['frames']} video frames, "
        f"{run.counts['instances']} instances in {seconds:.1f} s ({done / max(seconds, 1e-9):.1f}"
        f" frames/s); {len(run.failures)} failed; results in {out}"
    )
    if run.failures:
        for path, why in run.failures:
            click.echo(f"  failed: {path}: {why}", err=True)
        raise SystemExit(1)


class _Run:
    """Where one predict run writes: annotated images, videos and txt labels."""

    def __init__(
        self, out: Path, *, save: bool, save_txt: bool, show_hidden: bool, kpt_conf: float
    ) -> None:
        from posekit.predict.writers import BackgroundWorker

        self.out, self.save, self.save_txt = out, save, save_txt
        self.plot_options = {"show_hidden": show_hidden, "kpt_conf": kpt_conf}
        self.counts: Counter[str] = Counter()
        self.failures: list[tuple[str, str]] = []
        self.worker = BackgroundWorker()
        self.sinks: dict[str, Any] = {}
        self.names: dict[str, str] = {}  # input path -> output stem (unique)
        out.mkdir(parents=True, exist_ok=True)

    def failed(self, path: str, why: str) -> None:
        log.warning("%s: %s (skipped)", path, why)
        self.failures.append((path, why))

    def _stem(self, path: str) -> str:
        if path not in self.names:
            stem = Path(path).stem or "image"
            taken = set(self.names.values())
            unique, i = stem, 2
            while unique in taken:
                unique, i = f"{stem}_{i}", i + 1
            self.names[path] = unique
        return self.names[path]

    def add(self, r: Any) -> None:
        self.counts["frames" if r.frame is not None else "images"] += 1
        self.counts["instances"] += len(r)
        stem = self._stem(r.path)
        if self.save_txt:
            from posekit.predict.writers import yolo_lines

            labels = self.out / "labels"
            labels.mkdir(exist_ok=True)
            suffix = f"_{r.frame}" if r.frame is not None else ""
            (labels / f"{stem}{suffix}.txt").write_text("".join(f"{s}\n" for s in yolo_lines(r)))
        if not self.save:
            return
        if r.frame is None:
            ext = Path(r.path).suffix.lower() if Path(r.path).suffix else ".jpg"
            ext = GREY_TO_COLOUR.get(ext, ext)  # the drawing is in colour
            target = self.out / f"{stem}{ext}"
            self.worker.submit(lambda: r.save(target, **self.plot_options))
            return
        if r.path not in self.sinks:
            from posekit.predict.writers import VideoSink

            self.sinks[r.path] = VideoSink.for_source(
                self.out / f"{stem}.mp4", r.path, r.orig_shape
            )
        sink = self.sinks[r.path]
        self.worker.submit(lambda: sink.write(r.plot(**self.plot_options)))

    def close(self) -> None:
        try:
            self.worker.close()
        finally:
            for sink in self.sinks.values():
                sink.close()
