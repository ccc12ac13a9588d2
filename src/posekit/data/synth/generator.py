"""Deterministic synthetic keypoint datasets: `posekit data synth`.

Image i of a dataset depends only on (seed, i), so any image can be regenerated alone and
generation can be spread over processes without changing the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posekit.data.dataset import Annotation, Category, ImageInfo, KeypointDataset
from posekit.data.split import split_dataset
from posekit.data.synth.background import Backdrop
from posekit.data.synth.figures import Figure, sample_arm, sample_person
from posekit.data.synth.render import draw_labels, paste, texture
from posekit.schema import KeypointSchema, get_schema
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError
from posekit.utils.outputs import claim_output

KINDS = ("person", "arm")
#: Figures with fewer visible pixels than this are not annotated (nothing of them is seen).
MIN_VISIBLE_PIXELS = 24
OCCLUDER = 255


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Sizes are in pixels; `imgsz` is the image width (height = 3/4 of it)."""

    kind: str = "person"  # or "arm"
    images: int = ranged(100, 1, 10_000_000)
    # at most 4096: one image of that width is already a 300 MB float64 background
    imgsz: int = ranged(640, 64, 4096)
    seed: int = 0
    min_height: float = ranged(40.0, 1, 4096)  # smallest figure, px
    # largest figure, as a fraction of the image height
    max_height_frac: float = ranged(0.95, 0.01, 1)
    # figures per image, drawn uniformly from min_figures..max_figures; the defaults (0-4
    # people, 0-3 arms) keep the generator's own mix, which favours 1-2
    min_figures: int = ranged(0, 0, 64)
    max_figures: int = ranged(4, 0, 64)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"synth: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        check_ranges(self, "synth")
        if self.min_figures > self.max_figures:
            raise UserError(
                f"synth: min_figures {self.min_figures} > max_figures {self.max_figures}"
            )

    @property
    def size(self) -> tuple[int, int]:
        return self.imgsz, round(self.imgsz * 3 / 4)

    def schema(self) -> KeypointSchema:
        return get_schema("coco17" if self.kind == "person" else "arm")


@dataclass
class SynthInstance:
    keypoints: np.ndarray  # (K, 3) x, y, v
    bbox: np.ndarray  # (4,) x, y, w, h of the visible pixels
    area: float  # people: visible pixels; arms: box area
    figure_id: int  # this figure's value in `SynthFrame.owner`


@dataclass
class SynthFrame:
    """One rendered image, its instances, and `owner`: (H, W) uint8 holding at every pixel the
    id of the figure drawn on top (0 background, 255 a foreground occluder)."""

    image: np.ndarray
    instances: list[SynthInstance]
    owner: np.ndarray


def _sample_figures(cfg: SynthConfig, rng: np.random.Generator) -> list[Figure]:
    w, h = cfg.size
    top = max(cfg.max_height_frac * h, cfg.min_height + 1)
    mixed = (cfg.min_figures, cfg.max_figures) == (0, 4)
    chosen = int(rng.integers(cfg.min_figures, cfg.max_figures + 1)) if not mixed else None
    if cfg.kind == "person":
        n = int(rng.choice(5, p=(0.08, 0.32, 0.25, 0.2, 0.15))) if chosen is None else chosen
        heights = np.exp(rng.uniform(np.log(cfg.min_height), np.log(top), n))
        figs = []
        for hh in np.sort(heights):  # small (far) figures first, so near ones occlude them
            x = rng.uniform(-0.05 * w, 1.05 * w)
            if hh < h and rng.random() > 0.15:
                y = rng.uniform(0.45 * hh, h - 0.5 * hh)
            else:
                y = rng.uniform(0.1 * h, 0.9 * h)
            figs.append(sample_person(rng, hh, np.array([x, y])))
        return figs
    n = int(rng.choice(4, p=(0.08, 0.5, 0.27, 0.15))) if chosen is None else chosen
    high = 0.8 * top
    low = min(max(cfg.min_height, 60), high)  # small images: arms as large as they fit
    sizes = np.sort(np.exp(rng.uniform(np.log(low), np.log(high), n)))
    return [
        sample_arm(rng, s, np.array([rng.uniform(0.05 * w, 0.95 * w), rng.uniform(0.45 * h, h)]))
        for s in sizes
    ]


