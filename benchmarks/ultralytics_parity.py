"""Ultralytics files in posekit: parity and speed against Ultralytics itself, in one run.

For each architecture and size asked for, the reference environment (`make reference`) builds
the model from Ultralytics' YAML with conditioned random weights, saves the published file and
records its per-location outputs and `predict` detections (tests/reference/
ultralytics_reference.py); posekit then loads the file and the table shows the largest
difference of the raw outputs (cells / probabilities) and how the detections agree (count,
largest box and keypoint difference in pixels). With `--speed`, the same 640x480 frames go
through `Model(file)` (PyTorch, and ONNX Runtime through an export) and through Ultralytics'
own `predict`, one image per call, on this machine's CPU.

    python benchmarks/ultralytics_parity.py --models yolo11n-pose yolo26n-pose --speed
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from posekit import Model
from posekit.data.synth.generator import SynthConfig, render

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "reference" / "ultralytics_reference.py"
SIZES = [f"{v}{s}-pose" for v in ("yolov8", "yolo11", "yolo26") for s in "nsmlx"]


def reference_python() -> str:
    default = Path.home() / ".cache/posekit-test/ultralytics-8.4.190/bin/python"
    path = os.environ.get("POSEKIT_ULTRALYTICS_PYTHON", str(default))
    if not Path(path).is_file():
        sys.exit("no Ultralytics reference environment: run `make reference`")
    return path


def raw_difference(model: Model, ref: dict, name: str, branch: str) -> float:
    """Largest difference over locations, in the head's raw units."""
    with torch.no_grad():
        out = model.inference_net(torch.from_numpy(ref["input"]))
    s = out.strides.numpy()[:, None]
    diffs = [
        np.abs(out.boxes[0].numpy() - ref[f"raw_{branch}_boxes"]) / s,
        np.abs(out.cls_logits[0].sigmoid().numpy() - ref[f"raw_{branch}_scores"]),
    ]
    if f"raw_{branch}_keypoints" in ref:
        kp = ref[f"raw_{branch}_keypoints"]
        per = s[:, :, None] * (1 if "26" in name else 2)
        diffs.append(np.abs(out.keypoints[0].numpy() - kp[..., :2]) / per)
    return max(float(d.max()) for d in diffs)


def detections(model: Model, ref: dict, frames: list, branch: str) -> tuple[str, float, float]:
    """('ours/theirs' counts, largest box and keypoint differences in px) over the frames."""
    counts, box, kpt = [], 0.0, 0.0
    for i, r in enumerate(model.predict(frames)):
        rb, rc = ref[f"det{i}_{branch}_boxes"], ref[f"det{i}_{branch}_classes"]
        counts.append(f"{len(r)}/{len(rb)}")
        if len(r) != len(rb) or not len(rb):
            continue
        d = np.abs(rb[:, None] - r.boxes.xyxy[None]).max(-1) + 1e6 * (rc[:, None] != r.boxes.cls)
        j = d.argmin(1)
        box = max(box, float(np.abs(r.boxes.xyxy[j] - rb).max()))
        if f"det{i}_{branch}_keypoints" in ref:
            h, w = frames[i].shape[:2]
            xy = r.keypoints.data[j][..., :2].clip(0, [w, h])
            kpt = max(kpt, float(np.abs(xy - ref[f"det{i}_{branch}_keypoints"][..., :2]).max()))
    return " ".join(counts), box, kpt


def images_per_second(run, frames: list, repeats: int) -> float:
    run(frames[0])
    start = time.perf_counter()
    for _ in range(repeats):
        for f in frames:
            run(f)
    return repeats * len(frames) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=SIZES)
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="ultralytics-parity-"))
    scene = render(SynthConfig(kind="person", imgsz=640, seed=3), 0).image
    paths = [out / "img0.png", out / "img1.png"]
    cv2.imwrite(str(paths[0]), scene)
    cv2.imwrite(str(paths[1]), np.ascontiguousarray(scene[:, ::-1]))
    frames = [cv2.imread(str(p)) for p in paths]
    env = {**os.environ, "YOLO_CONFIG_DIR": str(out / "settings"), "YOLO_OFFLINE": "1"}
    cmd = [reference_python(), str(SCRIPT), str(out), *map(str, paths), "--models", *args.models]
    if args.speed:
        cmd += ["--time", str(args.repeats)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    theirs = dict(re.findall(r"^(\S+): ultralytics predict ([\d.]+) img/s", done.stdout, re.M))
    print(
        f"{'model':14} {'branch':9} {'max raw diff':>12} {'detections':>12} "
        f"{'box px':>8} {'kpt px':>8}"
    )
    for name in args.models:
        ref = dict(np.load(out / f"{name}.npz"))
        branches = ["one2many", "one2one"] if "raw_one2one_boxes" in ref else ["one2many"]
        for branch in branches:
            model = Model(out / f"{name}-release.pt", one2one=branch == "one2one")
            raw = raw_difference(model, ref, name, branch)
            counts, box, kpt = detections(model, ref, frames, branch)
            print(f"{name:14} {branch:9} {raw:12.2e} {counts:>12} {box:8.4f} {kpt:8.4f}")
    if not args.speed:
        return
    print(
        f"\nspeed on 640x480 frames, one per call, {torch.get_num_threads()} threads "
        "(images/s; Ultralytics runs NMS, so posekit is timed on the same branch)"
    )
    for name in args.models:
        model = Model(out / f"{name}-release.pt", one2one=False)
        ours = images_per_second(lambda f, m=model: m.predict(f), frames, args.repeats)
        onnx = Model(model.export("onnx", out=out / f"{name}.onnx", check=False).path)
        ort = images_per_second(lambda f, m=onnx: m.predict(f), frames, args.repeats)
        ref = float(theirs.get(name, "nan"))
        print(
            f"{name:14} posekit {ours:6.2f}  posekit+onnxruntime {ort:6.2f}  ultralytics "
            f"{ref:6.2f}  ratio {ours / ref:5.2f}x / {ort / ref:5.2f}x"
        )


if __name__ == "__main__":
    main()
