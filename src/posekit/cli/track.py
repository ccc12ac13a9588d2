"""`posekit track`: predict and track on a video or stream; annotated video and JSONL events."""

from __future__ import annotations

import logging
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from posekit.cli.logs import setup_logging
from posekit.cli.options import (
    angle_option,
    detector_option,
    flip_option,
    half_option,
    parse_angles,
    remaining_settings,
    schema_option,
    setting_option,
)
from posekit.predict.predictor import PredictConfig
from posekit.track.sinks import EventSinkConfig
from posekit.track.smoothing import OneEuroConfig
from posekit.track.tracker import TrackerConfig

log = logging.getLogger("posekit.track")


def _settings_of(config: type, settings: dict[str, Any]) -> Any:
    """`config` from the options named after its fields (the others are another config's)."""
    return config(**{f.name: settings[f.name] for f in fields(config) if f.name in settings})


def _event_writers(
    jsonl: str | Path | None,
    events_dir: Path | None,
    events_tcp: str | None,
    sinks: EventSinkConfig,
) -> list[Any]:
    """The event sinks the options ask for: a JSON Lines file (or "-", stdout), a rolling
    directory, a TCP server."""
    from posekit.track.events import JsonlWriter
    from posekit.track.sinks import RollingDirWriter, TcpEventServer, host_port

    writers: list[Any] = []
    if jsonl is not None:
        writers.append(JsonlWriter(jsonl))
    if events_dir is not None:
        writers.append(
            RollingDirWriter(
                events_dir,
                every_frames=sinks.events_every,
                every_seconds=sinks.events_every_seconds,
            )
        )
    if events_tcp is not None:
        host, port = host_port(events_tcp, "--events-tcp")
        tcp = TcpEventServer(
            host, port, max_queue=sinks.events_queue, max_queue_mb=sinks.events_queue_mb
        )
        click.echo(f"events on tcp://{tcp.host}:{tcp.port}", err=True)
        writers.append(tcp)
    return writers


class _AnnotatedVideos:
    """One annotated video per source in `out` (boxes, ids, skeletons and trails), drawn and
    encoded on a background thread so that tracking never waits for the encoder."""

    def __init__(self, out: Path, trail: int, kpt_conf: float) -> None:
        from posekit.predict.writers import BackgroundWorker

        self.out, self.trail, self.kpt_conf = out, trail, kpt_conf
        self.worker = BackgroundWorker()
        self.sinks: dict[str, Any] = {}
        self.trails: dict[str, Any] = {}

    def add(self, r: Any) -> None:
        from posekit.predict.writers import VideoSink
        from posekit.viz.trails import TrailAnnotator

        if r.path not in self.sinks:
            stem = Path(r.path).stem or "stream"
            self.sinks[r.path] = VideoSink.for_source(self.out / f"{stem}.mp4", r.path,
                                                      r.orig_shape)  # fmt: skip
            self.trails[r.path] = TrailAnnotator(self.trail)
        sink, trails = self.sinks[r.path], self.trails[r.path]

        def draw() -> None:
            img = r.plot(kpt_conf=self.kpt_conf, labels=False)
            if self.trail:
                img = trails.annotate(img, r.boxes.id, r.boxes.xyxy)
            sink.write(img)

        self.worker.submit(draw)

    def close(self) -> None:
        self.worker.close()
        for sink in self.sinks.values():
            sink.close()


