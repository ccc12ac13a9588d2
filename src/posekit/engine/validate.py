"""Run a model over a dataset split and evaluate it (COCO AP/AR, PCK, EPE)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from posekit.data.dataset import KeypointDataset
from posekit.engine.dataset import AugmentConfig, KeypointSamples, collate
from posekit.eval import EvalConfig, GroundTruth, KeypointMetrics, Predictions, evaluate
from posekit.eval.inputs import CategoryPred
from posekit.models.rtpose import RTPose
from posekit.predict.postprocess import postprocess


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


@torch.no_grad()
def predict_split(
    model: RTPose,
    loader: DataLoader,
    device: torch.device,
    *,
    conf: float = 0.001,
    iou: float = 0.65,
    oks_nms: float = 0.9,
    max_det: int = 100,
    progress: Callable[[int], None] | None = None,
) -> PredictionArrays:
    """Predictions for every image of a loader built on `KeypointSamples` (no augmentation)."""
    model.eval()
    ids, cls, scores, kps = [], [], [], []
    k = model.num_keypoints
    sigmas = model.keypoint_sigmas().to(device)
    for images, _, image_ids, matrices in loader:
        out = model(images.to(device).float() / 255)
        dets = postprocess(out, conf=conf, iou=iou, max_det=max_det, sigmas=sigmas,
                           oks_nms=oks_nms)  # fmt: skip
        for det, iid, m in zip(dets, image_ids, matrices, strict=True):
            n = len(det.scores)
            kp = det.keypoints.cpu().double().numpy()
            inv = np.linalg.inv(m)  # input pixels -> original pixels, exactly
            kp[..., :2] = kp[..., :2] @ inv[:2, :2].T + inv[:2, 2]
            ids.append(np.full(n, iid))
            cls.append(det.classes.cpu().numpy())
            scores.append(det.scores.cpu().double().numpy())
            kps.append(kp.reshape(n, k, 3))
        if progress is not None:
            progress(len(image_ids))
    if not ids:
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


def make_loader(
    ds: KeypointDataset,
    imgsz: int,
    batch: int,
    workers: int,
    category_ids: list[int] | None = None,
    sampler: Any = None,
    *,
    rect: bool = True,
) -> DataLoader:
    """Unaugmented samples in order; with `rect`, padded like `posekit predict` pads them."""
    samples = KeypointSamples(ds, imgsz, AugmentConfig.off(), category_ids=category_ids,
                              rect=rect)  # fmt: skip
    return DataLoader(samples, batch_size=batch, shuffle=False, num_workers=workers,
                      collate_fn=collate, sampler=sampler)  # fmt: skip


def evaluate_model(
    model: RTPose,
    ds: KeypointDataset,
    *,
    imgsz: int,
    batch: int = 8,
    workers: int = 0,
    device: torch.device | None = None,
    config: EvalConfig | None = None,
    conf: float = 0.001,
) -> KeypointMetrics:
    """Predict on every image of `ds` and evaluate against its annotations."""
    device = device or torch.device("cpu")
    category_ids = [c.id for c in sorted(ds.categories, key=lambda c: c.id)]
    loader = make_loader(ds, imgsz, batch, workers, category_ids)
    preds = predict_split(model.to(device), loader, device, conf=conf)
    gt = GroundTruth.from_dataset(ds)
    return evaluate(gt, to_predictions(preds, gt, category_ids),
                    config or EvalConfig(per_keypoint_ap=False))  # fmt: skip
