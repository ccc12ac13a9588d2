"""COCO keypoint statistics identical to pycocotools (to 1e-9) on hard random problems."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cocoproblems import posekit_stats, pycocotools_stats, random_problem

pytest.importorskip("pycocotools")

SCENARIOS = {
    "coco17": {},
    "crowds-and-empty-people": {"crowd_p": 0.3, "zero_kpt_p": 0.3},
    "tied-scores": {"score_decimals": 0},  # scores all 0.0 or 1.0
    "more-than-maxdets": {"extra_dets": 60},
    "several-categories": {"n_cats": 3},
    "five-keypoints": {"k": 5},
    "bbox-in-results": {"with_bbox": True},  # loadRes then takes area from the bbox
    "gt-id-zero": {"gt_id_start": 0},  # pycocotools treats a match to id 0 as no match
    "no-crowds": {"crowd_p": 0.0, "zero_kpt_p": 0.0},
}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_stats_match_pycocotools(name: str, seed: int) -> None:
    rng = np.random.default_rng(seed + 100 * sorted(SCENARIOS).index(name))
    kw = SCENARIOS[name]
    gt, res = random_problem(rng, **kw)
    k = kw.get("k", 17)
    sigmas = rng.uniform(0.02, 0.11, k).tolist()  # custom sigmas
    ref = pycocotools_stats(gt, res, sigmas)
    ours = posekit_stats(gt, res, sigmas)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    assert (ref > -1).any()


@pytest.mark.parametrize(
    ("max_dets", "areas"),
    [
        (5, None),
        (100, None),
        (
            20,
            [
                ("all", 0, 1e10),
                ("small", 0, 32**2),
                ("medium", 32**2, 96**2),
                ("large", 96**2, 1e10),
            ],
        ),
        (10, [("all", 0, 1e10), ("large", 64**2, 1e10)]),
    ],
)
def test_custom_max_dets_and_area_ranges(max_dets: int, areas: list | None) -> None:
    gt, res = random_problem(np.random.default_rng(7), extra_dets=40)
    sigmas = np.full(17, 0.05).tolist()
    ref = pycocotools_stats(gt, res, sigmas, max_dets=max_dets, area_ranges=areas)
    ours = posekit_stats(gt, res, sigmas, max_dets=max_dets, area_ranges=areas)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


def test_chunking_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    import posekit.eval.cocoeval as ce

    gt, res = random_problem(np.random.default_rng(3), n_images=60)
    sigmas = np.full(17, 0.06).tolist()
    whole = posekit_stats(gt, res, sigmas)
    monkeypatch.setattr(ce, "CHUNK_CELLS", 64)  # a few images per chunk
    monkeypatch.setattr(ce, "PAIR_BATCH", 7)
    np.testing.assert_array_equal(posekit_stats(gt, res, sigmas), whole)


def test_empty_categories_and_no_predictions_give_minus_one() -> None:
    gt, res = random_problem(np.random.default_rng(5), n_cats=2)
    gt["categories"].append(
        {"id": 9, "name": "unused", "keypoints": [f"k{j}" for j in range(17)], "skeleton": []}
    )
    res = [r for r in res if r["category_id"] == 1]  # category 2 has ground truth only
    sigmas = np.full(17, 0.05).tolist()
    np.testing.assert_allclose(
        posekit_stats(gt, res, sigmas), pycocotools_stats(gt, res, sigmas), atol=1e-9
    )


def test_synthetic_dataset_parity(tmp_path: Path) -> None:
    import json

    from posekit.data.synth import SynthConfig, generate
    from posekit.schema import get_schema

    root = generate(SynthConfig("person", images=40, imgsz=320, seed=4), tmp_path / "p", val=0.5)
    gt = json.loads((root / "annotations" / "val.json").read_text())
    rng = np.random.default_rng(0)
    res = []
    for a in gt["annotations"]:
        kp = np.array(a["keypoints"], float).reshape(17, 3)
        for _ in range(2):
            d = kp.copy()
            d[:, :2] += rng.normal(0, rng.uniform(0.5, 6), (17, 2))
            d[:, 2] = 1
            res.append(
                {
                    "image_id": a["image_id"],
                    "category_id": 1,
                    "keypoints": d.ravel().tolist(),
                    "score": float(rng.random()),
                }
            )
    sigmas = list(get_schema("coco17").sigmas)
    ref = pycocotools_stats(gt, res, sigmas)
    np.testing.assert_allclose(posekit_stats(gt, res, sigmas), ref, atol=1e-9)
    assert 0.2 < ref[0] < 1
