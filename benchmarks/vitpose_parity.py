"""Benchmark 1 of the top-down issue: posekit's ViTPose against the reference implementation
(Hugging Face transformers), for every published size's configuration with random weights.

For each of S / B / L / H (classic decoder) a randomly initialised `VitPoseForPoseEstimation`
is saved with its processor (offline) and loaded with `posekit.Model(folder)`; then, on a real
frame with three boxes (one sticking out of the image):
(a) the largest heatmap difference of the two networks on the processor's pixel values;
(b) the largest keypoint / score difference of posekit's decoder and transformers'
    `post_process_pose_estimation` on the same heatmaps;
(c) end to end (posekit's crops, network, decoding and inverse against the reference's):
    the share of keypoints within 1 px and the median distance.

    python benchmarks/vitpose_parity.py [--sizes s b l h]
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
from posekit.data.crops import from_crop
from posekit.models.heatmap_codec import decode_heatmaps, heatmap_to_input
from posekit.models.vitpose import SIZES
from posekit.predict.topdown import make_crops

FRAME = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "openfield-mouse"
         / "labeled-data" / "m4s1" / "img0010.png")  # fmt: skip
BOXES = np.array([[250.5, 150.25, 120.0, 200.0], [300.0, 200.0, 200.0, 100.0], [5, 7, 60, 90]])


def one_size(size: str, image: np.ndarray, folder: Path) -> str:
    import transformers

    cfg = SIZES[size]
    torch.manual_seed(0)
    bc = transformers.VitPoseBackboneConfig(
        hidden_size=cfg.embed_dim, num_hidden_layers=cfg.depth,
        num_attention_heads=cfg.num_heads, out_indices=[cfg.depth], layer_norm_eps=1e-6,
    )  # fmt: skip
    ref = transformers.VitPoseForPoseEstimation(
        transformers.VitPoseConfig(backbone_config=bc, num_labels=17, use_simple_decoder=False)
    ).eval()
    ref.save_pretrained(folder)
    processor = transformers.VitPoseImageProcessor()
    processor.save_pretrained(folder)
    ours = Model(folder)
    inputs = processor(image[..., ::-1].copy(), boxes=[BOXES.tolist()], return_tensors="pt")
    with torch.no_grad():
        out = ref(**inputs)
        heat = ours.net.head(ours.net.features(inputs["pixel_values"]))
    a = (heat - out.heatmaps).abs().max().item()
    expected = processor.post_process_pose_estimation(out, boxes=[BOXES.tolist()])[0]
    xyxy = np.c_[BOXES[:, :2], BOXES[:, :2] + BOXES[:, 2:]]
    xy, scores = decode_heatmaps(out.heatmaps)
    crops = make_crops([image], [xyxy], (256, 192), 1.25, ours.net.config.pixel_centre)
    kp = from_crop(heatmap_to_input(xy.double(), (256, 192), (64, 48)).numpy(), crops.matrices)
    b_xy = max(np.abs(kp[i] - e["keypoints"].numpy()).max() for i, e in enumerate(expected))
    b_s = max(np.abs(scores[i].numpy() - e["scores"].numpy()).max() for i, e in enumerate(expected))
    (r,) = ours.predict(image, boxes=xyxy, flip=False)
    err = np.stack([np.linalg.norm(r.keypoints.xy[i] - e["keypoints"].numpy(), axis=-1)
                    for i, e in enumerate(expected)])  # fmt: skip
    inside, border = err[:2], err[2]  # the third box sticks out of the image
    params = sum(p.numel() for p in ours.net.parameters()) / 1e6
    return (f"vitpose-{size} ({params:.1f} M): (a) heatmaps max |diff| {a:.2e}; (b) keypoints "
            f"{b_xy:.2e} px, scores {b_s:.2e}; (c) end to end, boxes inside the image: "
            f"{100 * (inside < 1).mean():.1f} % within 1 px (median {np.median(inside):.4f} px), "
            f"box across the border: {100 * (border < 1).mean():.1f} %")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["s", "b", "l", "h"])
    args = parser.parse_args()
    image = cv2.imread(str(FRAME)) if FRAME.is_file() else None
    if image is None:
        from posekit.data.synth import SynthConfig
        from posekit.data.synth.generator import render

        image = render(SynthConfig("person", imgsz=640, seed=1), 0).image
    print(f"torch {torch.__version__}, transformers {__import__('transformers').__version__}, "
          f"frame {FRAME.name if FRAME.is_file() else 'synthetic'}")  # fmt: skip
    for size in args.sizes:
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            line = one_size(size, image, Path(tmp))
        print(f"{line}  [{time.time() - t0:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
