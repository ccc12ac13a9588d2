"""Benchmark 1 of the rtpose issue: rtpose-n on synthetic people (COCO-17) at imgsz 320.

Generates a training set and a held-out test set (another seed), trains within a wall-time
budget (default 20 minutes) and evaluates the best checkpoint on the held-out set. Prints the
COCO statistics, PCK and the time taken.

    python benchmarks/train_synth_person.py [--minutes 20] [--train 3600] [--epochs 30]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--train", type=int, default=3600)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=30)  # shrunk to what fits the budget
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=8)  # more steps in a short budget
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--lr0", type=float, default=0.002)
    parser.add_argument("--out", default="runs/bench_synth_person")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    t0 = time.time()
    data = generate(
        SynthConfig("person", images=args.train, imgsz=640, seed=0),
        out / "data",
        val=0.1,
        workers=2,
    )
    test = generate(
        SynthConfig("person", images=args.test, imgsz=640, seed=1), out / "test", val=0.0, workers=2
    )
    t_data = time.time() - t0
    t1 = time.time()
    result = Model("rtpose-n").train(
        data=str(data),
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        workers=args.workers,
        project=str(out),
        name="train",
        exist_ok=True,
        time_limit=args.minutes,
        lr0=args.lr0,
        patience=100,
        warmup_epochs=1.0,  # of ~18 epochs: a 3-epoch warm-up would idle a sixth of them
    )
    t_train = time.time() - t1
    metrics = Model(result.best).val(
        test, split="train", imgsz=args.imgsz, config=EvalConfig(per_keypoint_ap=False)
    )
    summary = {
        "train_images": args.train,
        "epochs_run": result.epochs_run,
        "imgsz": args.imgsz,
        "train_minutes": round(t_train / 60, 2),
        "data_minutes": round(t_data / 60, 2),
        "test_images": args.test,
        **{k: round(v, 4) for k, v in metrics.coco.items()},
        "PCK@0.05": round(metrics.pck, 4),
        "EPE_px": round(metrics.epe, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"rtpose-n, synthetic people, imgsz {args.imgsz}: trained {result.epochs_run} epochs on "
        f"{args.train} images in {t_train / 60:.1f} min (budget {args.minutes:g} min)"
    )
    c = metrics.coco
    print(
        f"held-out test ({args.test} images): AP {c['AP']:.4f}, AP50 {c['AP50']:.4f}, "
        f"AP75 {c['AP75']:.4f}, AR {c['AR']:.4f}, PCK@0.05 {metrics.pck:.4f}, "
        f"EPE {metrics.epe:.2f} px"
    )
    print(
        f"minimum AP 0.5: {'met' if metrics.coco['AP'] >= 0.5 else 'NOT met'}; "
        f"target AP 0.8: {'met' if metrics.coco['AP'] >= 0.8 else 'not met'}"
    )


if __name__ == "__main__":
    main()
