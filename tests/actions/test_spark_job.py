"""The Spark job on a local session: the schema generated from event.schema.json parses what
`posekit track` writes, the job finds exactly the actions of the in-process logic (the same
code, run by Spark's stateful operator per track and micro-batch), malformed lines go to the
dead letters with their reason, a restart resumes from its checkpoint without repeating an
action, duplicates and late events are dropped and counted, and the socket source works."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import pytest

from posekit.track.synth_motion import events_of, fall, figure, squats, write_jsonl

pytest.importorskip("pyspark", reason="needs the spark extra")

from cli_output import error_lines
from posekit.actions import detect_actions
from posekit.actions.job import (
    ActionsConfig,
    read_actions,
    read_committed,
    run_job,
    spark_session,
    start_job,
)
from posekit.actions.rules import Dwell, Envelope, Fall, Repetitions, Speed
from posekit.actions.spark_schema import action_schema, action_struct, event_struct
from posekit.cli.main import main
from posekit.schema import get_schema
from posekit.track.events import event_schema
from posekit.track.sinks import TcpEventServer

pytestmark = pytest.mark.slow

RULES = (
    Repetitions(name="squat", angle=("left_hip", "left_knee", "left_ankle"), low=100, high=160),
    Fall(name="fall"),
    Dwell(name="door", zone=((0, 0), (500, 0), (500, 720), (0, 720)), seconds=2.0),
    Envelope(name="arm", keypoints=("left_wrist",), box=(0, 0, 640, 720)),
    Speed(name="run", threshold=200.0),
)
CONFIG = ActionsConfig(master="local[2]", partitions=2)


@pytest.fixture(scope="module")
def spark():  # type: ignore[no-untyped-def]
    session = spark_session(CONFIG, app="posekit tests")
    yield session
    session.stop()


def _recording() -> list[dict]:
    """Two cameras interleaved frame by frame: squats and a fall on one, squats and a walk
    out of the door zone on the other."""
    walk = [figure((300.0 + 110.0 * f / 30, 300.0), 300.0, 175.0) for f in range(300)]
    left = events_of({1: squats(4), 2: fall(3.0)}, source="left.mp4")
    right = events_of({1: squats(2, hip=(900.0, 300.0)), 5: walk}, source="right.mp4")
    by_frame: dict[int, list[dict]] = {}
    for e in left + right:
        by_frame.setdefault(e["frame"], []).append(e)
    return [e for f in sorted(by_frame) for e in by_frame[f]]


def _types(node: dict) -> set[str]:
    t = node.get("type", "string")
    return set(t) if isinstance(t, list) else {t}


def test_the_spark_schemas_are_the_json_schemas(spark) -> None:  # type: ignore[no-untyped-def]
    names = {"string": "StringType", "integer": "LongType", "number": "DoubleType",
             "array": "ArrayType", "object": ("StructType", "MapType")}  # fmt: skip
    for spec, struct in ((event_schema(), event_struct()), (action_schema(), action_struct())):
        assert [f.name for f in struct.fields] == list(spec["properties"])
        for f in struct.fields:
            want = names[(_types(spec["properties"][f.name]) - {"null"}).pop()]
            assert type(f.dataType).__name__ in (want if isinstance(want, tuple) else (want,))
    # what posekit track writes, parsed by Spark with that schema, is what was written
    events = events_of({1: squats(1)})[:3]
    events[0]["angles"] = {"knee": 91.5, "elbow": None}
    for e in events:
        jsonschema.validate(e, event_schema())
    df = spark.createDataFrame([(json.dumps(e),) for e in events], "value string")
    from pyspark.sql import functions as F

    rows = df.select(F.from_json("value", event_struct()).alias("e")).select("e.*").collect()
    for e, row in zip(events, rows, strict=True):
        got = json.loads(json.dumps(row.asDict(recursive=True)))
        if "angles" not in e:
            assert got.pop("angles") is None
        assert got.pop("keypoints_3d") is None  # (lifted events only)
        assert got == e


def test_the_job_finds_the_in_process_actions_and_sets_bad_lines_aside(  # type: ignore[no-untyped-def]
    spark, tmp_path: Path
) -> None:
    events = _recording()
    bad = [
        "not json at all",
        '{"schema": "posekit.track/1", "source": "left.mp4"}',
        json.dumps(dict(events[0], frame=-3)),
        json.dumps(dict(events[0], schema="posekit.track/9")),
        json.dumps(dict(events[0], track_id="seven")),
        "[1, 2, 3]",
    ]
    write_jsonl(tmp_path / "in" / "events-00000001.jsonl", events[:2000])
    write_jsonl(tmp_path / "in" / "events-00000002.jsonl", events[2000:], bad)
    (tmp_path / "in" / ".events-00000003.jsonl.part").write_text("half a line {")
    out = tmp_path / "out"
    summary = run_job(start_job(spark, str(tmp_path / "in"), RULES, out, CONFIG, once=True),
                      once=True)  # fmt: skip
    want = detect_actions(events, RULES)
    assert {a["kind"] for a in want} == {"repetitions", "fall", "dwell", "envelope", "speed"}
    assert read_actions(out) == want
    for a in want:
        jsonschema.validate(a, action_schema())
    reasons = {d["value"]: d["reason"] for d in read_committed(out / "dead_letter")}
    assert reasons == {
        bad[0]: "not JSON",
        bad[1]: "missing or invalid 'frame'",
        bad[2]: "'frame' is negative",
        bad[3]: "'schema' is not posekit.track/1 (nor posekit.track3d/1)",
        bad[4]: "missing or invalid 'track_id'",
        bad[5]: "not a posekit.track/1 event object (no schema, source or frame)",
    }
    assert summary["lines"] == len(events) + len(bad) and summary["actions"] == len(want)
    assert summary["dead_letters"] == len(bad) and summary["late"] == 0
    assert json.loads((out / "summary.json").read_text()) == summary


def test_the_job_reads_3d_events_on_their_floor(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`posekit triangulate`'s events (a synthetic squat and fall in a world whose -y points
    up): the job finds what `detect_actions` finds, in SQL; a 3D event without a time or with
    a non-finite coordinate is a dead letter."""
    import numpy as np
    from test_actions_3d import RULES, events3d

    from posekit.threed.motion import generate_clip

    rng = np.random.default_rng(0)
    events = []
    for person, motion in ((1, "squat"), (2, "fall")):
        p = generate_clip(get_schema("coco17"), 300, rng, motion=motion).points
        events += events3d(np.stack([p[..., 0], -p[..., 2], p[..., 1]], -1), person, drop=(5, 0))
    events.sort(key=lambda e: e["frame"])
    nan = json.loads(json.dumps(events[1]))
    nan["keypoints"][1]["x"] = float("nan")
    # (1e999: valid JSON that overflows to infinity)
    schemaless = {k: v for k, v in events[0].items() if k != "schema"}
    bad = [
        json.dumps(dict(events[0], timestamp=None)),
        json.dumps(nan).replace("NaN", "1e999"),
        json.dumps(schemaless),
    ]
    write_jsonl(tmp_path / "in" / "events-00000001.jsonl", events, bad)
    config = ActionsConfig(master="local[2]", partitions=2, up="-y")
    out = tmp_path / "out"
    run_job(start_job(spark, str(tmp_path / "in"), RULES, out, config, once=True), once=True)
    want = detect_actions(events, RULES, up="-y")
    assert {a["rule"] for a in want} >= {"squat", "fall"}
    assert read_actions(out) == want
    reasons = sorted(d["reason"] for d in read_committed(out / "dead_letter"))
    assert reasons == [
        "a 3D event without 'timestamp' (posekit triangulate --fps gives one)",
        "a keypoint's x, y or z is not a finite number",
        "missing or invalid 'schema'",
    ]


