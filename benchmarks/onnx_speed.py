"""PyTorch against ONNX Runtime on this CPU, in one run: rtpose at 640 and 320, batch 1 and 8,
network-only and end-to-end images/s, and how far their results differ.

- network-only: the forward pass on a random batch of the frames' letterboxed shape (640x480
  frames: 640x480 and 320x256): PyTorch as posekit runs it
  (BatchNorm folded, channels-last) and, for reference, the plain eager module; ONNX Runtime
  on the exported file (BatchNorm folded by the export, ORT's graph optimisations);
- end-to-end: `Model.predict` on in-memory 640x480 frames (letterbox, network, decoding,
  `Results`) with the checkpoint and with the `.onnx` file: the same pipeline, another backend.

Rounds alternate between the backends and the medians are printed, so that drift in the
machine's speed (large on shared cloud CPUs) does not favour one of them.

    python benchmarks/onnx_speed.py [--model best.pt] [--seconds 5]

Without --model a randomly initialised rtpose-n (COCO-17) is exported (rates do not depend on
the weights; the decoding work does, so pass a trained checkpoint for representative NMS).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from posekit import Model
from posekit.data.transforms import Letterbox
from posekit.predict.backends import OnnxBackend

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "openfield-mouse"


def rate(fn: Callable[[], object], batch: int, seconds: float) -> float:
    """Images/s of `fn` (one batch per call), after two warm-up calls."""
    fn()
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += batch
    return n / (time.perf_counter() - t0)


def frames(count: int) -> list[np.ndarray]:
    """640x480 frames: the openfield mouse when present, else rendered synthetic scenes."""
    paths = sorted(SHARED.glob("labeled-data/*/*.png"))[:count]
    if paths:
        return [cv2.imread(str(p)) for p in paths]
    from posekit.export.check import check_images

    return check_images(n=count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--seconds", type=float, default=3.0, help="Per network-only round.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds (median).")
    parser.add_argument("--images", type=int, default=16, help="Distinct frames (repeated).")
    parser.add_argument("--conf", type=float, default=0.25)
    args = parser.parse_args()
    torch.manual_seed(0)
    import onnxruntime

    model = Model(args.model) if args.model else Model("rtpose-n", "coco17")
    name = args.model or "rtpose-n (random weights)"
    print(f"model {name}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"onnxruntime {onnxruntime.__version__}")  # fmt: skip
    images = frames(args.images)
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        result = model.export(out=Path(tmp) / "m.onnx", imgsz=640)
        print(f"exported {result.describe()}\ncheck: {result.check.describe()}")  # type: ignore[union-attr]
        onnx_model = Model(result.path)
        backend = OnnxBackend(result.path, onnx_model.net, cpu)
        fused = model.inference_net.to(memory_format=torch.channels_last)
        eager = model.net.eval()
        print(f"\n{'input':>7} {'batch':>5} | network img/s: {'torch eager':>11} "
              f"{'torch posekit':>13} {'onnxruntime':>11} {'ort/torch':>9} | end-to-end "
              f"img/s: {'torch':>7} {'onnxruntime':>11} {'ort/torch':>9} | "
              f"{'max |dkp| px':>12}")  # fmt: skip
        h0, w0 = images[0].shape[:2]
        for size in (640, 320):
            lb = Letterbox.fit(w0, h0, size, model.net.input_stride)  # the frames' input shape
            for batch in (1, 8):
                x = torch.rand(batch, 3, *lb.shape)
                xc = x.contiguous(memory_format=torch.channels_last)
                opts = {"imgsz": size, "batch": batch, "conf": args.conf}
                shown = images * max(1, -(-max(64, 4 * batch) // len(images)))

                def run(m: Model) -> float:
                    m.predict(shown[:batch], **opts)  # noqa: B023
                    t0 = time.perf_counter()
                    m.predict(shown, **opts)  # noqa: B023
                    return len(shown) / (time.perf_counter() - t0)  # noqa: B023

                # rounds alternate between the backends; medians, so that drift in the
                # machine's speed does not favour one
                rates: dict[str, list[float]] = {k: [] for k in ("eager", "fused", "ort", "e_t",
                                                                 "e_o")}  # fmt: skip
                for _ in range(args.rounds):
                    with torch.inference_mode():
                        rates["eager"].append(rate(lambda: eager(x), batch, args.seconds))  # noqa: B023
                        rates["fused"].append(rate(lambda: fused(xc), batch, args.seconds))  # noqa: B023
                    rates["ort"].append(rate(lambda: backend(x), batch, args.seconds))  # noqa: B023
                    rates["e_t"].append(run(model))
                    rates["e_o"].append(run(onnx_model))
                med = {k: float(np.median(v)) for k, v in rates.items()}
                a = model.predict(images, **opts)
                b = onnx_model.predict(images, **opts)
                pairs = [(ra, rb) for ra, rb in zip(a, b, strict=True) if len(ra) == len(rb)]
                diffs = [np.abs(ra.keypoints.xy - rb.keypoints.xy).max()
                         for ra, rb in pairs if len(ra)]  # fmt: skip
                same = len(pairs) == len(a)
                kp = f"{max(diffs):.2g}" if diffs else "no dets"
                shape = f"{lb.shape[1]}x{lb.shape[0]}"
                print(f"{shape:>7} {batch:>5} | {'':>14} {med['eager']:>11.2f} "
                      f"{med['fused']:>13.2f} {med['ort']:>11.2f} "
                      f"{med['ort'] / med['fused']:>9.2f} | {'':>16} {med['e_t']:>7.2f} "
                      f"{med['e_o']:>11.2f} {med['e_o'] / med['e_t']:>9.2f} | {kp:>12}"
                      f"{'' if same else ' (counts differ)'}")  # fmt: skip


if __name__ == "__main__":
    main()
