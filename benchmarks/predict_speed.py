"""Prediction speed of rtpose on this CPU: the pipeline against the network alone.

1. Still images at batch 1 and 8: images/s of `Model.predict`, and the share of the time spent
   outside the network's forward pass (letterbox, decode, NMS, result building; goal < 10 %).
2. Video: frames/s of `posekit predict` (decode, letterbox, network, results, and with --save
   also drawing and encoding) against the network-only rate on the same input shape
   (goal >= 90 %, reached by decoding on a background thread).

    python benchmarks/predict_speed.py [--model best.pt] [--imgsz 640] [--frames 300]

Without --model a randomly initialised rtpose-n (COCO-17) is used; its detections are not
meaningful, so pass a trained checkpoint for representative NMS and drawing work.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from posekit import Model
from posekit.cli.main import main as cli_main
from posekit.data.transforms import Letterbox

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "openfield-mouse"


def network_rate(
    model: Model, shape: tuple[int, int], batch: int = 1, seconds: float = 10.0
) -> float:
    """Images/s of the forward pass alone on (batch, 3, H, W) inputs, of the network the
    predictor runs (BatchNorm folded, channels-last), so the comparison is like for like."""
    x = torch.rand(batch, 3, *shape).contiguous(memory_format=torch.channels_last)
    net = model.inference_net.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        net(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            net(x)
            n += batch
    return n / (time.perf_counter() - t0)


def still_images(
    model: Model, images: list[np.ndarray], imgsz: int, batch: int, conf: float
) -> tuple[float, float]:
    """(images/s, share of time outside the forward pass) of `model.predict` on arrays."""
    model.predict(images[:batch], imgsz=imgsz, batch=batch, conf=conf)  # warm-up
    t0 = time.perf_counter()
    results = model.predict(images, imgsz=imgsz, batch=batch, conf=conf)
    total = time.perf_counter() - t0
    forward = sum(r.speed["inference"] for r in results) / 1000
    return len(images) / total, 1 - forward / total


def clip(source: Path, frames: int, out: Path) -> Path:
    """The first `frames` frames of `source` as an mp4 (same size and fps)."""
    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    for _ in range(frames):
        ok, img = cap.read()
        if not ok:
            break
        writer.write(img)
    writer.release()
    cap.release()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="A checkpoint (default: random rtpose-n).")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--video", type=Path, default=SHARED / "videos" / "m3v1mp4.mp4")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Model(args.model) if args.model else Model("rtpose-n", "coco17")
    name = args.model or "rtpose-n (random weights)"
    print(f"model {name}, imgsz {args.imgsz}, torch threads {torch.get_num_threads()}")

    frames = sorted(str(p) for p in SHARED.glob("labeled-data/*/*.png"))
    if frames:
        images = [cv2.imread(f) for f in frames[: args.images]]
    else:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(args.images)]
    h, w = images[0].shape[:2]
    lb = Letterbox.fit(w, h, args.imgsz, model.net.input_stride)
    print(f"\nstill images ({w}x{h} arrays -> {lb.shape[1]}x{lb.shape[0]} input):")
    print(
        f"{'batch':>5} {'pipeline img/s':>15} {'network img/s':>14} {'outside forward':>16}"
        f" {'goal':>8}"
    )
    for batch in (1, 8):
        rate, outside = still_images(model, images, args.imgsz, batch, args.conf)
        net = network_rate(model, lb.shape, batch, 5.0)
        goal = "met" if batch != 1 or outside < 0.10 else "NOT met"
        print(
            f"{batch:>5} {rate:>15.2f} {net:>14.2f} {outside:>15.1%}"
            f" {goal if batch == 1 else '':>8}"
        )

    if not args.video.is_file():
        print(f"\nvideo skipped: {args.video} not found")
        return
    with tempfile.TemporaryDirectory() as tmp:
        video = clip(args.video, args.frames, Path(tmp) / "clip.mp4")
        n = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
        net = network_rate(model, lb.shape, 1, 10.0)
        print(f"\nvideo ({n} frames of {args.video.name}), network-only {net:.2f} frames/s:")
        ck = args.model
        if ck is None:
            from posekit.engine.checkpoint import save_checkpoint

            ck = str(save_checkpoint(Path(tmp) / "random.pt", model.net))
        for save in (False, True):
            t0 = time.perf_counter()
            rc = cli_main(
                [
                    "predict",
                    "--model",
                    ck,
                    "--source",
                    str(video),
                    "--imgsz",
                    str(args.imgsz),
                    "--conf",
                    str(args.conf),
                    "--save" if save else "--no-save",
                    "--project",
                    tmp,
                    "--name",
                    f"save{int(save)}",
                ]
            )
            fps = n / (time.perf_counter() - t0)
            assert rc == 0
            print(
                f"posekit predict {'--save   ' if save else '--no-save'}: {fps:6.2f} frames/s"
                f" = {fps / net:6.1%} of network-only (goal >= 90 %:"
                f" {'met' if fps / net >= 0.9 else 'NOT met'})"
            )


if __name__ == "__main__":
    main()
