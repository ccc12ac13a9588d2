"""Synthetic data: determinism, annotation semantics, and that keypoints sit on the drawing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posekit.data import check_dataset, load_splits
from posekit.data.synth import SynthConfig, generate, render
from posekit.data.synth.background import Backdrop
from posekit.data.synth.render import Shape, draw_labels


@pytest.mark.parametrize("kind", ["person", "arm"])
def test_keypoints_lie_on_their_own_figure(kind: str) -> None:
    cfg = SynthConfig(kind, imgsz=320, seed=11)
    backdrop = Backdrop(*cfg.size, cfg.seed)
    seen = {0: 0, 1: 0, 2: 0}
    for index in range(40):
        frame = render(cfg, index, backdrop)
        h, w = frame.owner.shape
        for inst in frame.instances:
            kp = inst.keypoints
            v = kp[:, 2].astype(int)
            for flag in seen:
                seen[flag] += int(np.sum(v == flag))
            ix, iy = np.floor(kp[:, 0]).astype(int), np.floor(kp[:, 1]).astype(int)
            vis = v == 2
            assert np.all(frame.owner[iy[vis], ix[vis]] == inst.figure_id)
            occ = v == 1
            top = frame.owner[iy[occ], ix[occ]]
            assert np.all((top != inst.figure_id) & (top != 0))
            assert np.all(kp[v == 0, :2] == 0)  # unlabelled: (0, 0, 0) as in COCO
            lab = v > 0
            assert np.all(
                (kp[lab, 0] >= 0) & (kp[lab, 0] < w) & (kp[lab, 1] >= 0) & (kp[lab, 1] < h)
            )
            x, y, bw, bh = inst.bbox
            assert bw > 0 and bh > 0 and x >= 0 and y >= 0 and x + bw <= w and y + bh <= h
    assert all(n > 0 for n in seen.values()), seen  # visible, occluded and unlabelled all occur


def test_person_data_has_the_promised_variety() -> None:
    cfg = SynthConfig("person", imgsz=640, seed=0)
    backdrop = Backdrop(*cfg.size, cfg.seed)
    counts, heights = [], []
    for index in range(120):
        frame = render(cfg, index, backdrop)
        counts.append(len(frame.instances))
        heights += [inst.bbox[3] for inst in frame.instances]
    assert min(counts) == 0 and max(counts) >= 4
    assert min(heights) < 60 and max(heights) > 300


def test_the_figure_count_can_be_chosen() -> None:
    cfg = SynthConfig("person", imgsz=256, seed=2, min_figures=1, max_figures=1, min_height=70)
    backdrop = Backdrop(*cfg.size, cfg.seed)
    figures = [len(render(cfg, index, backdrop).instances) for index in range(30)]
    # one figure drawn per image; one may be hidden by an occluder or the border, never two
    assert max(figures) == 1 and sum(figures) >= 27
    with pytest.raises(ValueError, match="min_figures 3 > max_figures 2"):
        SynthConfig(min_figures=3, max_figures=2)


def test_generation_is_deterministic(tmp_path: Path) -> None:
    cfg = SynthConfig("arm", images=12, imgsz=160, seed=5)
    a = generate(cfg, tmp_path / "a", val=0.25, workers=1)
    b = generate(cfg, tmp_path / "b", val=0.25, workers=2)
    for split in ("train", "val"):
        ja = json.loads((a / "annotations" / f"{split}.json").read_text())
        jb = json.loads((b / "annotations" / f"{split}.json").read_text())
        assert ja["annotations"] == jb["annotations"] and ja["images"] == jb["images"]
    for f in sorted((a / "images").iterdir()):
        assert f.read_bytes() == (b / "images" / f.name).read_bytes()
    other = generate(SynthConfig("arm", images=12, imgsz=160, seed=6), tmp_path / "c", val=0.25)
    assert (other / "images" / "000000.jpg").read_bytes() != (
        a / "images" / "000000.jpg"
    ).read_bytes()


def test_generated_dataset_is_clean(tmp_path: Path) -> None:
    out = generate(SynthConfig("person", images=30, imgsz=320, seed=1), tmp_path / "p", val=0.2)
    results = check_dataset(out)
    assert {r.name for r in results} == {"train", "val"}
    assert all(r.problems == [] for r in results)
    splits = load_splits(out)
    assert len(splits["val"].images) == 6 and len(splits["train"].images) == 24


@pytest.mark.parametrize("centre", [(20.5, 30.5), (20.0, 30.0), (20.25, 30.75)])
def test_shapes_are_drawn_at_continuous_coordinates(centre: tuple[float, float]) -> None:
    """Pixel (i, j) covers [i, i+1) x [j, j+1): a disc at c has its pixels' centroid at c."""
    disc = Shape(1, ellipse=(centre, (6.0, 6.0), 0.0))
    labels, x0, y0 = draw_labels([disc], 64, 64)
    ys, xs = np.nonzero(labels)
    centroid = np.array([xs.mean() + x0 + 0.5, ys.mean() + y0 + 0.5])
    # OpenCV's rasteriser rounds half-pixels one way (up to 0.16 px bias for a disc centred on
    # a pixel corner); a missing or doubled half-pixel shift would be off by 0.5.
    np.testing.assert_allclose(centroid, centre, atol=0.2)
