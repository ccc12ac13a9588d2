"""Top-down prediction with a detector that returns a flood of boxes: the detector's best
`max_det` are kept, and crops are made and run `crop_batch` at a time, so memory stays
bounded (before: 20,000 boxes for one image made one 11.8 GB crop array)."""

from __future__ import annotations

import numpy as np
import pytest

from posekit import Model
from posekit.engine.checkpoint import save_checkpoint
from posekit.models import create
from posekit.predict import PredictConfig, topdown


def _flood(n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 60, (n, 2))], 1)
    scores = rng.uniform(0.01, 1, n)

    def detector(images):  # type: ignore[no-untyped-def]
        return [(boxes, scores, np.zeros(n, np.int64)) for _ in images]

    return detector, boxes, scores


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small rtmpose checkpoint (path)."""
    model = create("rtmpose-t", "coco17", input_size=(64, 64))
    return str(save_checkpoint(tmp_path_factory.mktemp("m") / "rtmpose.pt", model))


def test_crops_are_made_and_run_in_bounded_chunks(net, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    image = np.full((160, 200, 3), 80, np.uint8)
    detector, boxes, _ = _flood(700)
    sizes: list[int] = []
    real = topdown.make_crops

    def counting(*args, **kw):  # type: ignore[no-untyped-def]
        crops = real(*args, **kw)
        sizes.append(len(crops.pixels))
        return crops

    monkeypatch.setattr(topdown, "make_crops", counting)
    (chunked,) = Model(net, detector=detector).predict(image, max_det=1000, crop_batch=64)
    assert max(sizes) == 64 and sum(sizes) == 700 and len(sizes) == 11
    sizes.clear()
    (whole,) = Model(net, detector=detector).predict(image, max_det=1000, crop_batch=4096)
    assert sizes == [700]
    # the same instances, in the same order, whatever the chunking
    np.testing.assert_array_equal(chunked.boxes.xyxy, boxes)
    np.testing.assert_allclose(chunked.keypoints.data, whole.keypoints.data, atol=1e-4)


def test_chunks_span_images_and_keep_each_images_boxes() -> None:
    boxes = [np.ones((3, 4)), np.zeros((0, 4)), 2 * np.ones((5, 4)), 3 * np.ones((1, 4))]
    runs = list(topdown.chunks_of_boxes(boxes, 4))
    assert [w for w, _ in runs] == [[0, 2], [2], [3]]
    assert [[len(b) for b in r] for _, r in runs] == [[3, 1], [4], [1]]
    assert runs[0][1][1][0, 0] == 2 and runs[2][1][0][0, 0] == 3


def test_a_detector_flood_keeps_the_max_det_best_boxes(net) -> None:  # type: ignore[no-untyped-def]
    image = np.full((160, 200, 3), 80, np.uint8)
    detector, boxes, scores = _flood(20_000)
    (r,) = Model(net, detector=detector).predict(image, max_det=50)
    best = np.argsort(-scores, kind="stable")[:50]
    np.testing.assert_array_equal(r.boxes.xyxy, boxes[best])
    assert len(r) == PredictConfig(max_det=50).max_det


def test_a_detector_whose_fields_disagree_in_length_is_an_error(net) -> None:  # type: ignore[no-untyped-def]
    def detector(images):  # type: ignore[no-untyped-def]
        return [(np.ones((3, 4)), np.ones(2), np.zeros(3, np.int64)) for _ in images]

    with pytest.raises(ValueError, match="3 boxes, 2 scores and 3 classes"):
        Model(net, detector=detector).predict(np.zeros((32, 32, 3), np.uint8))


@pytest.mark.parametrize("bad", [{"crop_batch": 0}, {"max_det": 0}, {"batch": -1},
                                 {"imgsz": -5}, {"conf": 2.0}])  # fmt: skip
def test_prediction_settings_outside_their_ranges_are_one_line(bad: dict) -> None:
    with pytest.raises(ValueError, match="outside its range") as info:
        PredictConfig(**bad)
    assert "\n" not in str(info.value)
