"""The Spark Structured Streaming job behind `posekit actions`: posekit.track/1 events in (a
directory that `posekit track --events-dir` fills, or its TCP socket), posekit.action/1 events
out, the same code on a laptop (`local[*]`) and on a cluster (`spark-submit`).

The plan, per micro-batch:

    text lines -> from_json (schema from event.schema.json) --bad--> dead letter (line, reason)
               -> event time, watermark -> drop duplicates by (source, frame, track_id)
               -> group by (source, track_id) -> applyInPandasWithState(step_track)
               -> JSON lines (Spark's file sink) or the console

Event time is the events' `timestamp` (seconds since the start of their source) placed one
second after the Unix epoch: Spark counts an event *at* the watermark as late and its first
watermark is the epoch itself, so without the offset the first frame of every source would be
dropped. Events more than `watermark` seconds older than the newest seen are late: Spark drops
them and counts them (`late` in the summary). The watermark is global, so sources that
interleave in one stream must share a clock (videos processed side by side, cameras started
together); a track's state is dropped `idle_timeout` seconds of event time after its last frame.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from posekit.actions.detect import (
    ACTION_FIELDS,
    BASE_COLUMNS,
    needed_points,
    point_columns,
    step_track,
)
from posekit.actions.events3d import SCHEMA_3D, floor_and_up
from posekit.actions.rules import Rule
from posekit.actions.spark_schema import action_struct, any_event_struct
from posekit.track.events import SCHEMA_VERSION, event_schema
from posekit.track.sinks import host_port
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError
from posekit.utils.extras import require
from posekit.utils.paths import write_text_replacing

log = logging.getLogger("posekit.actions")

#: seconds added to the events' timestamps to make Spark's event time (see the module doc)
EVENT_TIME_OFFSET_S = 1.0
#: Latest timestamp an event may carry, in seconds (about 3,000 years: past it, event time
#: in microseconds would overflow).
MAX_TIMESTAMP_S = 1e11
#: Longest line read from an event file (longer ones are skipped by the reader, unparsed).
MAX_LINE_BYTES = 1 << 20
#: Characters of a malformed line kept in its dead letter.
DEAD_LETTER_CHARS = 10_000


@dataclass(frozen=True)
class ActionsConfig:
    """Settings of one actions job (the rules are in their own file)."""

    # seconds of event time an event may arrive behind the newest one before it is late
    watermark: float = ranged(10.0, 0, 10**7)
    # seconds of event time after a track's last frame when its state is dropped
    idle_timeout: float = ranged(60.0, 0.001, 10**7)
    # shuffle (and state-store) partitions; a checkpoint keeps the number of its first run
    partitions: int = ranged(4, 1, 100_000)
    max_files_per_trigger: int = ranged(1000, 1, 10**9)  # event files read per micro-batch
    trigger_seconds: float = ranged(1.0, 0, 86_400)  # how often a running job looks for events
    master: str | None = None  # Spark master (default: spark-submit's, else local[*])
    # the up axis of 3D events' world (z, -z, y, -y, x, -x); the other two are the floor's
    up: str = "z"

    def __post_init__(self) -> None:
        check_ranges(self, "actions")
        floor_and_up(self.up)


@dataclass
class RunTotals:
    """What the job did, summed over its micro-batches."""

    batches: int = 0  # micro-batches of this run
    lines: int = 0  # lines read in this run
    duplicates: int = 0  # dropped: (source, frame, track_id) seen before
    late: int = 0  # dropped: behind the watermark
    seen: set[tuple[str, int]] = field(default_factory=set, repr=False)

    def add(self, progress: dict[str, Any]) -> None:
        """Count one micro-batch of the actions query (each once, however often polled)."""
        key = (str(progress["id"]), int(progress["batchId"]))
        if key in self.seen:
            return
        self.seen.add(key)
        self.batches += 1
        self.lines += int(progress.get("numInputRows", 0) or 0)
        for op in progress.get("stateOperators", []):
            self.late += int(op.get("numRowsDroppedByWatermark", 0) or 0)
            custom = op.get("customMetrics", {})
            self.duplicates += int(custom.get("numDroppedDuplicateRows", 0) or 0)


def spark_session(config: ActionsConfig, app: str = "posekit actions") -> Any:
    """A Spark session: spark-submit's when run under it (its master and settings win), else a
    local one on `config.master` (default local[*]) with a small shuffle."""
    require("pyarrow", "spark", "posekit actions")
    sql = require("pyspark.sql", "spark", "posekit actions")
    builder = sql.SparkSession.builder.appName(app)
    from pyspark import SparkConf

    if config.master is not None or not SparkConf().contains("spark.master"):
        builder = builder.master(config.master or "local[*]")
        # local Python workers must be this interpreter (the one that has posekit), not
        # `python3`; under spark-submit, its spark.pyspark.python says which one
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        builder.config("spark.sql.shuffle.partitions", str(config.partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.streaming.numRecentProgressUpdates", "1000")
    )
    try:
        spark = builder.getOrCreate()
    except Exception as e:  # the JVM did not start: say why in one line
        if "JAVA_GATEWAY_EXITED" in str(e) or "Java gateway" in str(e):
            raise UserError("Spark could not start Java: install a Java 17+ runtime "
                            "(e.g. apt-get install openjdk-17-jre-headless)") from None  # fmt: skip
        raise
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def is_uri(path: str | Path) -> bool:
    """True for a path of another file system (hdfs://..., s3a://...), not a local folder."""
    return "://" in str(path) and not str(path).startswith("file://")


def read_lines(spark: Any, events: str, config: ActionsConfig) -> Any:
    """The event lines as a streaming DataFrame with one `value` column: a directory of JSONL
    files (hidden and `_` files, i.e. files still being written, are skipped) or
    `tcp://host:port` (the socket `posekit track --events-tcp` serves)."""
    if events.startswith("tcp://"):
        host, port = host_port(events.removeprefix("tcp://"), "--events tcp://")
        reader = spark.readStream.format("socket").option("host", host).option("port", port)
        return reader.load()
    if not is_uri(events) and not Path(events).is_dir():
        raise UserError(f"{events}: not a folder of event files (nor tcp://HOST:PORT)")
    lines = (
        spark.readStream.format("text")
        .option("maxFilesPerTrigger", config.max_files_per_trigger)
        .option("pathGlobFilter", "*.jsonl")
        # Hadoop's line reader skips a longer line instead of holding it whole in memory
        .option("mapreduce.input.linerecordreader.line.maxlength", MAX_LINE_BYTES)
        .load(events)
    )
    if is_uri(events):
        return lines
    from pyspark.sql import functions as F

    foreign = _foreign_file(str(Path(events).resolve()))
    return lines.withColumn("foreign", foreign(F.input_file_name()))


def _foreign_file(root: str) -> Any:
    """A vectorised column function: whether an event file (its URI) is a link, or lies
    outside the folder `root` (a linked folder): such files are not read, so that a link
    planted among the events cannot copy another file into the dead letters."""
    import pandas as pd
    from pyspark.sql import functions as F

    def foreign(uri: str) -> bool:
        path = unquote(urlparse(uri).path)
        return Path(path).is_symlink() or not os.path.realpath(path).startswith(root + os.sep)

    def column(uris: pd.Series) -> pd.Series:
        verdict = {u: foreign(u) for u in uris.unique()}  # once per file of the batch
        return uris.map(verdict)

    # Spark reads the kind of UDF from the hints, which this module's annotations keep as text
    column.__annotations__ = {"uris": pd.Series, "return": pd.Series}
    return F.pandas_udf(column, "boolean")


def split_events(lines: Any) -> tuple[Any, Any]:
    """(events, dead letters): each line parsed against the event schema; a line that is not
    JSON, not an object, or lacks or mistypes a required field goes to the dead letters with
    the first reason found."""
    from pyspark.sql import functions as F

    foreign = F.col("foreign") if "foreign" in lines.columns else F.lit(False)
    e = F.from_json(F.col("value"), any_event_struct(), {"mode": "PERMISSIVE"})
    parsed = lines.select(F.col("value"), foreign.alias("foreign"), e.alias("e"))
    required = event_schema()["required"]
    kp = "e.keypoints"
    # a 3D event, or not (a 2D event, and anything else, a missing schema included: SQL's
    # null would make every check below neither true nor false, and skip it)
    in_3d = F.coalesce(F.col("e.schema") == SCHEMA_3D, F.lit(False))
    flat = ~in_3d
    checks = [
        (F.col("foreign"), "in a link or a linked folder: not read"),
        (F.try_parse_json("value").isNull(), "not JSON"),
        (F.col("e").isNull() | (F.col("e.schema").isNull() & F.col("e.frame").isNull()
                                & F.col("e.source").isNull()),
         "not a posekit.track/1 event object (no schema, source or frame)"),
        *[(flat & F.col(f"e.`{name}`").isNull(), f"missing or invalid '{name}'")
          for name in required],
        *[(in_3d & F.col(f"e.`{name}`").isNull(), f"missing or invalid '{name}'")
          for name in ("frame", "person_id", "keypoints")],
        (in_3d & F.col("e.timestamp").isNull(),
         "a 3D event without 'timestamp' (posekit triangulate --fps gives one)"),
        (flat & (F.col("e.schema") != SCHEMA_VERSION),
         f"'schema' is not {SCHEMA_VERSION} (nor {SCHEMA_3D})"),
        (F.col("e.frame") < 0, "'frame' is negative"),
        (flat & (F.col("e.track_id") < 1), "'track_id' is below 1"),
        (in_3d & (F.col("e.person_id") < 1), "'person_id' is below 1"),
        (F.isnan("e.timestamp") | (F.col("e.timestamp") < 0)
         | (F.col("e.timestamp") > MAX_TIMESTAMP_S),
         f"'timestamp' is not a time in [0, {MAX_TIMESTAMP_S:g}] seconds"),
        (flat & (F.size("e.box") != 4), "'box' does not have 4 numbers"),
        (flat & F.exists("e.box", _not_finite), "'box' holds a value that is not a finite number"),
        (flat & F.exists(kp, lambda k: _not_finite(k["x"]) | _not_finite(k["y"])
                         | _not_finite(k["confidence"])),
         "a keypoint's x, y or confidence is not a finite number"),
        (in_3d & F.exists(kp, lambda k: _not_finite(k["x"]) | _not_finite(k["y"])
                          | _not_finite(k["z"])),
         "a keypoint's x, y or z is not a finite number"),
    ]  # fmt: skip
    reason = F.lit(None).cast("string")
    for cond, text in reversed(checks):
        reason = F.when(cond, F.lit(text)).otherwise(reason)
    tagged = parsed.withColumn("reason", reason)
    # a foreign file's content is not copied; a long line is cut
    kept = F.when(F.col("foreign"), F.lit(None)).otherwise(
        F.substring("value", 1, DEAD_LETTER_CHARS)
    )
    dead = tagged.where(F.col("reason").isNotNull()).select(kept.alias("value"), "reason")
    good = tagged.where(F.col("reason").isNull()).select("e.*")
    return good, dead


def _not_finite(value: Any) -> Any:
    """Spark: the number is NaN or infinite (null is not: a missing value is allowed)."""
    from pyspark.sql import functions as F

    return F.isnan(value) | (F.abs(value) == F.lit(float("inf")))


def track_columns(events: Any, points: Sequence[str]) -> Any:
    """The flat columns `step_track` reads, computed in Spark SQL: the box corners and, for
    each point the rules need, its x, y and confidence (null where the event lacks it)."""
    from pyspark.sql import functions as F

    cols = [
        F.col("source"), F.col("track_id"), F.col("class"),
        F.col("frame").cast("double").alias("frame"), F.col("timestamp"),
        F.timestamp_micros(((F.col("timestamp") + EVENT_TIME_OFFSET_S) * 1e6).cast("long"))
        .alias("event_time"),
    ]  # fmt: skip
    cols += [F.col("box")[i].alias(c) for i, c in enumerate(BASE_COLUMNS[2:6])]
    cols += [F.col("height")[i].alias(c) for i, c in enumerate(BASE_COLUMNS[6:])]
    for p in points:
        k = F.get(F.filter("keypoints", _named(p)), 0)  # null when the event lacks it
        cols += [
            k["x"].alias(f"{p}:x"),
            k["y"].alias(f"{p}:y"),
            k["confidence"].alias(f"{p}:c"),
            k["z"].alias(f"{p}:z"),
        ]
    return events.select(*cols)


def on_the_floor(events: Any, up: str) -> Any:
    """Parsed events in one layout: 2D events as they are (no height), 3D events as
    `posekit.actions.events3d.as_track_event` lays them out (the same, in Spark SQL): floor x,
    y and height z per keypoint, the floor box, the height range, `person_id` as the track."""
    from pyspark.sql import functions as F

    first, second, axis, sign = floor_and_up(up)
    x, y, z = "xyz"[first], "xyz"[second], "xyz"[axis]
    in_3d = F.coalesce(F.col("schema") == SCHEMA_3D, F.lit(False))
    none = F.lit(None).cast("double")

    def three(k: Any) -> Any:
        seen = k[x].isNotNull() & k[y].isNotNull() & k[z].isNotNull()
        return F.struct(
            k["name"].alias("name"),
            k[x].alias("x"),
            k[y].alias("y"),
            (k[z] * sign).alias("z"),
            F.when(seen, 1.0).otherwise(0.0).alias("confidence"),
        )

    def flat(k: Any) -> Any:
        return F.struct(
            k["name"].alias("name"),
            k["x"].alias("x"),
            k["y"].alias("y"),
            none.alias("z"),
            k["confidence"].alias("confidence"),
        )

    kp3 = F.transform("keypoints", three)
    seen = F.filter(kp3, lambda k: k["confidence"] > 0)

    def extent(c: str) -> tuple[Any, Any]:
        values = F.transform(seen, lambda k: k[c])
        return F.array_min(values), F.array_max(values)

    (x1, x2), (y1, y2), (z1, z2) = extent("x"), extent("y"), extent("z")
    return events.select(
        F.when(in_3d, F.lit("")).otherwise(F.col("source")).alias("source"),
        F.when(in_3d, F.col("person_id")).otherwise(F.col("track_id")).alias("track_id"),
        F.coalesce(F.col("class"), F.lit("person")).alias("class"),
        F.col("frame"),
        F.col("timestamp"),
        F.when(in_3d, F.array(x1, y1, x2, y2)).otherwise(F.col("box")).alias("box"),
        F.when(in_3d, F.array(z1, z2)).otherwise(F.array(none, none)).alias("height"),
        F.when(in_3d, kp3).otherwise(F.transform("keypoints", flat)).alias("keypoints"),
    )


def _named(name: str) -> Any:
    """The predicate "this keypoint is `name`" (one argument: a two-argument lambda would be
    given the element's index by Spark)."""
    from pyspark.sql import functions as F

    return lambda kp: kp["name"] == F.lit(name)


def _action_frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    df = pd.DataFrame(rows, columns=list(ACTION_FIELDS))
    df["count"] = pd.array(df["count"], dtype="Int64")
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    df["keypoint"] = df["keypoint"].astype(object)
    return df


def make_state_function(rules: Sequence[Rule], points: Sequence[str], idle_timeout: float) -> Any:
    """The function Spark calls per (source, track_id) and micro-batch: the track's new rows
    and its state in, its new actions out (`posekit.actions.detect.step_track`)."""
    from posekit.actions.detect import finish_action

    names = [*BASE_COLUMNS, *point_columns(points)]
    rules = tuple(rules)

    def on_track(key: tuple[Any, ...], batches: Any, state: Any) -> Any:
        import numpy as np
        import pandas as pd

        source, track_id = str(key[0]), int(key[1])
        if state.hasTimedOut:  # no frame of this track for idle_timeout: forget it
            state.remove()
            return
        pdf = pd.concat(list(batches), ignore_index=True)
        if pdf.empty:
            return
        columns = {c: pdf[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in names}
        previous = json.loads(state.get[0]) if state.exists else None
        actions, new_state = step_track(rules, columns, str(pdf["class"].iloc[0]), previous)
        state.update((json.dumps(new_state, allow_nan=False),))
        last_ms = (float(np.nanmax(columns["timestamp"])) + EVENT_TIME_OFFSET_S) * 1000
        timeout = max(last_ms + idle_timeout * 1000, state.getCurrentWatermarkMs() + 1)
        state.setTimeoutTimestamp(int(timeout))
        if actions:
            cls = str(pdf["class"].iloc[0])
            yield _action_frame([finish_action(a, source, track_id, cls) for a in actions])

    return on_track


def action_stream(events: Any, rules: Sequence[Rule], config: ActionsConfig) -> Any:
    """Streaming DataFrame of posekit.action/1 rows from parsed events."""
    from pyspark.sql.streaming.state import GroupStateTimeout

    points = needed_points(rules)
    flat = (
        track_columns(on_the_floor(events, config.up), points)
        .withWatermark("event_time", f"{int(config.watermark * 1000)} milliseconds")
        .dropDuplicatesWithinWatermark(["source", "frame", "track_id"])
    )
    return flat.groupBy("source", "track_id").applyInPandasWithState(
        make_state_function(rules, points, config.idle_timeout),
        action_struct(),
        "state string",
        "append",
        GroupStateTimeout.EventTimeTimeout,
    )


@dataclass
class ActionsJob:
    """The two streaming queries of a run (actions and dead letters) and their totals."""

    queries: list[Any]
    totals: RunTotals
    out: str  # a local folder, or a URI of a cluster's file system (hdfs://, s3a://, ...)
    lines_of: dict[Path, int] = field(default_factory=dict, repr=False)  # committed files read

    def poll(self) -> None:
        for p in self.queries[0].recentProgress:
            self.totals.add(p)

    def write_summary(self) -> dict[str, int | None]:
        """summary.json: this run's lines, duplicates and late events (from Spark's progress
        reports) and the actions and dead letters committed so far (all runs: the files)."""
        self.poll()
        t = self.totals
        summary: dict[str, int | None] = {"batches": t.batches, "lines": t.lines,
                                          "duplicates": t.duplicates, "late": t.late,
                                          "actions": None, "dead_letters": None}  # fmt: skip
        if is_uri(self.out):  # the driver cannot list a cluster's files: Spark's counts only
            return summary
        out = Path(self.out)
        summary["actions"] = self._count(out / "actions")
        summary["dead_letters"] = self._count(out / "dead_letter")
        write_text_replacing(out / "summary.json", json.dumps(summary, indent=1))
        return summary

    def _count(self, folder: Path) -> int:
        """Lines of the files the sink committed in `folder`; a committed file never changes,
        so each is read once however often the summary is written."""
        files = _committed_files(folder)
        for path in files:
            if path not in self.lines_of:
                with path.open() as f:
                    self.lines_of[path] = sum(1 for line in f if line.strip())
        return sum(self.lines_of[path] for path in files)

    def stop(self) -> None:
        for q in self.queries:
            q.stop()


def start_job(
    spark: Any,
    events: str,
    rules: Sequence[Rule],
    out: str | Path,
    config: ActionsConfig,
    *,
    once: bool,
    console: bool = False,
) -> ActionsJob:
    """Start the queries. Outputs under `out`: actions/ (JSON lines; or the console),
    dead_letter/ (the malformed lines with their reason), checkpoints/ (what lets a restart
    resume where the last run stopped, without repeating an action), summary.json."""
    if once and events.startswith("tcp://"):
        raise UserError("--once needs a folder of event files; a socket has no end")
    base = str(out).rstrip("/")
    good, dead = split_events(read_lines(spark, events, config))
    actions = action_stream(good, rules, config)

    def started(df: Any, name: str, fmt: str) -> Any:
        w = df.writeStream.outputMode("append").queryName(f"posekit_{name}")
        w = w.option("checkpointLocation", f"{base}/checkpoints/{name}")
        if fmt == "console":
            w = w.format("console").option("truncate", "false")
        else:
            w = w.format("json").option("path", f"{base}/{name}")
        if once:
            w = w.trigger(availableNow=True)
        else:
            w = w.trigger(processingTime=f"{int(config.trigger_seconds * 1000)} milliseconds")
        return w.start()

    queries = [started(actions, "actions", "console" if console else "json"),
               started(dead, "dead_letter", "json")]  # fmt: skip
    return ActionsJob(queries, RunTotals(), base)


def run_job(job: ActionsJob, *, once: bool, report_every: float = 10.0) -> dict[str, int | None]:
    """Wait for the job (until its input is done with `once`, else until interrupted), logging
    its totals; returns the final summary."""
    try:
        if once:
            for q in job.queries:
                q.awaitTermination()
        else:
            while all(q.isActive for q in job.queries):
                time.sleep(report_every)
                log.info("actions: %s", job.write_summary())
        for q in job.queries:
            if q.exception() is not None:
                raise RuntimeError(f"the Spark query {q.name} failed: {q.exception()}")
    except KeyboardInterrupt:
        log.info("actions: stopping (the checkpoint lets a restart resume here)")
    finally:
        job.stop()
    return job.write_summary()


def read_actions(out: Path) -> list[dict[str, Any]]:
    """The actions a job wrote under `out` (the files its sink committed), in order."""
    from posekit.actions.detect import action_order

    rows = read_committed(out / "actions")
    for r in rows:  # Spark's JSON writer leaves out null fields
        for k in ACTION_FIELDS:
            r.setdefault(k, None)
    return sorted(rows, key=action_order)


def read_committed(folder: Path) -> list[dict[str, Any]]:
    """The JSON lines a Spark file sink committed in `folder`."""
    rows = []
    for path in _committed_files(folder):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def _committed_files(folder: Path) -> list[Path]:
    """The files of a Spark file sink that its metadata log commits (a crashed batch's stray
    files are not in it)."""
    meta = folder / "_spark_metadata"
    if not meta.is_dir():
        return []
    paths: set[str] = set()
    for entry in sorted(meta.iterdir(), key=lambda p: (len(p.name), p.name)):
        if entry.name.startswith(".") or entry.name.endswith(".tmp"):
            continue
        for line in entry.read_text().splitlines()[1:]:  # first line: the log's version
            if line.strip():
                paths.add(json.loads(line)["path"])
    files = [Path(unquote(urlparse(p).path)) for p in paths]
    return sorted(f for f in files if f.exists())
