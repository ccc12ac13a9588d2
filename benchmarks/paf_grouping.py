"""pafpose's grouping and its cost in crowds.

1. Recovery: each image's ground truth drawn as pafpose's own training targets (heatmaps and
   part affinity fields at the output stride), decoded by the family's grouping; a labelled
   person counts as recovered when a grouped person matches it with OKS >= 0.9 (each grouped
   person used once).
2. Grouping time per image for 1, 5, 10, 20 and 40 people (targets drawn the same way).
3. Cost in crowds: `Model.predict` time per image with 1 and with 20 people, pafpose-s (one
   network pass, then the grouping) against heatpose-s top-down (one crop per person, given
   the people's boxes, as a detector would), both untrained (the network's cost does not depend
   on its weights; pafpose's grouping is timed on real maps in part 2).

    python benchmarks/paf_grouping.py [--data DIR] [--images 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from posekit import Model
from posekit.data.formats import load_splits
from posekit.data.synth import SynthConfig, generate
from posekit.models import create
from posekit.models.base import Targets
from posekit.models.pafpose.grouping import group_people
from posekit.models.pafpose.targets import draw_targets
from posekit.ops.oks import oks_pairwise
from posekit.schema import get_schema
from posekit.track.synth_motion import figure

COCO = get_schema("coco17")


def targets_of(people: np.ndarray, boxes: np.ndarray) -> Targets:
    m = len(people)
    return Targets(torch.tensor(boxes, dtype=torch.float32)[None],
                   torch.zeros(1, m, dtype=torch.long),
                   torch.tensor(people, dtype=torch.float32)[None],
                   torch.ones(1, m, dtype=torch.bool))  # fmt: skip


def group(net, people: np.ndarray, boxes: np.ndarray, size: tuple[int, int]):  # type: ignore[no-untyped-def]
    """Targets drawn from the people, then the grouping: (people (N, K, 3) in pixels, seconds
    of the grouping alone)."""
    cfg = net.config
    d = draw_targets(targets_of(people, boxes), net.limbs, net.num_keypoints, size, cfg.stride,
                     cfg.sigma, cfg.limb_width)  # fmt: skip
    t0 = time.perf_counter()
    found = group_people(d.heat[0], d.paf[0], net.limbs, cfg.grouping())
    seconds = time.perf_counter() - t0
    kp = found.keypoints.clone()
    kp[..., :2] = (kp[..., :2] + 0.5) * cfg.stride
    return kp, seconds


def recovered(found: torch.Tensor, gt: np.ndarray, areas: np.ndarray) -> int:
    """Labelled people matched by a grouped person with OKS >= 0.9 (greedy by OKS)."""
    if len(found) == 0 or len(gt) == 0:
        return 0
    g = torch.tensor(gt, dtype=torch.float32)
    n, m = len(found), len(g)
    pred = found[:, None, :, :2].expand(n, m, -1, -1)
    vis = (g[None, :, :, 2] > 0).expand(n, m, -1) & (found[:, None, :, 2] > 0)
    oks = oks_pairwise(pred, g[None, :, :, :2].expand(n, m, -1, -1),
                       (g[None, :, :, 2] > 0).expand(n, m, -1),
                       torch.tensor(areas, dtype=torch.float32)[None].expand(n, m),
                       torch.tensor(COCO.sigmas))  # fmt: skip
    oks = torch.where(vis.any(-1), oks, 0)
    hits = 0
    while oks.numel() and float(oks.max()) >= 0.9:
        i, j = divmod(int(oks.argmax()), m)
        hits += 1
        oks[i, :] = -1
        oks[:, j] = -1
    return hits


def crowd(n: int, rng: np.random.Generator, w: int = 640, h: int = 480):  # type: ignore[no-untyped-def]
    """n standing people at random places and sizes: keypoints (n, 17, 3), boxes (n, 4)."""
    kps = []
    for _ in range(n):
        height = rng.uniform(80, 220)
        hip = (rng.uniform(0.1, 0.9) * w, rng.uniform(0.35, 0.75) * h)
        kps.append(figure(hip, height, rng.uniform(120, 178)))
    kp = np.stack(kps)
    kp[..., 2] = 2
    boxes = np.concatenate([kp[..., :2].min(1) - 5, kp[..., :2].max(1) + 5], 1)
    return kp, boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="A dataset (default: synthetic).")
    parser.add_argument("--images", type=int, default=200, help="Synthetic images without --data.")
    parser.add_argument("--repeat", type=int, default=20, help="Timed runs per crowd size.")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    net = create("pafpose-s", COCO)

    # 1. recovery of labelled people from their own targets
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = generate(SynthConfig("person", images=args.images, imgsz=640, seed=11),
                            Path(tmp) / "people", val=0.0)  # fmt: skip
        splits = load_splits(data)
        total = found_total = 0
        for ds in splits.values():
            by_image = ds.annotations_by_image()
            for im in ds.images:
                anns = [a for a in by_image.get(im.id, []) if not a.iscrowd and a.num_keypoints > 0]
                if not anns:
                    continue
                gt = np.array([a.keypoints for a in anns], dtype=np.float64).reshape(
                    len(anns), -1, 3
                )
                boxes = np.array([[*a.bbox[:2], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]]
                                  for a in anns])  # fmt: skip
                stride = net.config.stride
                size = (int(np.ceil(im.height / stride)), int(np.ceil(im.width / stride)))
                people, _ = group(net, gt, boxes, size)
                areas = np.array([a.area if a.area else a.bbox[2] * a.bbox[3] for a in anns])
                found_total += recovered(people, gt, areas)
                total += len(anns)
    where = data if args.data else "synthetic people"
    print(f"1. recovered {found_total} of {total} labelled people (OKS >= 0.9) from their own "
          f"targets at stride {net.config.stride} ({where})")  # fmt: skip

    # 2. grouping time against the crowd
    rng = np.random.default_rng(0)
    size = (60, 80)  # a 640 x 480 frame at stride 8
    line, grouping = [], {}
    for n in (1, 5, 10, 20, 40):
        times = []
        for _ in range(args.repeat):
            kp, boxes = crowd(n, rng)
            times.append(group(net, kp, boxes, size)[1])
        grouping[n] = float(np.median(times))
        line.append(f"{n}: {1000 * grouping[n]:.1f} ms")
    print("2. grouping per image (median), people: " + ", ".join(line))

    # 3. Model.predict per image, 1 vs 20 people
    torch.set_num_threads(torch.get_num_threads())
    bottom_up = Model("pafpose-s")
    top_down = Model("heatpose-s")
    img = np.full((480, 640, 3), 127, np.uint8)
    rows = {}
    for n in (1, 20):
        _, boxes = crowd(n, np.random.default_rng(n))
        for name, m, kw in (("pafpose-s", bottom_up, {}), ("heatpose-s", top_down,
                                                           {"boxes": boxes})):  # fmt: skip
            m.predict(img, imgsz=640, **kw)  # warm-up
            t0 = time.perf_counter()
            for _ in range(5):
                m.predict(img, imgsz=640, **kw)
            rows[(name, n)] = (time.perf_counter() - t0) / 5
    # the untrained pafpose finds nobody on the empty frame: add the grouping of real maps
    one = rows[("pafpose-s", 1)] + grouping[1]
    twenty = rows[("pafpose-s", 20)] + grouping[20]
    print(f"3. pafpose-s: {1000 * one:.0f} ms with 1 person, {1000 * twenty:.0f} ms with 20 "
          f"(20/1 = {twenty / one:.2f}x; predict {1000 * rows[('pafpose-s', 1)]:.0f} ms + "
          f"grouping of 1 / 20 people's maps {1000 * grouping[1]:.1f} / "
          f"{1000 * grouping[20]:.1f} ms)")  # fmt: skip
    one, twenty = rows[("heatpose-s", 1)], rows[("heatpose-s", 20)]
    print(f"   heatpose-s top-down (boxes given): {1000 * one:.0f} ms with 1 person, "
          f"{1000 * twenty:.0f} ms with 20 (20/1 = {twenty / one:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
