"""Top-down prediction: boxes -> crops -> network -> family decoder -> image keypoints.

Each step is a plain function over a whole batch of crops (from any number of images): the
crops of a batch are written into one array, the network runs once (on twice the crops with
the flip test), and the family's decoder and the inverse mapping are tensor operations over
all crops and keypoints; nothing here names a family.
Boxes come from the caller (one xyxy array per image), from a detector (any callable that
returns boxes per image, e.g. an rtpose `Model`), or are the whole image.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from posekit.data.crops import boxes_to_regions, crop_matrices, from_crop, warp_crops

#: A detector: images (BGR arrays) -> per image (boxes (N, 4) xyxy, scores (N,), classes (N,)).
Detector = Callable[[list[np.ndarray]], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]


@dataclass
class CropBatch:
    """Crops of several images: `pixels` (M, H, W, 3) BGR, `matrices` (M, 3, 3) image ->
    crop indices, `owner` (M,) index of the image each crop comes from."""

    pixels: np.ndarray
    matrices: np.ndarray
    owner: np.ndarray


def whole_image_boxes(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One box per image covering all of it (what top-down models use without boxes)."""
    return [np.array([[0.0, 0.0, im.shape[1], im.shape[0]]]) for im in images]


def make_crops(
    images: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    input_size: tuple[int, int],
    padding: float,
    pixel_centre: float = 0.5,
) -> CropBatch:
    """Crops for every box of every image into one array (aspect ratio of `input_size`
    (height, width), boxes grown by `padding`; `pixel_centre` as in `warp_crops`)."""
    h, w = input_size
    counts = [len(np.asarray(b).reshape(-1, 4)) for b in boxes]
    total = sum(counts)
    pixels = np.empty((total, h, w, 3), dtype=np.uint8)
    matrices = np.empty((total, 3, 3))
    start = 0
    for image, b, n in zip(images, boxes, counts, strict=True):
        if n == 0:
            continue
        centres, sizes = boxes_to_regions(np.asarray(b, dtype=np.float64).reshape(-1, 4),
                                          w / h, padding)  # fmt: skip
        m = crop_matrices(centres, sizes, input_size)
        warp_crops(image, m, input_size, out=pixels[start : start + n], pixel_centre=pixel_centre)
        matrices[start : start + n] = m
        start += n
    owner = np.repeat(np.arange(len(counts)), counts)
    return CropBatch(pixels, matrices, owner)


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(M, H, W, 3) BGR uint8 -> (M, 3, H, W) RGB float in 0..1."""
    rgb = np.ascontiguousarray(pixels[..., ::-1].transpose(0, 3, 1, 2))
    return torch.from_numpy(rgb).float().div_(255)


@torch.no_grad()
def predict_crops(
    net: torch.nn.Module,
    crops: CropBatch,
    classes: np.ndarray,
    *,
    device: torch.device,
    flip: bool,
    forward: Callable[[torch.Tensor], Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (M, K, 2) in image coordinates and their confidences (M, K) for a batch of
    crops: the network once (on the crops and their mirrors with `flip`, merged by the
    family's `merge_flip_test`), the family's `decode_crops`, then each crop's exact inverse.
    `forward` runs the network (default `net` itself; a prediction backend otherwise)."""
    if len(crops.pixels) == 0:  # no instance in any image of the batch
        k = net.num_keypoints
        return np.zeros((0, k, 2)), np.zeros((0, k))
    x = to_tensor(crops.pixels).to(device)
    run = forward or net
    if flip:
        cls = torch.as_tensor(classes, device=device, dtype=torch.long)
        out = net.merge_flip_test(run(torch.cat([x, x.flip(-1)])), cls)
    else:
        out = run(x)
    xy, scores = net.decode_crops(out)
    kp = from_crop(xy.cpu().double().numpy(), crops.matrices)
    return kp, scores.cpu().double().numpy()


def chunks_of_boxes(
    boxes: Sequence[np.ndarray], chunk: int
) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """The boxes of several images in runs of at most `chunk` boxes, in order: each run as
    (the indices of the images it touches, their boxes in it). Crops are made and run one
    run at a time, so a detector that returns 20,000 boxes for one image costs one run's
    memory, not 20,000 crops at once."""
    counts = np.array([len(b) for b in boxes], dtype=np.int64)
    owner = np.repeat(np.arange(len(boxes)), counts)
    flat = np.concatenate([np.asarray(b, np.float64).reshape(-1, 4) for b in boxes]) \
        if len(boxes) else np.zeros((0, 4))  # fmt: skip
    for a in range(0, len(flat), chunk):
        own, run = owner[a : a + chunk], flat[a : a + chunk]
        images = np.unique(own)
        yield [int(i) for i in images], [run[own == i] for i in images]


def predict_boxes(
    net: torch.nn.Module,
    images: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    classes: np.ndarray,
    *,
    chunk: int,
    device: torch.device,
    flip: bool,
    forward: Callable[[torch.Tensor], Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Keypoints (M, K, 2) and confidences (M, K) for every box of every image (M boxes in
    all, `classes` (M,)), crops made and run `chunk` at a time (`chunks_of_boxes`), with
    the seconds spent making crops and running the network."""
    cfg = net.config
    kps, confs, prep, infer = [], [], 0.0, 0.0
    start = 0
    for which, run in chunks_of_boxes(boxes, chunk):
        t0 = time.perf_counter()
        crops = make_crops([images[i] for i in which], run, cfg.input_size, cfg.box_padding,
                           cfg.pixel_centre)  # fmt: skip
        t1 = time.perf_counter()
        n = len(crops.pixels)
        kp, conf = predict_crops(net, crops, classes[start : start + n], device=device,
                                 flip=flip, forward=forward)  # fmt: skip
        prep, infer = prep + t1 - t0, infer + time.perf_counter() - t1
        kps.append(kp), confs.append(conf)
        start += n
    if not kps:
        k = net.num_keypoints
        return np.zeros((0, k, 2)), np.zeros((0, k)), prep, infer
    return np.concatenate(kps), np.concatenate(confs), prep, infer
