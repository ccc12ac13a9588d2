"""Benchmark 2 of the rtpose issue (and benchmark 1 of the RTMPose issue): the real
openfield-mouse data (DeepLabCut, 116 frames).

Converts ../shared/data/openfield-mouse, splits the frames 50/50 with a fixed seed, trains a
model from scratch (rtpose-n by default; any registered model with --model, e.g. vitpose-s)
within a wall-time budget (default 30 minutes), and reports the test error as DeepLabCut does
(mean Euclidean distance in pixels over the labelled keypoints of the test frames), PCK@0.05
and OKS AP. The last weights are evaluated: the test frames are never used to choose a
checkpoint. A top-down model trains in single-subject mode (one mouse per frame: whole
frames at 512x384, no detector) unless --no-single-subject, which trains it on instance crops
and evaluates it on the ground-truth boxes and, with --detector (an rtpose checkpoint, e.g.
this script's own rtpose-n run), on the detector's boxes.

    python benchmarks/train_mouse.py [--model rtpose-n] [--minutes 30] [--imgsz 512]
    python benchmarks/train_mouse.py --model rtmpose-s --out runs/bench_mouse_rtmpose
    python benchmarks/train_mouse.py --model vitpose-s --out runs/bench_mouse_vitpose \
        --detector runs/bench_mouse/train/weights/last.pt
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from posekit import Model
from posekit.data import convert, split_on_disk
from posekit.eval import EvalConfig

MOUSE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "openfield-mouse"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=MOUSE)
    parser.add_argument("--model", default="rtpose-n")
    parser.add_argument("--detector", default=None, help="Top-down models: detector checkpoint.")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--epochs", type=int, default=1000)  # shrunk to what fits the budget
    parser.add_argument("--imgsz", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr0", type=float, default=None, help="Default: the trainer's.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--single-subject",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Top-down models: whole frames (default, from the data) or crops.",
    )
    parser.add_argument("--out", default="runs/bench_mouse")
    args = parser.parse_args()
    if not (args.source / "config.yaml").is_file():
        raise SystemExit(f"mouse data not found at {args.source}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    data, _ = convert(args.source, out / "data", to="coco", link_images=False)
    split_on_disk(data, val=0.0, test=0.5, seed=args.seed)  # train / test, 58 frames each
    t0 = time.time()
    result = Model(args.model).train(
        data=str(data),
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        workers=1,
        project=str(out),
        name="train",
        exist_ok=True,
        time_limit=args.minutes,
        val=False,
        degrees=30.0,  # as DeepLabCut's default augmentation; see the closing note
        scale=0.3,
        translate=0.1,
        flip=0.5,
        warmup_epochs=5.0,
        seed=args.seed,
        single_subject=args.single_subject,
        **({"lr0": args.lr0} if args.lr0 else {}),
    )
    minutes = (time.time() - t0) / 60
    m = Model(result.last).val(data, split="test", imgsz=args.imgsz, config=EvalConfig())
    report(args, result, minutes, m, out, "")
    net = Model(result.last).net
    if args.detector and net.input_mode.takes_boxes:
        md = Model(result.last, detector=args.detector).val(data, split="test",
                                                            config=EvalConfig())  # fmt: skip
        report(args, result, minutes, md, out, "_detector_boxes")


def report(args, result, minutes: float, m, out: Path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    boxes = {"": "", "_detector_boxes": f", boxes of {args.detector}"}[suffix]
    net = Model(result.last).net
    if suffix == "" and net.single_subject:
        h, w = net.config.input_size
        boxes = f", single-subject: whole frames at {w}x{h}"
    elif suffix == "" and net.input_mode.per_instance:
        boxes = ", ground-truth boxes"
    summary = {
        "train_frames": 58,
        "test_frames": m.counts["images"],
        "epochs_run": result.epochs_run,
        "train_minutes": round(minutes, 2),
        "imgsz": args.imgsz,
        "test_error_px": round(m.epe, 3),
        "test_error_px_pcutoff0.6": round(m.epe_pcutoff, 3),
        "PCK@0.05": round(m.pck, 4),
        "AP": round(m.coco["AP"], 4),
        "AP50": round(m.coco["AP50"], 4),
        "unmatched_test_animals": m.counts["unmatched"],
        "per_keypoint_PCK": dict(
            zip(m.keypoint_names, [round(x, 4) for x in m.per_keypoint_pck], strict=True)
        ),
    }
    (out / f"summary{suffix}.json").write_text(json.dumps(summary, indent=2))
    print(
        f"{args.model} from scratch on openfield-mouse (58 train / {m.counts['images']} test "
        f"frames, imgsz {args.imgsz}{boxes}): {result.epochs_run} epochs in {minutes:.1f} min"
    )
    print(
        f"test error {m.epe:.2f} px (DeepLabCut's measure; {m.epe_pcutoff:.2f} px with p-cutoff "
        f"0.6), PCK@0.05 {m.pck:.4f}, OKS AP {m.coco['AP']:.4f} (AP50 {m.coco['AP50']:.4f}); "
        f"{m.counts['unmatched']} test animals without a detection"
    )
    print(
        f"goal 2.0 px: {'met' if m.epe <= 2.0 else 'not met'} (DeepLabCut's ImageNet-pretrained "
        "ResNet-50: 2.01 px)"
    )


if __name__ == "__main__":
    main()
