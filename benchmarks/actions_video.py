"""Actions end to end: rendered clips -> a trained model through `posekit track` -> events ->
`posekit actions` (Spark) -> precision and recall of the squats and falls.

1. Model: heatpose-s trained from scratch in single-subject mode (whole frames, one person)
   for --minutes on --images frames of random action clips (`posekit.track.synth_actions`:
   squats at every depth, falls, people lying, sitting down and walking; seed 100), then its
   keypoint error on 200 held-out frames (other people and backdrops, seed 200). Or
   --model CKPT to take a trained one.
2. --clips held-out clips of 12 s (seeds 1000+), a quarter each: squats (2-4, known end
   times), a fall (known time), sitting down slowly and walking (both must give nothing).
   Each goes through the `posekit track` command into one rolling events folder, then
   `posekit actions --once` runs the rules (squat: left knee angle 100/160; fall: defaults).
3. Scored as `actions_synth.py` scores them (a squat within 0.6 s of its end, a fall within
   2.5 s after it), beside the same rules on the renderer's true keypoints of the same clips;
   the squat also with `low: 125` (the deepest knee angle the model reports is printed).

    python benchmarks/actions_video.py [--minutes 15] [--clips 8] [--out /tmp/bench/actions_video]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from actions_synth import RULES, score
from posekit import Model
from posekit.actions import detect_actions
from posekit.actions.job import read_actions
from posekit.eval import EvalConfig
from posekit.track.synth_actions import (
    ACTIONS,
    action_times,
    random_clip,
    write_action_clip,
    write_action_dataset,
)
from posekit.track.synth_motion import events_of

RULES_YAML = """rules:
  - name: squat
    kind: repetitions
    angle: [left_hip, left_knee, left_ankle]
    low: 100
    high: 160
  - name: squat_125
    kind: repetitions
    angle: [left_hip, left_knee, left_ankle]
    low: 125
    high: 160
  - name: fall
    kind: fall