def _occluders(img: np.ndarray, owner: np.ndarray, rng: np.random.Generator) -> None:
    h, w = owner.shape
    for _ in range(int(rng.integers(1, 3))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        rx, ry = int(rng.uniform(0.03, 0.15) * w), int(rng.uniform(0.03, 0.2) * h)
        if rng.random() < 0.5:
            p0, p1 = (cx - rx, cy - ry), (cx + rx, cy + ry)
            cv2.rectangle(img, p0, p1, color, -1)
            cv2.rectangle(owner, p0, p1, OCCLUDER, -1)
        else:
            cv2.ellipse(img, (cx, cy), (rx, ry), 0, 0, 360, color, -1)
            cv2.ellipse(owner, (cx, cy), (rx, ry), 0, 0, 360, OCCLUDER, -1)


def render(cfg: SynthConfig, index: int, backdrop: Backdrop | None = None) -> SynthFrame:
    """Image `index` of the dataset described by `cfg`, and its annotated instances."""
    w, h = cfg.size
    backdrop = backdrop or Backdrop(w, h, cfg.seed)
    rng = np.random.default_rng([cfg.seed, index])
    img = backdrop.background(rng)
    owner = np.zeros((h, w), dtype=np.uint8)
    figs = _sample_figures(cfg, rng)
    placed = draw_figures(img, owner, list(enumerate(figs, start=1)), lambda _: rng)
    if rng.random() < 0.3:
        _occluders(img, owner, rng)
    instances = annotate(placed, owner, box_area=cfg.kind != "person")
    return SynthFrame(backdrop.camera(img, rng), instances, owner)


Placed = tuple[int, Figure, int, int, int, int]  # owner id, figure, x0, y0, width, height


def draw_figures(
    img: np.ndarray,
    owner: np.ndarray,
    figures: list[tuple[int, Figure]],
    texture_rng: Callable[[int], np.random.Generator],
) -> list[Placed]:
    """Paint (owner id, figure) pairs in order (later ones on top), recording in `owner` who
    is seen at each pixel; `texture_rng(id)` draws each figure's clothes pattern."""
    h, w = owner.shape
    placed = []
    for i, fig in figures:
        drawn = draw_labels(fig.shapes, w, h)
        if drawn is None:
            continue
        labels, x0, y0 = drawn
        lh, lw = labels.shape
        rng = texture_rng(i)
        textures = {lb: texture(rng, lh, lw, fig.scale) for lb in fig.textured}
        paste(img, owner, i, labels, x0, y0, fig.palette, textures)
        placed.append((i, fig, x0, y0, lw, lh))
    return placed


def annotate(placed: list[Placed], owner: np.ndarray, *, box_area: bool) -> list[SynthInstance]:
    """Instances of the painted figures that are seen: box of their visible pixels, keypoint
    visibility from `owner`, and area (visible pixels, or with `box_area` the box's area)."""
    instances = []
    for i, fig, x0, y0, lw, lh in placed:
        mine = owner[y0 : y0 + lh, x0 : x0 + lw] == i
        count = int(np.count_nonzero(mine))
        if count < MIN_VISIBLE_PIXELS:
            continue
        ys, xs = np.nonzero(mine)
        bbox = np.array(
            [x0 + xs.min(), y0 + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1],
            dtype=np.float64,
        )
        # people: the visible pixel count, as COCO's segmentation area; arms: the box area,
        # since thin links would make OKS (which scales with sqrt(area)) unreasonably strict
        area = float(bbox[2] * bbox[3]) if box_area else float(count)
        instances.append(SynthInstance(_visibility(fig, owner, i), bbox, area, i))
    return instances


def _visibility(fig: Figure, owner: np.ndarray, own_id: int) -> np.ndarray:
    """x, y, v per keypoint: 0 outside the image or not labelled, 1 under another figure or an
    occluder, 2 otherwise; unlabelled keypoints get (0, 0), as in COCO."""
    h, w = owner.shape
    xy = fig.keypoints
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    v = np.where(inside & fig.labelled, 2.0, 0.0)
    ix = np.clip(np.floor(xy[:, 0]).astype(int), 0, w - 1)
    iy = np.clip(np.floor(xy[:, 1]).astype(int), 0, h - 1)
    top = owner[iy, ix]
    v[(v == 2) & (top != own_id) & (top != 0)] = 1.0
    out = np.concatenate([xy, v[:, None]], axis=1)
    out[v == 0, :2] = 0.0
    return out


def _render_range(
    args: tuple[SynthConfig, list[int], str],
) -> list[tuple[int, list[SynthInstance]]]:
    cfg, indices, image_dir = args
    backdrop = Backdrop(*cfg.size, cfg.seed)
    out = []
    for idx in indices:
        frame = render(cfg, idx, backdrop)
        ok, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for image {idx}")
        buf.tofile(str(Path(image_dir) / f"{idx:06d}.jpg"))
        out.append((idx, frame.instances))
    return out


def _chunks(n: int, size: int) -> Iterator[list[int]]:
    for start in range(0, n, size):
        yield list(range(start, min(start + size, n)))


def generate(
    cfg: SynthConfig,
    out_dir: str | Path,
    *,
    val: float = 0.1,
    test: float = 0.0,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    force: bool = False,
) -> Path:
    """Write a synthetic posekit dataset (images/, annotations/{train,val}.json, data.yaml).

    `out_dir` must be empty or an earlier output of this generator (which is replaced);
    `force=True` writes into another folder (see `posekit.utils.outputs.claim_output`).

    Example:
        >>> generate(SynthConfig("person", images=20), "data/synth")  # doctest: +SKIP
    """
    from posekit.data.layout import write_posekit

    out = claim_output(
        out_dir, "data synth", source=f"synthetic {cfg.kind}, seed {cfg.seed}", force=force
    )
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    w, h = cfg.size
    images, anns = [], []
    jobs = [(cfg, chunk, str(image_dir)) for chunk in _chunks(cfg.images, 32)]
    if workers > 1:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_render_range, jobs)
    else:
        pool, results = None, map(_render_range, jobs)
    try:
        for chunk in results:
            for idx, instances in chunk:
                iid = idx + 1
                images.append(ImageInfo(iid, f"{idx:06d}.jpg", w, h))
                for inst in instances:
                    anns.append(
                        Annotation(len(anns) + 1, iid, 1, inst.keypoints, inst.bbox, inst.area)
                    )
            if progress is not None:
                progress(len(chunk))
    finally:
        if pool is not None:
            pool.shutdown()
    schema = cfg.schema()
    ds = KeypointDataset(
        images,
        anns,
        [Category(1, schema.name, schema)],
        image_dir,
        f"posekit synth {cfg.kind} seed={cfg.seed}",
    )
    splits = split_dataset(ds, val=val, test=test, seed=cfg.seed) if val or test else {"train": ds}
    write_posekit(splits, out)
    return out
