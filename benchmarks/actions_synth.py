"""Actions at scale: how well the rules find squats and falls, how fast the Spark job runs, and
how soon an action follows its events.

1. Precision and recall: synthetic figures (posekit.track.synth_motion) on several cameras that
   squat a known number of times, fall at a known time, sit down slowly or walk (the last two
   must give nothing), with detector-like noise (Gaussian px noise, missed keypoints), through
   the Spark job (`--once`); the in-process `detect_actions` must give the same actions.
2. Throughput: a replayed recording of at least --events events (files of a rolling
   directory) through the Spark job on this machine, beside the in-process logic on the same
   events (read, parse and detect), both in events/s, measured in this run.
3. Latency: a running job (trigger every 0.5 s); a new events file holding the end of a squat
   is renamed into the folder, and the time until its action is committed is measured.

    python benchmarks/actions_synth.py [--events 1000000] [--out /tmp/bench/actions]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from posekit.actions import detect_actions
from posekit.actions.job import ActionsConfig, read_actions, run_job, spark_session, start_job
from posekit.actions.rules import Fall, Repetitions
from posekit.track.sinks import RollingDirWriter
from posekit.track.synth_motion import FPS, events_of, fall, figure, noisy, squats

RULES = (
    Repetitions(name="squat", angle=("left_hip", "left_knee", "left_ankle"), low=100, high=160),
    Fall(name="fall"),
)


def scenario(rng: np.random.Generator, cameras: int, per_camera: int, sigma: float):
    """Events of every camera and the truth: {(source, track): [squat end times]} and
    {(source, track): fall time}."""
    events, squat_truth, fall_truth = [], {}, {}
    for c in range(cameras):
        source = f"cam{c}.mp4"
        tracks = {}
        for i in range(per_camera):
            tid = i + 1
            kind = ("squat", "fall", "sit", "walk")[i % 4]
            hip = (150.0 + 250.0 * i, 300.0)
            if kind == "squat":
                n, start, period = int(rng.integers(2, 7)), rng.uniform(0.5, 2), rng.uniform(1.5, 3)
                track = squats(n, start=start, period=period, seconds=20.0, hip=hip)
                squat_truth[(source, tid)] = [start + (m + 1) * period for m in range(n)]
            elif kind == "fall":
                at = rng.uniform(3, 15)
                track = fall(at, seconds=20.0, hip=hip, duration=rng.uniform(0.3, 0.7))
                fall_truth[(source, tid)] = at
            elif kind == "sit":  # gets down slowly: not a fall
                track = fall(rng.uniform(3, 10), seconds=20.0, hip=hip, duration=4.0)
            else:  # walks across
                track = [figure((hip[0] + 60.0 * f / FPS, hip[1]), 300.0, 175.0)
                         for f in range(int(20 * FPS))]  # fmt: skip
            tracks[tid] = noisy(track, rng, sigma=sigma, drop=0.05)
        events += events_of(tracks, source=source)
    events.sort(key=lambda e: (e["frame"], e["source"], e["track_id"]))  # cameras interleave
    return events, squat_truth, fall_truth


def score(actions: list[dict], squat_truth: dict, fall_truth: dict) -> dict[str, float]:
    """Each true squat (its end time) matched to at most one detected repetition of the same
    track within 0.6 s, each true fall to a detected fall within 2.5 s after it."""
    found = {"squat": 0, "fall": 0}
    detected = {"squat": 0, "fall": 0}
    for kind, truth, tol in (("squat", squat_truth, 0.6), ("fall", fall_truth, 2.5)):
        mine = [a for a in actions if a["rule"] == kind]
        detected[kind] = len(mine)
        by_track: dict = {}
        for a in mine:
            by_track.setdefault((a["source"], a["track_id"]), []).append(a["end_time"])
        for key, times in truth.items():
            times = times if isinstance(times, list) else [times]
            got = sorted(by_track.get(key, []))
            for t in times:
                lo, hi = (t - tol, t + tol) if kind == "squat" else (t, t + tol)
                hit = next((g for g in got if lo <= g <= hi), None)
                if hit is not None:
                    got.remove(hit)
                    found[kind] += 1
    n_truth = {"squat": sum(len(v) for v in squat_truth.values()), "fall": len(fall_truth)}
    return {
        f"{k}_{m}": v
        for k in ("squat", "fall")
        for m, v in (
            ("truth", n_truth[k]),
            ("detected", detected[k]),
            ("precision", found[k] / max(detected[k], 1)),
            ("recall", found[k] / max(n_truth[k], 1)),
        )
    }


def write_rolling(folder: Path, events: list[dict], per_file: int) -> int:
    """Events into a rolling directory as posekit track writes it (frames of `per_file`)."""
    by_frame: dict = {}
    for e in events:
        by_frame.setdefault((e["frame"]), []).append(e)
    with RollingDirWriter(folder, every_frames=per_file, every_seconds=1e9) as w:
        for f in sorted(by_frame):
            w.write(by_frame[f])
    return len(w.files)


def replay(n_events: int, rng: np.random.Generator) -> list[dict]:
    """At least n_events events: squatting and falling figures, many cameras of 20 s."""
    events: list[dict] = []
    cams = 0
    while len(events) < n_events:
        evs, _, _ = scenario(rng, 1, 8, 2.0)
        for e in evs:
            e["source"] = f"replay{cams}.mp4"
        events += evs
        cams += 1
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="Replayed events (part 2).")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--per-camera", type=int, default=8, help="Figures per camera (part 1).")
    parser.add_argument("--sigma", type=float, default=3.0, help="Keypoint noise, px.")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench/actions"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    config = ActionsConfig(master=args.master, partitions=4, trigger_seconds=0.5)
    t0 = time.perf_counter()
    spark = spark_session(config, app="posekit actions benchmark")
    print(f"Spark session: {time.perf_counter() - t0:.1f} s")

    # 1. precision and recall
    events, squat_truth, fall_truth = scenario(rng, args.cameras, args.per_camera, args.sigma)
    write_rolling(args.out / "p1" / "events", events, per_file=150)
    job = start_job(spark, str(args.out / "p1" / "events"), RULES, args.out / "p1" / "out",
                    config, once=True)  # fmt: skip
    run_job(job, once=True)
    actions = read_actions(args.out / "p1" / "out")
    same = actions == detect_actions(events, RULES)
    s = score(actions, squat_truth, fall_truth)
    print(f"1. {len(events)} events, {args.cameras} cameras x {args.per_camera} figures, noise "
          f"{args.sigma} px, 5 % keypoints missed; Spark == in-process: {same}")  # fmt: skip
    for k in ("squat", "fall"):
        print(f"   {k}: {s[k + '_truth']} true, {s[k + '_detected']} detected, precision "
              f"{s[k + '_precision']:.3f}, recall {s[k + '_recall']:.3f}")  # fmt: skip

    # 2. throughput
    t0 = time.perf_counter()
    big = replay(args.events, rng)
    folder = args.out / "p2" / "events"
    files = write_rolling(folder, big, per_file=600)
    size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    print(f"2. replay: {len(big)} events in {files} files ({size:.0f} MB), made in "
          f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    t0 = time.perf_counter()
    lines = [json.loads(x) for p in sorted(folder.iterdir()) for x in p.read_text().splitlines()]
    local = detect_actions(lines, RULES)
    t_local = time.perf_counter() - t0
    del lines
    t0 = time.perf_counter()
    job = start_job(spark, str(folder), RULES, args.out / "p2" / "out", config, once=True)
    summary = run_job(job, once=True)
    t_spark = time.perf_counter() - t0
    n = len(big)
    print(f"   in-process (read + parse + detect): {t_local:.1f} s, {n / t_local:,.0f} events/s, "
          f"{len(local)} actions")  # fmt: skip
    print(f"   Spark {args.master} (--once, {summary['batches']} batches): {t_spark:.1f} s, "
          f"{n / t_spark:,.0f} events/s, {summary['actions']} actions; "
          f"Spark/in-process {t_local / t_spark:.2f}x")  # fmt: skip
    print(f"   same actions: {read_actions(args.out / 'p2' / 'out') == local}")

    # 3. latency: a running job, a new file with the end of a squat
    folder = args.out / "p3" / "events"
    out = args.out / "p3" / "out"
    track = squats(40, start=0.5, period=2.0)
    evs = events_of({1: track}, source="live.mp4")
    chunks = [evs[i : i + 60] for i in range(0, len(evs), 60)]  # 2 s per file: one squat each
    writer = RollingDirWriter(folder, every_frames=10**9, every_seconds=1e9)
    writer.write(chunks[0])
    writer.roll()
    job = start_job(spark, str(folder), RULES[:1], out, config, once=False)
    delays = []
    try:
        for chunk in chunks[1:8]:
            before = len(read_actions(out))
            time.sleep(1.0)
            writer.write(chunk)
            writer.roll()
            t0 = time.perf_counter()
            while len(read_actions(out)) <= before and time.perf_counter() - t0 < 60:
                time.sleep(0.02)
            delays.append(time.perf_counter() - t0)
    finally:
        job.stop()
    print(f"3. latency, new events file -> its action committed (trigger 0.5 s): median "
          f"{statistics.median(delays):.2f} s, max {max(delays):.2f} s over "
          f"{len(delays)} files")  # fmt: skip
    spark.stop()


if __name__ == "__main__":
    main()
