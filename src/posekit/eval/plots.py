"""Evaluation plots (matplotlib, from the `plot` extra): PR curves and a per-keypoint chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posekit.eval.coco import CocoKeypointResult
from posekit.eval.metrics import KeypointMetrics
from posekit.utils.extras import pyplot


def plot_pr_curves(r: CocoKeypointResult, path: str | Path) -> Path:
    """Precision-recall curves at each OKS threshold (area 'all', mean over categories)."""
    plt = pyplot()
    prec = r.precision[:, :, :, r.area_labels.index("all")]  # (T, R, K)
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    cmap = plt.get_cmap("viridis")
    for t, thr in enumerate(r.oks_thresholds):
        p = prec[t]
        valid = (p > -1).any(axis=0)
        if not valid.any():
            continue
        curve = np.where(p[:, valid] > -1, p[:, valid], np.nan)
        mean = np.nanmean(curve, axis=1)
        ap = float(np.mean(p[:, valid][p[:, valid] > -1]))
        ax.plot(r.recall_thresholds, mean, color=cmap(t / max(1, len(r.oks_thresholds) - 1)),
                label=f"OKS {thr:.2f}  AP {ap:.3f}")  # fmt: skip
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("Precision-recall by OKS threshold")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_per_keypoint(m: KeypointMetrics, path: str | Path) -> Path:
    """Bar chart of per-keypoint AP and PCK."""
    plt = pyplot()
    names = m.keypoint_names
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names) + 2), 4.5), dpi=120)
    pck = np.nan_to_num(np.array(m.per_keypoint_pck, dtype=float), nan=0.0)
    if m.per_keypoint_ap is not None:
        ap = np.clip(np.array(m.per_keypoint_ap, dtype=float), 0, None)
        ax.bar(x - 0.2, ap, 0.4, label="AP (OKS on this keypoint)", color="#4c72b0")
        ax.bar(x + 0.2, pck, 0.4, label=f"PCK@{m.pck_alpha:g}", color="#dd8452")
    else:
        ax.bar(x, pck, 0.6, label=f"PCK@{m.pck_alpha:g}", color="#dd8452")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("score")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", ncol=2, frameon=False)
    ax.set_title("Per-keypoint accuracy")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_per_joint_error(errors: dict[str, float], path: str | Path) -> Path:
    """Bar chart of a 3D error per joint (mm), e.g. a lifting network's MPJPE."""
    plt = pyplot()
    names = list(errors)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names) + 2), 4.5), dpi=120)
    ax.bar(x, np.nan_to_num(list(errors.values())), 0.6, color="#4c72b0")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("MPJPE (mm)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Per-joint error (root-relative)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