def test_no_single_event_stops_the_job_and_no_linked_file_is_copied(  # type: ignore[no-untyped-def]
    spark, tmp_path: Path
) -> None:
    """Values Spark's ANSI mode or the state's JSON would stop on (a keypoint a rule names
    missing, a timestamp past microsecond range, an infinite box or keypoint) become dead
    letters or missing points; a file linked into the folder (a 0600 secret) is not read into
    the dead letters; an overlong line is cut in its dead letter."""
    events = events_of({1: squats(2)})
    e = dict(events[0], source="probe.mp4", track_id=99)
    kp_missing = dict(e, keypoints=[k for k in e["keypoints"] if k["name"] != "left_knee"])
    infinite_box = json.dumps(dict(e, box=[0, 0, "INF", 10])).replace('"INF"', "1e999")
    infinite_x = json.dumps(dict(e, keypoints=[dict(e["keypoints"][0], x="INF")]))
    bad = {
        json.dumps(dict(e, timestamp=1e13)): "'timestamp' is not a time in [0, 1e+11] seconds",
        infinite_box: "'box' holds a value that is not a finite number",
        infinite_x.replace(
            '"INF"', "-1e999"
        ): "a keypoint's x, y or confidence is not a finite number",
    }
    folder = tmp_path / "in"
    write_jsonl(folder / "events-00000001.jsonl", [kp_missing, *events], list(bad))
    secret = tmp_path / "secret.txt"
    secret.write_text("API-KEY=abc123\n")
    secret.chmod(0o600)
    (folder / "events-00000002.jsonl").symlink_to(secret)
    out = tmp_path / "out"
    summary = run_job(start_job(spark, str(folder), RULES, out, CONFIG, once=True), once=True)
    assert read_actions(out) == detect_actions([kp_missing, *events], RULES)
    dead = read_committed(out / "dead_letter")
    assert {d["value"]: d["reason"] for d in dead if d.get("value")} == bad
    assert [d["reason"] for d in dead if not d.get("value")] == [
        "in a link or a linked folder: not read"
    ]
    assert not any(b"API-KEY" in p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert summary["dead_letters"] == len(bad) + 1


def test_a_restart_resumes_and_duplicates_and_late_events_are_dropped(  # type: ignore[no-untyped-def]
    spark, tmp_path: Path
) -> None:
    events = events_of({1: squats(5)}, source="gym.mp4")  # 12 s
    half = len(events) // 2
    folder, out = tmp_path / "in", tmp_path / "out"
    config = ActionsConfig(master="local[2]", partitions=2, watermark=2.0)
    write_jsonl(folder / "events-00000001.jsonl", events[:half])
    first = run_job(start_job(spark, str(folder), RULES[:1], out, config, once=True), once=True)
    assert 0 < first["actions"] < 5
    # the sink restarted and sent its last 20 frames again; an old frame arrives far too late
    late = dict(events[0], track_id=9)
    write_jsonl(folder / "events-00000002.jsonl", events[half - 20 :] + [late])
    second = run_job(start_job(spark, str(folder), RULES[:1], out, config, once=True), once=True)
    assert [a["count"] for a in read_actions(out)] == [1, 2, 3, 4, 5]
    assert read_actions(out) == detect_actions(events, RULES[:1])
    assert second["duplicates"] == 20 and second["late"] == 1
    assert second["lines"] == len(events) - half + 21  # only the new file was read


def test_the_cli_runs_the_job_and_refuses_bad_rules_in_one_line(  # type: ignore[no-untyped-def]
    spark, tmp_path: Path, capsys
) -> None:
    events = events_of({1: squats(3)})
    write_jsonl(tmp_path / "in" / "events-00000001.jsonl", events)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: squat\n    kind: repetitions\n"
        "    angle: [left_hip, left_knee, left_ankle]\n    low: 100\n    high: 160\n"
    )
    args = ["actions", "--events", str(tmp_path / "in"), "--rules", str(rules), "--out",
            str(tmp_path / "out"), "--once", "--master", "local[2]",
            "--partitions", "2"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    assert "3 actions, 0 dead letters" in capsys.readouterr().out
    assert [a["count"] for a in read_actions(tmp_path / "out")] == [1, 2, 3]
    rules.write_text("rules:\n  - {name: squat, kind: repetitions, low: 100, high: 160}\n")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1 and "needs 'angle'" in err, err
    stranger = tmp_path / "theirs"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    rules.write_text("rules:\n  - {name: f, kind: fall}\n")
    assert main([*args[:6], str(stranger), *args[7:]]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_the_socket_source_reads_what_posekit_track_serves(  # type: ignore[no-untyped-def]
    spark, tmp_path: Path
) -> None:
    events = events_of({1: squats(2)})
    with TcpEventServer("127.0.0.1", 0) as server:
        job = start_job(spark, f"tcp://127.0.0.1:{server.port}", RULES[:1], tmp_path / "out",
                        CONFIG, once=False)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            # both queries (actions, dead letters) connect; a reader gets what follows
            while server.readers < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert server.readers == 2
            by_frame: dict[int, list[dict]] = {}
            for e in events:
                by_frame.setdefault(e["frame"], []).append(e)
            for f in sorted(by_frame):
                server.write(by_frame[f])
            while len(read_actions(tmp_path / "out")) < 2 and time.monotonic() < deadline:
                job.queries[0].processAllAvailable()
                time.sleep(0.2)
        finally:
            job.stop()
    assert [a["count"] for a in read_actions(tmp_path / "out")] == [1, 2]
    assert server.dropped == 0


def test_fuzz_event_lines(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Mutated event lines (values and bytes) among valid ones, read by one run of the job:
    it finishes, every line is an event or a dead letter with its reason, and the valid
    events' actions are found (one Spark run for all cases: the per-case verdict is the line's
    fate)."""
    import random

    from fuzzing import CASES, mutate_bytes, mutate_json

    rng = random.Random(41)
    events = events_of({1: squats(2)}, source="gym.mp4")
    lines = []
    for i in range(CASES * 5):
        e = dict(events[i % len(events)], source=f"fuzz{i}.mp4")
        if i % 4 == 0:
            text = mutate_bytes(json.dumps(e).encode(), rng).decode("utf-8", "replace")
        else:
            text = json.dumps(mutate_json(e, rng), allow_nan=True)
        lines.append(text.replace("\n", " ").replace("\r", " "))
    folder, out = tmp_path / "in", tmp_path / "out"
    write_jsonl(folder / "events-00000001.jsonl", events, lines)
    summary = run_job(start_job(spark, str(folder), RULES, out, CONFIG, once=True), once=True)
    dead = read_committed(out / "dead_letter")
    assert all(d["reason"] for d in dead)
    assert summary["lines"] == len(events) + len(lines) and summary["dead_letters"] == len(dead)
    mine = [a for a in read_actions(out) if a["source"] == "gym.mp4"]
    assert mine == detect_actions(events, RULES)


def test_the_summary_is_never_written_through_a_planted_link(tmp_path: Path) -> None:
    """summary.json goes through a new unique temporary file: a link planted at the old
    predictable name (or at summary.json itself) is not written through."""
    from types import SimpleNamespace

    from posekit.actions.job import ActionsJob, RunTotals

    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("precious")
    (out / ".summary.json.part").symlink_to(victim)
    (out / "summary.json").symlink_to(victim)
    job = ActionsJob([SimpleNamespace(recentProgress=[])], RunTotals(), str(out))
    summary = job.write_summary()
    assert victim.read_text() == "precious" and not (out / "summary.json").is_symlink()
    assert json.loads((out / "summary.json").read_text()) == summary
