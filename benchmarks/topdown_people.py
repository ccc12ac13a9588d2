"""Benchmark 3 of the RTMPose issue: synthetic people, the same wall-time budget for each
model, held-out AP.

Generates the training set and the held-out test set of `train_synth_person.py` once (same
seeds and sizes), then trains each model from scratch for `--minutes` and evaluates its last
weights on the test set: the one-stage rtpose-n and the bottom-up pafpose-s find the people
themselves; the top-down models (instance crops of 256x192) are evaluated on the ground-truth
boxes, as top-down papers report them. One line per model, then a table.

    python benchmarks/topdown_people.py [--models rtmpose-s heatpose-s ...] [--minutes 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from posekit import Model
from posekit.data.synth import SynthConfig, generate
from posekit.eval import EvalConfig

#: per-model settings beside the shared ones: rtpose-n as `train_synth_person.py` trains it;
#: top-down models take batches of crops (about three per image)
RECIPES = {
    "rtpose-n": {"imgsz": 320, "batch": 8, "lr0": 0.002, "scale": 0.25, "degrees": 5.0},
    "rtmpose-s": {"batch": 32, "lr0": 0.002},
    "heatpose-s": {"batch": 32, "lr0": 0.002},
    "vitpose-s": {"batch": 32, "lr0": 0.001},
    # bottom-up, finds the people itself: rtpose-n's input and augmentation, the learning rate
    # of its memorisation test
    "pafpose-s": {"imgsz": 320, "batch": 8, "lr0": 0.01, "scale": 0.25, "degrees": 5.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["rtmpose-s", "heatpose-s", "vitpose-s", "rtpose-n"]
    )
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--train", type=int, default=3600)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--out", default="runs/bench_topdown_people")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    data = out / "data"
    if not (data / "data.yaml").exists():
        generate(SynthConfig("person", images=args.train, imgsz=640, seed=0), data, val=0.1,
                 workers=2)  # fmt: skip
    test = out / "test"
    if not (test / "data.yaml").exists():
        generate(SynthConfig("person", images=args.test, imgsz=640, seed=1), test, val=0.0,
                 workers=2)  # fmt: skip
    rows = []
    for name in args.models:
        recipe = dict(RECIPES.get(name, {"batch": 16}))
        imgsz = recipe.pop("imgsz", 640)
        t0 = time.time()
        result = Model(name).train(data=str(data), epochs=1000, imgsz=imgsz, workers=1,
                                   project=str(out), name=name, exist_ok=True,
                                   time_limit=args.minutes, val=False, warmup_epochs=1.0,
                                   **recipe)  # fmt: skip
        minutes = (time.time() - t0) / 60
        trained = Model(result.last)
        m = trained.val(test, split="train", imgsz=imgsz, config=EvalConfig(per_keypoint_ap=False))
        top_down = trained.net.input_mode.per_instance
        how = "ground-truth boxes" if top_down else f"whole images at {imgsz}"
        row = {"model": name, "epochs": result.epochs_run, "minutes": round(minutes, 1),
               "evaluated_on": how, "AP": m.coco["AP"], "AP50": m.coco["AP50"],
               "AP75": m.coco["AP75"], "PCK@0.05": m.pck, "EPE_px": m.epe}  # fmt: skip
        rows.append(row)
        (out / f"summary_{name}.json").write_text(json.dumps(row, indent=2))
        print(f"{name}: {result.epochs_run} epochs in {minutes:.1f} min; held-out ({args.test} "
              f"images, {how}): AP {m.coco['AP']:.4f}, AP50 {m.coco['AP50']:.4f}, AP75 "
              f"{m.coco['AP75']:.4f}, PCK@0.05 {m.pck:.4f}, EPE {m.epe:.2f} px",
              flush=True)  # fmt: skip
    head = ("model", "epochs", "min", "AP", "AP50", "PCK")
    print("\n{:10s} {:>6s} {:>5s} {:>7s} {:>7s} {:>7s}  evaluated on".format(*head))
    for r in rows:
        print(f"{r['model']:10s} {r['epochs']:6d} {r['minutes']:5.1f} {r['AP']:7.4f} "
              f"{r['AP50']:7.4f} {r['PCK@0.05']:7.4f}  {r['evaluated_on']}")  # fmt: skip


if __name__ == "__main__":
    main()