"""


def posekit(*args: str) -> None:
    """Run a posekit command as a user would; stop on failure."""
    cmd = [sys.executable, "-m", "posekit", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def train(out: Path, minutes: float, images: int, imgsz: int) -> Path:
    data = write_action_dataset(out / "data", images, seed=100)
    t0 = time.time()
    result = Model("heatpose-s").train(
        data=str(data), epochs=1000, imgsz=imgsz, batch=16, workers=1, project=str(out),
        name="train", exist_ok=True, time_limit=minutes, val=False, warmup_epochs=1.0,
        single_subject=True, lr0=0.002, degrees=10.0, scale=0.25, translate=0.1, flip=0.5,
    )  # fmt: skip
    print(f"1. heatpose-s, single-subject, {images} frames at imgsz {imgsz}: "
          f"{result.epochs_run} epochs in {(time.time() - t0) / 60:.1f} min")  # fmt: skip
    return Path(result.last)


def held_out_error(ckpt: Path, out: Path, imgsz: int) -> None:
    test = write_action_dataset(out / "test", 200, seed=200, val=0.0)
    m = Model(ckpt).val(test, split="train", imgsz=imgsz, config=EvalConfig(per_keypoint_ap=False))
    print(f"   held-out frames (200, other people and backdrops): EPE {m.epe:.2f} px, "
          f"PCK@0.05 {m.pck:.4f}, AP {m.coco['AP']:.4f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="A trained checkpoint.")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--images", type=int, default=1200, help="Training frames.")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench/actions_video"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.model or train(args.out, args.minutes, args.images, args.imgsz)
    held_out_error(ckpt, args.out, args.imgsz)

    rng = np.random.default_rng(7)
    for sub in ("clips", "events", "actions", "track"):
        shutil.rmtree(args.out / sub, ignore_errors=True)
    squat_truth, fall_truth, true_events = {}, {}, []
    t0 = time.time()
    for c in range(args.clips):
        cfg = random_clip(rng, seed=1000 + c, action=ACTIONS[c % len(ACTIONS)])
        video, truths = write_action_clip(cfg, args.out / "clips" / f"clip{c:02d}_{cfg.action}.mp4")
        source = str(video)
        times = action_times(cfg)
        if cfg.action == "squat":
            squat_truth[(source, 1)] = times
        elif cfg.action == "fall":
            fall_truth[(source, 1)] = times[0]
        truth_kp = [t.instances.keypoints[0] if len(t.ids) else np.zeros((17, 3)) for t in truths]
        for kp in truth_kp:
            kp[:, 2] = np.where(kp[:, 2] > 0, 0.9, 0.0)
        true_events += events_of({1: truth_kp}, source=source)
        posekit("track", "--model", str(ckpt), "--source", source, "--imgsz", str(args.imgsz),
                "--events-dir", str(args.out / "events"), "--no-save",
                "--project", str(args.out / "track"), "--name", f"clip{c:02d}")  # fmt: skip
    frames = sum(1 for _ in (args.out / "events").iterdir())
    print(f"2. {args.clips} clips of 12 s at 30 fps through posekit track in "
          f"{time.time() - t0:.0f} s ({frames} event files)")  # fmt: skip
    rules = args.out / "rules.yaml"
    rules.write_text(RULES_YAML)
    t0 = time.time()
    posekit("actions", "--events", str(args.out / "events"), "--rules", str(rules),
            "--out", str(args.out / "actions"), "--once")  # fmt: skip
    actions = read_actions(args.out / "actions")
    tracked = [json.loads(line) for f in sorted((args.out / "events").iterdir())
               for line in f.read_text().splitlines()]  # fmt: skip
    print(f"   posekit actions --once: {len(actions)} actions in {time.time() - t0:.0f} s")
    ids = sorted({(Path(a["source"]).name, a["track_id"]) for a in actions})
    if any(i != 1 for _, i in ids):  # one person per clip: the truth is keyed by track 1
        print(f"   note: actions on tracks {ids}; scored as one person per clip")
    actions = [{**a, "track_id": 1} for a in actions]
    model_score = score([a for a in actions if a["rule"] != "squat_125"], squat_truth, fall_truth)
    loose = [{**a, "rule": "squat"} for a in actions if a["rule"] == "squat_125"]
    loose_score = score(loose, squat_truth, fall_truth)
    truth_score = score(detect_actions(true_events, RULES), squat_truth, fall_truth)
    print("3. precision / recall of the action events")
    rows = (("squat", "model (posekit track)", model_score),
            ("squat", "model, low 125 instead of 100", loose_score),
            ("squat", "true keypoints", truth_score),
            ("fall", "model (posekit track)", model_score),
            ("fall", "true keypoints", truth_score))  # fmt: skip
    for k, label, s in rows:
        print(
            f"   {k}, {label}: {s[k + '_truth']} true, {s[k + '_detected']} detected, "
            f"precision {s[k + '_precision']:.3f}, recall {s[k + '_recall']:.3f}"
        )
    bottoms = [min(knee_angles(e for e in tracked if e["source"] == src))
               for src, _ in squat_truth]  # fmt: skip
    print(
        f"   deepest knee angle the model saw per squat clip: "
        f"{', '.join(f'{b:.0f}' for b in bottoms)} degrees (true: 85)"
    )


def knee_angles(events) -> list[float]:  # type: ignore[no-untyped-def]
    """The left knee angle (degrees) of each event."""
    out = []
    for e in events:
        k = {p["name"]: p for p in e["keypoints"]}
        a, b, c = (
            np.array([k[n]["x"], k[n]["y"]]) for n in ("left_hip", "left_knee", "left_ankle")
        )
        u, v = a - b, c - b
        out.append(float(np.degrees(np.arccos(u @ v / (np.linalg.norm(u) * np.linalg.norm(v))))))
    return out


if __name__ == "__main__":
    main()
