"""Tracking the openfield mouse video end to end with a model trained on that dataset.

Runs `posekit track` on ../shared/data/openfield-mouse/videos/m3v1mp4.mp4 (2,330 frames) and
reports: frames/s against the network-only rate on the same input shape (goal >= 90 %), the
number of track ids over the whole video (goal: one), and the jitter of the snout (RMS
frame-to-frame displacement, and RMS second difference, which ignores steady motion) without
and with One Euro smoothing.

    python benchmarks/track_mouse.py --model runs/bench_mouse/train/weights/last.pt
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from posekit import Model
from posekit.cli.main import main as cli_main
from posekit.data.transforms import Letterbox
from predict_speed import network_rate  # the same network-only measure

VIDEO = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "openfield-mouse"
    / "videos"
    / "m3v1mp4.mp4"
)


def snout_series(path: Path, frames: int) -> tuple[np.ndarray, set[int], int]:
    """(frames, 2) snout positions of the best-scored track per frame (NaN where none),
    the set of track ids seen, and the number of frames with a tracked mouse."""
    xy = np.full((frames, 2), np.nan)
    best = np.full(frames, -1.0)
    ids: set[int] = set()
    for line in path.read_text().splitlines():
        e = json.loads(line)
        ids.add(e["track_id"])
        f = e["frame"]
        if e["confidence"] > best[f]:
            best[f] = e["confidence"]
            snout = next(k for k in e["keypoints"] if k["name"] == "snout")
            xy[f] = (snout["x"], snout["y"])
    return xy, ids, int((best >= 0).sum())


def jitter(xy: np.ndarray) -> tuple[float, float]:
    d1 = np.diff(xy, axis=0)
    d2 = np.diff(xy, n=2, axis=0)
    rms = lambda d: float(np.sqrt(np.nanmean((d**2).sum(-1))))  # noqa: E731
    return rms(d1), rms(d2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="A checkpoint trained on the mouse data.")
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--imgsz", type=int, default=None)
    args = parser.parse_args()
    model = Model(args.model)
    imgsz = args.imgsz or model.net.config.imgsz
    cap = cv2.VideoCapture(str(args.video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    shape = Letterbox.fit(w, h, imgsz, 32).shape
    net = network_rate(model, shape)
    print(
        f"{args.video.name}: {n} frames {w}x{h}; input {shape[1]}x{shape[0]}; "
        f"network-only {net:.2f} frames/s ({torch.get_num_threads()} threads)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"raw": ["--no-smooth", "--no-save"], "smoothed": ["--smooth", "--save"]}
        series = {}
        for name, flags in runs.items():
            t0 = time.perf_counter()
            rc = cli_main(
                [
                    "track",
                    "--model",
                    args.model,
                    "--source",
                    str(args.video),
                    "--imgsz",
                    str(imgsz),
                    "--save-jsonl",
                    f"{name}.jsonl",
                    "--project",
                    tmp,
                    "--name",
                    name,
                    *flags,
                ]
            )
            fps = n / (time.perf_counter() - t0)
            assert rc == 0
            xy, ids, tracked = snout_series(Path(tmp) / name / f"{name}.jsonl", n)
            series[name] = xy
            print(
                f"posekit track {' '.join(flags)}: {fps:.2f} frames/s = {fps / net:.1%} of "
                f"network-only (goal >= 90 %: {'met' if fps / net >= 0.9 else 'NOT met'}); "
                f"{len(ids)} track id(s) {sorted(ids)[:10]}, mouse tracked in {tracked}/{n} "
                f"frames"
            )
    for name, xy in series.items():
        d1, d2 = jitter(xy)
        print(
            f"snout jitter {name:>8}: RMS frame-to-frame {d1:.2f} px, RMS second difference "
            f"{d2:.2f} px"
        )
    r1, r2 = (jitter(series["smoothed"])[i] / jitter(series["raw"])[i] for i in (0, 1))
    print(f"smoothing: frame-to-frame x{r1:.2f}, second difference x{r2:.2f}")


if __name__ == "__main__":
    main()
