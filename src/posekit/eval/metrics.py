"""`evaluate`: every keypoint metric of a set of predictions against a dataset, in one result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posekit.data.dataset import KeypointDataset
from posekit.data.formats import load_dataset
from posekit.eval.coco import CocoKeypointResult, _sigmas_for, evaluate_coco, per_keypoint_ap
from posekit.eval.cocoeval import STAT_NAMES, EvalParams
from posekit.eval.inputs import GroundTruth, Predictions, load_results, resolve_file_names
from posekit.eval.pck import (
    INTEROCULAR_PAIR,
    TORSO_PAIR,
    InstancePairs,
    nme,
    pair_instances,
    pair_norm,
    pck,
    pck_auc,
    pck_overall,
)
from posekit.utils.bounds import check_ranges, ranged


@dataclass(frozen=True)
class EvalConfig:
    """What to compute and how. Defaults: COCO keypoint settings, PCK@0.05 of the box's longer
    side, PCKh@0.5, AUC of PCK for alpha in [0, 0.2], DeepLabCut's p-cutoff 0.6."""

    max_dets: int = ranged(20, 1, 100_000)
    sigmas: Mapping[int, Sequence[float]] | Sequence[float] | None = None
    pck_alpha: float = ranged(0.05, 1e-6, 10)
    pckh_alpha: float = ranged(0.5, 0, 10)
    torso_alpha: float = ranged(0.2, 0, 10)
    auc_max_alpha: float = ranged(0.2, 1e-6, 10)
    torso_pair: tuple[str, str] = TORSO_PAIR
    nme_pair: tuple[str, str] = INTEROCULAR_PAIR
    pcutoff: float = ranged(0.6, 0, 1)
    per_keypoint_ap: bool = True

    def __post_init__(self) -> None:
        check_ranges(self, "val")


@dataclass
class KeypointMetrics:
    """All metrics of one evaluation. `to_dict()` gives the ten COCO statistics under their
    names (AP, AP50, ..., ARl) and the others; NaN / None mean "not measurable here"."""

    coco: dict[str, float]
    pck: float
    pck_alpha: float
    pck_auc: float
    pckh: float | None
    pck_torso: float | None
    epe: float
    epe_pcutoff: float
    pcutoff: float
    nme: float | None
    keypoint_names: list[str]
    per_keypoint_ap: list[float] | None
    per_keypoint_pck: list[float]
    counts: dict[str, int]
    coco_result: CocoKeypointResult = field(repr=False)
    pairs: list[InstancePairs] = field(repr=False)
    image_ids: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        def num(x: float | None) -> float | None:
            return None if x is None or not np.isfinite(x) else float(x)

        out: dict[str, Any] = {name: float(self.coco[name]) for name in STAT_NAMES}
        out |= {
            f"PCK@{self.pck_alpha:g}": num(self.pck),
            "PCK_AUC": num(self.pck_auc),
            "PCKh@0.5": num(self.pckh),
            "PCK_torso": num(self.pck_torso),
            "EPE_px": num(self.epe),
            f"EPE_px@pcutoff{self.pcutoff:g}": num(self.epe_pcutoff),
            "NME": num(self.nme),
            "counts": dict(self.counts),
            "per_keypoint": {
                name: {
                    "AP": num(self.per_keypoint_ap[j]) if self.per_keypoint_ap else None,
                    f"PCK@{self.pck_alpha:g}": num(self.per_keypoint_pck[j]),
                }
                for j, name in enumerate(self.keypoint_names)
            },
        }
        return out

    def instances(self) -> list[dict[str, Any]]:
        """One row per counted ground-truth instance: image, ids, OKS and mean pixel error,
        worst first (lowest OKS), to find the images a model gets most wrong."""
        rows = []
        for p in self.pairs:
            d = np.where(p.labelled, p.dist, np.nan)
            n = np.isfinite(d).sum(axis=1)
            err = np.where(n > 0, np.nansum(d, axis=1) / np.maximum(n, 1), np.nan)
            for i in range(len(p.gt_rows)):
                rows.append({
                    "image_id": int(self.image_ids[p.image_index[i]]),
                    "category_id": p.category_id,
                    "gt_row": int(p.gt_rows[i]),
                    "matched": bool(p.dt_rows[i] >= 0),
                    "oks": float(p.oks[i]),
                    "mean_error_px": None if not np.isfinite(err[i]) else float(err[i]),
                })  # fmt: skip
        return sorted(rows, key=lambda r: r["oks"])