@click.command()
@click.option(
    "--model",
    required=True,
    type=click.Path(path_type=Path),
    help="A checkpoint (.pt) or an ONNX export (.onnx).",
)
@click.option("--source", required=True, help="Video file, camera index or stream URL.")
@setting_option(PredictConfig, "conf", help="Minimum detection confidence.")
@setting_option(PredictConfig, "kpt_conf", help="Keypoints below this are drawn hidden.")
@setting_option(PredictConfig, "imgsz", default=None, help="Default: the model's.")
@setting_option(PredictConfig, "batch", help="Frames per network pass.")
@click.option("--device", default="auto", show_default=True)
@detector_option
@schema_option
@flip_option
@half_option
@remaining_settings(TrackerConfig, exclude={"kpt_conf"})
@click.option(
    "--smooth/--no-smooth",
    default=True,
    show_default=True,
    help="One Euro smoothing of keypoints per track.",
)
@remaining_settings(OneEuroConfig)
@angle_option
@click.option(
    "--lift",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A lifting network (a trained liftpose checkpoint): each event gains keypoints_3d, "
    "the track's root-relative 3D in metres in the camera's frame.",
)
@click.option(
    "--intrinsics",
    default=None,
    metavar="FX,FY,CX,CY",
    callback=lambda ctx, param, value: _intrinsics(value),
    help="The camera's intrinsics for --lift, in OpenCV's pixels (default: guessed from the "
    "frame size).",
)
@click.option("--save/--no-save", default=True, show_default=True, help="Annotated video.")
@click.option("--save-jsonl", default=None, help="Event stream file (JSON Lines); - for stdout.")
@click.option(
    "--events-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Rolling directory of event files for a streaming reader (`posekit actions`): a new "
    "file every --events-every frames, each appearing whole.",
)
@click.option(
    "--events-tcp",
    default=None,
    metavar="HOST:PORT",
    help="Serve the events on a TCP socket (readers connect; a slow one loses its oldest "
    "frames, never the tracker's time).",
)
@remaining_settings(EventSinkConfig)
@click.option(
    "--trail",
    type=click.IntRange(0),
    default=30,
    show_default=True,
    help="Trail length in frames (0: none).",
)
@click.option("--project", default="runs/track", show_default=True)
@click.option("--name", default="exp", show_default=True)
@click.option("--exist-ok", is_flag=True, help="Reuse project/name instead of making name2, ...")
def track(
    model: Path,
    source: str,
    conf: float,
    kpt_conf: float,
    imgsz: int | None,
    batch: int,
    device: str,
    detector: Path | None,
    schema: str | None,
    flip: bool,
    half: bool | None,
    smooth: bool,
    angles: tuple[str, ...],
    lift: Path | None,
    intrinsics: tuple[float, ...] | None,
    save: bool,
    save_jsonl: str | None,
    events_dir: Path | None,
    events_tcp: str | None,
    events_every: int,
    events_every_seconds: float,
    events_queue: int,
    events_queue_mb: float,
    trail: int,
    project: str,
    name: str,
    exist_ok: bool,
    **settings: Any,
) -> None:
    """Track every object of a video with a stable id: annotated video with ids and trails,
    and a JSON Lines event stream (one object per tracked object per frame, see
    event.schema.json)."""
    from posekit import Model
    from posekit.analytics import joint_angle, resolve_triple
    from posekit.predict.sources import count_frames, expand_source
    from posekit.track.events import frame_events
    from posekit.utils.progress import progress_bar
    from posekit.utils.runs import next_run_dir

    setup_logging()
    to_stdout = save_jsonl == "-"
    m = Model(model, schema, detector=detector)
    m.needs_images("track a video")
    items = expand_source(source)
    if any(kind != "video" for kind, _, _ in items):
        raise click.BadParameter(f"{source}: tracking needs a video file, camera or stream")
    schema = m.schemas[0]
    triples = {n: resolve_triple(schema, t) for n, t in parse_angles(angles).items()}
    out = next_run_dir(project, name, exist_ok) if save or (save_jsonl and not to_stdout) else None
    total = count_frames(items)
    results = m.track(
        source,
        stream=True,
        conf=conf,
        kpt_conf=kpt_conf,
        imgsz=imgsz,
        batch=batch,
        device=device,
        flip=flip,
        half=half,
        tracker=_settings_of(TrackerConfig, settings),
        smooth=_settings_of(OneEuroConfig, settings) if smooth else False,
        lift=lift,
        lift_intrinsics=intrinsics,
    )
    jsonl = None if not save_jsonl else "-" if to_stdout or out is None else out / save_jsonl
    sinks = EventSinkConfig(events_every, events_every_seconds, events_queue, events_queue_mb)
    writers = _event_writers(jsonl, events_dir, events_tcp, sinks)
    videos = _AnnotatedVideos(out, trail, kpt_conf) if out is not None and save else None
    ids: set[int] = set()
    frames = 0
    t0 = time.perf_counter()
    try:
        with progress_bar("track", total, unit="frame") as advance:
            for r in results:
                frames += 1
                ids.update(r.boxes.id.tolist())  # type: ignore[union-attr]
                if writers:
                    kp = r.keypoints.data
                    values = {n: joint_angle(kp, t, kpt_conf=kpt_conf) for n, t in triples.items()}
                    events = frame_events(r, values)
                    for w in writers:
                        w.write(events)
                if videos is not None:
                    videos.add(r)
                advance(1)
    finally:
        if videos is not None:
            videos.close()
        for w in writers:
            w.close()
    seconds = time.perf_counter() - t0
    msg = (
        f"{frames} frames in {seconds:.1f} s ({frames / max(seconds, 1e-9):.1f} frames/s), "
        f"{len(ids)} track ids" + (f"; results in {out}" if out is not None else "")
    )
    click.echo(msg, err=to_stdout)


def _intrinsics(text: str | None) -> tuple[float, ...] | None:
    """--intrinsics FX,FY,CX,CY as four numbers (focal lengths positive)."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[0] <= 0 or values[1] <= 0:
        raise click.BadParameter(
            f"{text!r} is not FX,FY,CX,CY (four numbers, positive focal lengths)",
            param_hint="--intrinsics",
        )
    return values
