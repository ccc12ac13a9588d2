"""Benchmark 3 of the top-down issue: ViTPose speed on this CPU, measured in one run.

1. Network only: crops/s of vitpose-s and vitpose-b at 256x192, batch 1 and 16 (float32,
   inference mode).
2. Pipeline with given boxes: crops/s of `Model.predict(image, boxes=...)` (crops, network,
   decoding, inverse), with and without the flip test (which runs the network twice).
3. End to end with a detector: images/s of `Model("vitpose-s", detector=rtpose-n)` on 640x480
   frames (the detector's own time included), with the boxes it found per image.

    python benchmarks/vitpose_speed.py [--detector rtpose.pt] [--images 8]

Without --detector a randomly initialised rtpose-n finds the boxes (its boxes are not
meaningful; the count per image is printed so that the rate can be read per crop).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from posekit import Model
from posekit.models import create


def rate(fn, n_items: int, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n_items / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default=None, help="A detector checkpoint (rtpose).")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--sizes", nargs="+", default=["s", "b"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for size in args.sizes:
        name = f"vitpose-{size}"
        net = create(name, "coco17").eval()
        for batch in (1, 16):
            x = torch.rand(batch, 3, 256, 192)

            def forward(x: torch.Tensor = x, net: torch.nn.Module = net) -> None:
                with torch.inference_mode():
                    net(x)

            print(f"{name} network, batch {batch:2d}: {rate(forward, batch):7.2f} crops/s")
        model = Model(name)
        model.net = net
        boxes = np.tile([[100.0, 50.0, 300.0, 450.0]], (16, 1))
        for flip in (False, True):

            def pipeline(
                flip: bool = flip, model: Model = model, boxes: np.ndarray = boxes
            ) -> None:
                model.predict(image, boxes=boxes, flip=flip, batch=1)

            print(f"{name} pipeline, 16 boxes, flip {'on ' if flip else 'off'}: "
                  f"{rate(pipeline, 16):7.2f} crops/s")  # fmt: skip
    det_model = Model(args.detector) if args.detector else Model("rtpose-n")
    # a random detector is given a fixed number of boxes per image (its 4 best locations)
    conf, max_det = (0.25, 300) if args.detector else (0.0, 4)

    def detector(images: list[np.ndarray]) -> list:  # type: ignore[type-arg]
        found = det_model.predict(images, conf=conf, max_det=max_det, imgsz=640)
        return [(r.boxes.xyxy, r.boxes.conf, r.boxes.cls) for r in found]

    frames = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(args.images)]
    found = [len(b) for b, _, _ in detector(frames)]
    top_down = Model("vitpose-s", detector=detector)

    def end_to_end() -> None:
        top_down.predict(frames, batch=len(frames))

    print(f"vitpose-s + {'trained' if args.detector else 'random'} rtpose-n detector, 640x480: "
          f"{rate(end_to_end, len(frames), repeats=1):6.2f} images/s "
          f"({np.mean(found):.1f} boxes per image, flip test on)")  # fmt: skip


if __name__ == "__main__":
    main()