def evaluate(
    gt: GroundTruth | KeypointDataset | str | Path,
    predictions: Predictions | list[dict[str, Any]] | str | Path,
    config: EvalConfig | None = None,
    *,
    split: str = "val",
) -> KeypointMetrics:
    """Evaluate keypoint predictions (COCO results) against ground truth.

    Args:
        gt: a `GroundTruth`, a `KeypointDataset`, or a dataset path in any supported format
            (for a path, `split` picks the split).
        predictions: COCO keypoint results (a list or a JSON file) or `Predictions`.
        config: metric settings (`EvalConfig`).

    Example:
        >>> m = evaluate("data/people", "preds.json", split="val")  # doctest: +SKIP
        >>> m.coco["AP"], m.pck                                        # doctest: +SKIP
    """
    config = config or EvalConfig()
    if isinstance(gt, str | Path):
        gt = load_dataset(gt, split, repair=False)
    source = str(predictions) if isinstance(predictions, str | Path) else "predictions"
    if isinstance(predictions, str | Path):
        predictions = load_results(predictions)
    if isinstance(gt, KeypointDataset):
        if isinstance(predictions, list):
            predictions = resolve_file_names(predictions, gt, source=source)
        gt = GroundTruth.from_dataset(gt)
    if isinstance(predictions, list):
        predictions = Predictions.from_coco_results(predictions, gt, source=source)
    params = EvalParams(max_dets=config.max_dets)
    coco = evaluate_coco(gt, predictions, params=params, sigmas=config.sigmas)
    kp_ap = per_keypoint_ap(gt, predictions, params=params, sigmas=config.sigmas) \
        if config.per_keypoint_ap else None  # fmt: skip
    return _distance_metrics(gt, predictions, config, coco, kp_ap)


def _distance_metrics(
    gt: GroundTruth,
    pred: Predictions,
    config: EvalConfig,
    coco: CocoKeypointResult,
    kp_ap: dict[int, np.ndarray] | None,
) -> KeypointMetrics:
    pairs, names = [], []
    dists, labs, bbox_norm, head_norm, torso_norm, nme_vals, confs = [], [], [], [], [], [], []
    per_kp_pck, per_kp_ap = [], []
    multi = len(gt.categories) > 1
    for cid, cat in gt.categories.items():
        s = _sigmas_for(cid, cat, config.sigmas)
        p = pair_instances(cat, pred.categories.get(cid), s, config.max_dets)
        pairs.append(p)
        bb = cat.bbox[p.gt_rows]
        bnorm = np.maximum(bb[:, 2], bb[:, 3])
        per_kp_pck += pck(p.dist, p.labelled, bnorm, config.pck_alpha).tolist()
        names += [f"{cat.schema.name}/{n}" if multi else n for n in cat.schema.keypoints]
        per_kp_ap += kp_ap[cid].tolist() if kp_ap is not None else []
        # flatten over keypoints so that categories with different K can be pooled
        dists.append(p.dist.ravel())
        labs.append(p.labelled.ravel())
        confs.append(p.conf.ravel())
        k = cat.schema.num_keypoints
        bbox_norm.append(np.repeat(bnorm, k))
        head_norm.append(np.repeat(cat.head_size[p.gt_rows], k))
        t = pair_norm(cat, p.gt_rows, config.torso_pair)
        torso_norm.append(np.repeat(t if t is not None else np.full(len(p.gt_rows), np.nan), k))
        e = pair_norm(cat, p.gt_rows, config.nme_pair)
        if e is not None:
            nme_vals.append(nme(p.dist, p.labelled, e))
    dist = np.concatenate(dists)[:, None]
    lab = np.concatenate(labs)[:, None]
    conf = np.concatenate(confs)
    bnorm, hnorm = np.concatenate(bbox_norm), np.concatenate(head_norm)
    tnorm = np.concatenate(torso_norm)
    measured = lab[:, 0] & np.isfinite(dist[:, 0])
    epe = float(dist[measured, 0].mean()) if measured.any() else float("nan")
    sure = measured & (conf >= config.pcutoff)
    epe_cut = float(dist[sure, 0].mean()) if sure.any() else float("nan")
    pckh = pck_overall(dist, lab, hnorm, config.pckh_alpha)
    torso = pck_overall(dist, lab, tnorm, config.torso_alpha)
    n_counted = sum(len(p.gt_rows) for p in pairs)
    n_matched = sum(int((p.dt_rows >= 0).sum()) for p in pairs)
    counts = {
        "images": len(gt.image_ids),
        "ground_truth": sum(len(c.ids) for c in gt.categories.values()),
        "counted_ground_truth": n_counted,
        "predictions": sum(len(c.score) for c in pred.categories.values()),
        "matched": n_matched,
        "unmatched": n_counted - n_matched,
        "labelled_keypoints": int(lab.sum()),
    }
    return KeypointMetrics(
        coco=coco.stats,
        pck=pck_overall(dist, lab, bnorm, config.pck_alpha),
        pck_alpha=config.pck_alpha,
        pck_auc=pck_auc(dist, lab, bnorm, config.auc_max_alpha),
        pckh=None if np.isnan(pckh) else pckh,
        pck_torso=None if np.isnan(torso) else torso,
        epe=epe,
        epe_pcutoff=epe_cut,
        pcutoff=config.pcutoff,
        nme=float(np.nanmean(nme_vals)) if nme_vals and not np.isnan(nme_vals).all() else None,
        keypoint_names=names,
        per_keypoint_ap=per_kp_ap if kp_ap is not None else None,
        per_keypoint_pck=per_kp_pck,
        counts=counts,
        coco_result=coco,
        pairs=pairs,
        image_ids=gt.image_ids,
    )
