"""Reference files and outputs from Ultralytics itself, for posekit's parity tests.

Run by the tests with the Python of the separate Ultralytics environment (`make reference`),
never imported by posekit: for each requested model it builds the network from Ultralytics'
own YAML with random weights (offline), conditions them (BatchNorm statistics from the given
images; class biases shifted so that at most about 1 % of locations pass conf 0.25 in an
image, so that detections are not ties), saves the file in the published layouts
(`YOLO.save`, then `strip_optimizer` for the release layout), loads it back with
Ultralytics and writes, per model, an `.npz` of:

- `input`: a letterboxed image tensor, and `raw_<branch>`: what the head decodes for it per
  location (xyxy boxes, class scores, keypoints and their scores, input pixels);
- `det<i>_<branch>_*`: `YOLO.predict`'s detections on image i (boxes, scores, classes,
  keypoints).

PyPI's torchvision cannot be imported beside the CPU torch: a stand-in (a version for
Ultralytics' metadata check and a plain-torch `ops.nms`) is put on the path first.

Usage: python ultralytics_reference.py OUT_DIR IMAGE [IMAGE ...] --models yolo11n-pose ...
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

STAND_IN = {
    "torchvision/__init__.py": '__version__ = "0.28.0"\nfrom torchvision import ops  # noqa\n',
    "torchvision/ops.py": '''
import torch


def nms(boxes, scores, iou_threshold):
    """Greedy NMS: indices kept, by decreasing score (torchvision's contract)."""
    order = scores.argsort(descending=True)
    keep = []
    while order.numel():
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        rest = boxes[order[1:]]
        lt = torch.maximum(boxes[i, :2], rest[:, :2])
        rb = torch.minimum(boxes[i, 2:], rest[:, 2:])
        inter = (rb - lt).clamp(min=0).prod(1)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        iou = inter / (area(boxes[i]) + area(rest) - inter)
        order = order[1:][iou <= iou_threshold]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long)
''',
    "torchvision-0.28.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: torchvision\n"
    "Version: 0.28.0\n",
}


def install_stand_in() -> None:
    root = Path(tempfile.mkdtemp(prefix="tv-stand-in-"))
    for name, text in STAND_IN.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    sys.path.insert(0, str(root))


def yaml_for(name: str) -> str:
    """'yolo11n-pose' -> 'yolo11n-pose.yaml' (Ultralytics reads the scale from the name)."""
    return f"{name}.yaml"


def condition(model, images, torch) -> None:
    """BatchNorm statistics from `images` (cumulative average over one train-mode pass), then
    each branch's class bias shifted so that about 1 % of locations score above 0.25."""
    net = model.model
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        net(images)
    net.eval()
    head = net.model[-1]
    with torch.no_grad():
        _, preds = net(images)
    e2e = getattr(head, "one2one_cv2", None) is not None
    branches = {"one2many": head.one2many, **({"one2one": head.one2one} if e2e else {})}
    for branch, parts in branches.items():
        raw = preds[branch] if "one2one" in preds else preds
        best = raw["scores"].amax(1).float()  # (B, A): each location's best class
        # about 1 % of the locations pass in the image that scores highest (fewer elsewhere:
        # no image reaches max_det)
        shift = torch.logit(torch.tensor(0.25)) - torch.quantile(best, 0.99, dim=1).max()
        for seq in parts["cls_head"]:
            seq[-1].bias.data += shift


def per_location(head, raw, torch):
    """(A, 4) xyxy boxes, (A, nc) scores, (A, K, 3) keypoints of image 0 from one branch."""
    y = head._inference(raw)[0].T  # (A, 4 + nc + K*dims)
    box = y[:, :4]
    if not head.end2end:  # the one-to-many decode gives centre, size
        box = torch.cat([box[:, :2] - box[:, 2:] / 2, box[:, :2] + box[:, 2:] / 2], 1)
    nc = head.nc
    out = {"boxes": box, "scores": y[:, 4 : 4 + nc]}
    if hasattr(head, "kpt_shape"):
        out["keypoints"] = y[:, 4 + nc :].reshape(y.shape[0], *head.kpt_shape)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument(
        "--time",
        type=int,
        default=0,
        help="also time YOLO.predict on the "
        "images this many times over (printed as images per second)",
    )
    parser.add_argument(
        "--planted",
        type=Path,
        help="also write a copy of the first model's "
        "file with a global that runs a command when unpickled normally "
        "(creating this path)",
    )
    args = parser.parse_args()
    install_stand_in()

    import cv2
    import numpy as np
    import torch
    from ultralytics import YOLO
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils.torch_utils import strip_optimizer

    torch.manual_seed(0)
    frames = [cv2.imread(str(p)) for p in args.images]
    boxed = [LetterBox((args.imgsz, args.imgsz), auto=True, stride=32)(image=f) for f in frames]
    x = torch.from_numpy(np.stack(boxed[:1])[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255
    calib = torch.from_numpy(np.stack(boxed)[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        model = YOLO(yaml_for(name))
        condition(model, calib, torch)
        saved = args.out / f"{name}.pt"
        model.save(saved)
        strip_optimizer(saved, args.out / f"{name}-release.pt")
        ref = YOLO(args.out / f"{name}-release.pt")
        result: dict[str, np.ndarray] = {"input": x.numpy()}
        net = ref.model.float().eval()
        head = net.model[-1]
        with torch.no_grad():
            _, preds = net(x)
        branches = ["one2many", "one2one"] if "one2one" in preds else ["one2many"]
        for branch in branches:
            head.end2end = branch == "one2one"  # also picks the box decode (xyxy or xywh)
            raw = preds[branch] if "one2one" in preds else preds
            for k, v in per_location(head, raw, torch).items():
                result[f"raw_{branch}_{k}"] = v.numpy()
        for branch in branches:
            again = YOLO(args.out / f"{name}-release.pt")  # prediction fuses away a branch
            # Ultralytics 8.4 predicts with NMS by default (nms=None); nms=False selects the
            # one-to-one branch of end-to-end models
            found = again.predict(
                frames,
                conf=0.25,
                iou=0.7,
                max_det=300,
                verbose=False,
                nms=False if branch == "one2one" else None,
            )
            for i, r in enumerate(found):
                result[f"det{i}_{branch}_boxes"] = r.boxes.xyxy.numpy()
                result[f"det{i}_{branch}_scores"] = r.boxes.conf.numpy()
                result[f"det{i}_{branch}_classes"] = r.boxes.cls.numpy()
                if r.keypoints is not None:
                    result[f"det{i}_{branch}_keypoints"] = r.keypoints.data.numpy()
        np.savez(args.out / f"{name}.npz", **result)
        print(f"{name}: saved", flush=True)
        if args.time:
            timed = YOLO(args.out / f"{name}-release.pt")
            timed.predict(frames, verbose=False)  # warm-up
            start = time.perf_counter()
            for _ in range(args.time):
                for frame in frames:  # one image per call, as a video is read
                    timed.predict(frame, verbose=False)
            rate = args.time * len(frames) / (time.perf_counter() - start)
            print(f"{name}: ultralytics predict {rate:.2f} img/s", flush=True)
        if args.planted and name == args.models[0]:
            plant(args.out / f"{name}-release.pt", args.out / f"{name}-planted.pt", args.planted)


class Planted:
    """Unpickles to `os.system(command)`: what a hostile file hides beside a genuine model."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def plant(genuine: Path, out: Path, marker: Path) -> None:
    import torch

    data = torch.load(genuine, weights_only=False)
    data["train_args"] = {"callback": Planted(f"touch {marker}")}
    torch.save(data, out)


if __name__ == "__main__":
    main()
