"""Prediction speed: the pipeline against the network alone, stage by stage, per device.

1. Still images at batch 1 / 8 / 32 (and 64 / 256 on a GPU): images/s of `Model.predict`,
   network-only images/s on the same input shape, their ratio, and the milliseconds per image
   of each stage (letterbox, forward, post-processing = decode + NMS + keypoint snapping +
   keypoint NMS + `Results`), once at the usual `--conf` and once with many detections per
   image (`--many-conf`, default 0.001 with up to 300 kept): post-processing time per image must
   not grow with the batch.
2. Video: frames/s of `posekit predict` (decode, letterbox, network, results, and with --save
   also drawing and encoding) against the network-only rate on the same input shape.

    python benchmarks/predict_speed.py [--model best.pt] [--imgsz 640] [--device cuda]

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
from posekit.utils.device import select_device

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "openfield-mouse"


def network_rate(
    model: Model,
    shape: tuple[int, int],
    batch: int,
    device: torch.device,
    half: bool = False,
    seconds: float = 5.0,
) -> float:
    """Images/s of the forward pass alone on (batch, 3, H, W) inputs already on the device, of
    the network the predictor runs (BatchNorm folded, channels-last), like for like."""
    net = model.inference_net.to(device, memory_format=torch.channels_last)
    dtype = torch.float16 if half else torch.float32
    net = net.to(dtype)
    x = torch.rand(batch, 3, *shape, device=device, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(3):
            net(x)
        sync()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            net(x)
            n += batch
        sync()
    net.float()
    return n / (time.perf_counter() - t0)


def still_images(
    model: Model, images: list[np.ndarray], batch: int, **options: object
) -> tuple[float, dict[str, float], float]:
    """(images/s, mean ms per image of each stage, detections per image) of `model.predict`
    on in-memory arrays (a warm-up batch first)."""
    model.predict(images[:batch], batch=batch, **options)
    t0 = time.perf_counter()
    results = model.predict(images, batch=batch, **options)
    total = time.perf_counter() - t0
    stages = {k: float(np.mean([r.speed[k] for r in results])) for k in results[0].speed}
    return len(images) / total, stages, float(np.mean([len(r) for r in results]))


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


def video_rates(model: Model, args: argparse.Namespace, shape: tuple[int, int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        video = clip(args.video, args.frames, Path(tmp) / "clip.mp4")
        n = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
        net = network_rate(model, shape, 1, torch.device("cpu"), seconds=10.0)
        print(f"\nvideo ({n} frames of {args.video.name}), network-only {net:.2f} frames/s:")
        ck = args.model
        if ck is None:
            from posekit.engine.checkpoint import save_checkpoint

            ck = str(save_checkpoint(Path(tmp) / "random.pt", model.net))
        for save in (False, True):
            t0 = time.perf_counter()
            rc = cli_main(["predict", "--model", ck, "--source", str(video),
                           "--imgsz", str(args.imgsz), "--conf", str(args.conf),
                           "--save" if save else "--no-save", "--project", tmp,
                           "--name", f"save{int(save)}"])  # fmt: skip
            fps = n / (time.perf_counter() - t0)
            assert rc == 0
            print(f"posekit predict {'--save   ' if save else '--no-save'}: {fps:6.2f} frames/s"
                  f" = {fps / net:6.1%} of network-only")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="A checkpoint (default: random rtpose-n).")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--images", type=int, default=64, help="Images per measurement.")
    parser.add_argument("--batches", default=None, help="e.g. 1,8,32 (default per device).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true", help="fp16 on CUDA (the default there).")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--many-conf", type=float, default=0.001)
    parser.add_argument("--video", type=Path, default=SHARED / "videos" / "m3v1mp4.mp4")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = select_device(args.device)
    model = Model(args.model) if args.model else Model("rtpose-n", "coco17")
    name = args.model or "rtpose-n (random weights)"
    print(f"model {name}, imgsz {args.imgsz}, device {device}, "
          f"torch {torch.__version__} threads {torch.get_num_threads()}")  # fmt: skip

    frames = sorted(str(p) for p in SHARED.glob("labeled-data/*/*.png"))
    if frames:
        images = [cv2.imread(f) for f in frames[: args.images]]
    else:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(args.images)]
    while len(images) < args.images:
        images += images[: args.images - len(images)]
    h, w = images[0].shape[:2]
    lb = Letterbox.fit(w, h, args.imgsz, model.net.input_stride)
    gpu = device.type == "cuda"
    batches = ([int(b) for b in args.batches.split(",")] if args.batches
               else [1, 8, 32, 64, 256] if gpu else [1, 8, 32])  # fmt: skip
    half = args.half or gpu
    extra: dict[str, object] = {"half": half} if gpu else {}
    print(f"\nstill images ({len(images)} {w}x{h} arrays -> {lb.shape[1]}x{lb.shape[0]} input"
          f"{', fp16' if half else ''}), ms per image by stage:")  # fmt: skip
    print(f"{'conf':>6} {'batch':>5} {'det/img':>8} {'letterbox':>10} {'forward':>8} "
          f"{'post':>7} {'pipeline img/s':>15} {'network img/s':>14} {'ratio':>7}")  # fmt: skip
    for batch in batches:
        net = network_rate(model, lb.shape, batch, device, half)
        for conf in (args.conf, args.many_conf):
            shown = images * max(1, -(-batch * 2 // len(images)))  # at least two batches
            rate, st, det = still_images(model, shown, batch, imgsz=args.imgsz, conf=conf,
                                         device=str(device), **extra)  # fmt: skip
            print(f"{conf:>6} {batch:>5} {det:>8.1f} {st['preprocess']:>10.2f} "
                  f"{st['inference']:>8.2f} {st['postprocess']:>7.2f} {rate:>15.2f} "
                  f"{net:>14.2f} {rate / net:>7.1%}")  # fmt: skip

    if half:  # fp16 against fp32 on the same frames, after decoding
        kw = {"imgsz": args.imgsz, "conf": args.conf, "device": str(device), "batch": 8}
        a = model.predict(images, half=False, **kw)
        b = model.predict(images, half=True, **kw)
        pairs = [(ra, rb) for ra, rb in zip(a, b, strict=True) if len(ra) == len(rb) and len(ra)]
        px = max((float(np.abs(ra.keypoints.xy - rb.keypoints.xy).max()) for ra, rb in pairs),
                 default=float("nan"))  # fmt: skip
        print(f"\nfp16 vs fp32: {len(pairs)}/{len(a)} frames with the same detections, "
              f"keypoints max |diff| {px:.3g} px")  # fmt: skip

    if gpu or not args.video.is_file():
        print("\nvideo skipped" + ("" if gpu else f": {args.video} not found"))
        return
    video_rates(model, args, lb.shape)


if __name__ == "__main__":
    main()
