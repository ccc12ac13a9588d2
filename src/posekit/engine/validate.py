"""Run a model over a dataset split and evaluate it (COCO AP/AR, PCK, EPE).

There is one inference path: validation runs the `Predictor` that `Model.predict` and
`posekit predict` run (same preprocessing, network, decoding and inverse mapping), so what it
measures is what users get; `Model.val` equals `posekit val --pred` on `Model.predict`'s output.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from posekit.data.dataset import ImageInfo, KeypointDataset
from posekit.data.images import ImageReadError, read_image
from posekit.eval import EvalConfig, GroundTruth, KeypointMetrics, Predictions, evaluate
from posekit.eval.detections import ImageBoxes
from posekit.eval.inputs import CategoryPred
from posekit.models.base import KeypointModel
from posekit.predict.backends import Backend
from posekit.predict.predictor import PredictConfig, Predictor
from posekit.predict.sources import Frame
from posekit.predict.topdown import Detector


@dataclass
class PredictionArrays:
    """Predictions of a split in original-image pixels, one row per detection."""

    image_ids: np.ndarray  # (N,)
    classes: np.ndarray  # (N,) class index
    scores: np.ndarray  # (N,)
    keypoints: np.ndarray  # (N, K, 3) x, y, confidence

    @classmethod
    def concat(cls, parts: list[PredictionArrays]) -> PredictionArrays:
        parts = [p for p in parts if p is not None]
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("image_ids", "classes", "scores", "keypoints")))  # fmt: skip


log = logging.getLogger(__name__)

#: Prediction settings of validation: COCO's (every detection down to a low score, 100 per
#: image), so that AP sees the whole precision-recall curve.
VAL_CONF, VAL_MAX_DET = 0.001, 100


def validation_config(imgsz: int, batch: int = 8) -> PredictConfig:
    """The `PredictConfig` validation runs (the same NMS settings as prediction)."""
    return PredictConfig(conf=VAL_CONF, max_det=VAL_MAX_DET, imgsz=imgsz, batch=batch)


def dataset_frames(ds: KeypointDataset, images: list[ImageInfo]) -> Iterator[Frame]:
    """The images as prediction frames, read as training reads them (`read_image` with the
    size the dataset records, which settles an EXIF orientation the same way)."""
    for im in images:
        path = ds.image_path(im)
        try:
            yield Frame(read_image(path, size=(im.width, im.height)), str(path))
        except ImageReadError as e:
            yield Frame(None, str(path), error=str(e))


def ground_truth_boxes(ds: KeypointDataset, images: list[ImageInfo]) -> list[np.ndarray]:
    """The xyxy boxes of each image's instances (crowd regions left out): what top-down models
    are validated on when no detector is given, as MMPose and the ViTPose paper report."""
    by_image = ds.annotations_by_image()
    out = []
    for im in images:
        anns = [a for a in by_image.get(im.id, []) if not a.iscrowd]
        out.append(np.array([np.r_[a.bbox[:2], a.bbox[:2] + a.bbox[2:]] for a in anns],
                            dtype=np.float64).reshape(-1, 4))  # fmt: skip
    return out


def predict_images(
    net: KeypointModel,
    ds: KeypointDataset,
    images: list[ImageInfo],
    config: PredictConfig,
    *,
    device: torch.device | None = None,
    fuse: bool = True,
    detections: dict[int, ImageBoxes] | None = None,
    detector: Detector | None = None,
    backend: Backend | None = None,
) -> PredictionArrays:
    """Predictions for `images` of `ds` in original-image pixels, made by the `Predictor`
    that `Model.predict` uses (with its `backend`, e.g. ONNX Runtime, when given): validation
    measures exactly what users run.

    Top-down models run on the `detector`'s boxes, or on `detections` (per image id, e.g. from
    `read_detections`), or else on the ground-truth boxes; single-subject models on whole
    frames, as they predict."""
    predictor = Predictor(net, config, device=device, fuse=fuse, detector=detector,
                          backend=backend)  # fmt: skip
    ids, cls, scores, kps = [], [], [], []
    boxes: list[Any] | None = None
    if net.input_mode.takes_boxes and detector is None:
        if detections is not None:
            none = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
            boxes = [detections.get(im.id, none) for im in images]
        else:
            log.info("top-down model without a detector: evaluated on the ground-truth boxes")
            boxes = ground_truth_boxes(ds, images)  # type: ignore[assignment]
    results = predictor.stream_frames(dataset_frames(ds, images), boxes=boxes)
    for im, r in zip(images, results, strict=True):
        ids.append(np.full(len(r), im.id))
        cls.append(r.boxes.cls)
        scores.append(r.boxes.conf)
        kps.append(r.keypoints.data)
    if not ids:
        k = net.num_keypoints
        return PredictionArrays(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0),
                                np.zeros((0, k, 3)))  # fmt: skip
    return PredictionArrays(np.concatenate(ids), np.concatenate(cls), np.concatenate(scores),
                            np.concatenate(kps))  # fmt: skip


def to_predictions(p: PredictionArrays, gt: GroundTruth, category_ids: list[int]) -> Predictions:
    """Evaluation input from prediction arrays (class index -> category id, per-class K)."""
    cats = {}
    for c, cid in enumerate(category_ids):
        sel = p.classes == c
        k = gt.categories[cid].schema.num_keypoints
        one = Predictions.from_arrays(
            gt, cid, p.image_ids[sel], p.keypoints[sel, :k], p.scores[sel]
        )
        cats[cid] = one.categories[cid]
    if not cats:
        return Predictions({})
    # ids must be unique across categories, as pycocotools numbers results
    offset = 0
    for cid in sorted(cats):
        c: CategoryPred = cats[cid]
        c.ids = c.ids + offset
        offset += len(c.ids)
    return Predictions(cats)


def evaluate_model(
    model: KeypointModel,
    ds: KeypointDataset,
    settings: PredictConfig,
    *,
    device: torch.device | None = None,
    config: EvalConfig | None = None,
    fuse: bool = True,
    detections: dict[int, ImageBoxes] | None = None,
    detector: Detector | None = None,
    backend: Backend | None = None,
) -> KeypointMetrics:
    """Predict on every image of `ds` with `settings` (see `predict_images`;
    `validation_config` gives COCO's) and evaluate against its annotations; `fuse=False`
    when `model` is already an inference copy."""
    category_ids = [c.id for c in sorted(ds.categories, key=lambda c: c.id)]
    preds = predict_images(model, ds, ds.images, settings, device=device,
                           fuse=fuse, detections=detections, detector=detector,
                           backend=backend)  # fmt: skip
    gt = GroundTruth.from_dataset(ds)
    return evaluate(gt, to_predictions(preds, gt, category_ids),
                    config or EvalConfig(per_keypoint_ap=False))  # fmt: skip
