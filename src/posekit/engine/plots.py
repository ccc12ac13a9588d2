"""Training curves: losses and validation metrics per epoch, from results.csv rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from posekit.utils.extras import pyplot


def plot_results(history: list[dict[str, Any]], path: str | Path) -> Path:
    """One panel per loss and per metric, against the epoch."""
    plt = pyplot()
    keys = [k for k in dict.fromkeys(k for r in history for k in r) if k not in ("epoch", "lr")]
    n = len(keys)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), dpi=110, squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        pts = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", markersize=3, linewidth=1.5)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
