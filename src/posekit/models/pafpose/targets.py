"""Training targets of pafpose, drawn from a batch's instances on the output grid.

Grid convention (rtpose's): cell (i, j) is centred on ((j + 0.5) * stride, (i + 0.5) * stride)
input pixels, so a point at x lies at x / stride - 0.5 cells.

- Heatmaps (B, K, H, W): a Gaussian of `sigma` cells centred on every labelled keypoint (not
  on its nearest cell: the peak's shape carries the sub-cell position), the maximum over
  people (`posekit.models.dense_targets`).
- Part affinity fields (B, 2L, H, W): for each limb (a -> b) of each person with both ends
  labelled, the unit vector from a to b on every cell within `limb_width` cells of its line
  and inside the segment's bounding box grown by `limb_width` (OpenPose's rule: a limb shorter
  than a cell, as a small face's, still covers the cells around it); where several people's
  limbs cover a cell, their vectors are averaged (OpenPose's rule). Channels 2l and 2l + 1
  are limb l's x and y.
- Mask (B, 1, H, W): 0 on the cells of people who have no labelled keypoint (boxes that mark
  someone nobody annotated, as COCO's crowds do): the network is neither rewarded nor punished
  for what it sees there.

Everything is vectorised over the batch's limbs and cells (in chunks of limbs, so memory stays
bounded in crowds).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from posekit.models.base import Targets
from posekit.models.dense_targets import gaussian_planes
from posekit.models.pafpose.limbs import Limbs

#: limb instances drawn at once (each touches every cell of its image: L x H x W floats)
_CHUNK = 256


@dataclass
class PafTargets:
    heat: torch.Tensor  # (B, K, H, W)
    paf: torch.Tensor  # (B, 2L, H, W)
    mask: torch.Tensor  # (B, 1, H, W) 1: supervised


def draw_targets(
    t: Targets, limbs: Limbs, k: int, size: tuple[int, int], stride: int, sigma: float,
    limb_width: float,
) -> PafTargets:  # fmt: skip
    h, w = size
    device = t.keypoints.device
    b = t.keypoints.shape[0]
    kp = t.keypoints[..., :k, :].float()
    labelled = (kp[..., 2] > 0) & t.mask[..., None]  # (B, M, K)
    cu, cv = kp[..., 0] / stride - 0.5, kp[..., 1] / stride - 0.5  # cell coordinates
    bi, mi, ki = labelled.nonzero(as_tuple=True)
    heat = gaussian_planes(cu[bi, mi, ki], cv[bi, mi, ki], bi * k + ki, b * k, size, sigma,
                           on_cell=False)  # fmt: skip

    pairs = torch.as_tensor(limbs.pairs, device=device)
    ends = labelled[:, :, pairs[:, 0]] & labelled[:, :, pairs[:, 1]]  # (B, M, L)
    lb, lm, ll = ends.nonzero(as_tuple=True)
    ax, ay = cu[lb, lm, pairs[ll, 0]], cv[lb, lm, pairs[ll, 0]]
    bx, by = cu[lb, lm, pairs[ll, 1]], cv[lb, lm, pairs[ll, 1]]
    n_limbs = limbs.count
    total = torch.zeros(b * n_limbs, 2, h * w, device=device)
    count = torch.zeros(b * n_limbs, h * w, device=device)
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32),
                            indexing="ij")  # fmt: skip
    xs, ys = xs.reshape(-1), ys.reshape(-1)
    for s in range(0, len(lb), _CHUNK):  # chunks of limbs; cells are vectorised
        sl = slice(s, s + _CHUNK)
        dx, dy = bx[sl] - ax[sl], by[sl] - ay[sl]
        length = torch.hypot(dx, dy)
        ok = length > 1e-6
        ux, uy = (
            torch.where(ok, dx / length.clamp(min=1e-6), 0),
            torch.where(ok, dy / length.clamp(min=1e-6), 0),
        )
        px, py = xs[None] - ax[sl, None], ys[None] - ay[sl, None]  # (n, H*W)
        across = (px * uy[:, None] - py * ux[:, None]).abs()
        # OpenPose's rule: within `limb_width` of the line, inside the segment's box grown by
        # `limb_width` (so a limb shorter than a cell, a small face's, still has its field)
        lo_x = torch.minimum(ax[sl], bx[sl])[:, None] - limb_width
        hi_x = torch.maximum(ax[sl], bx[sl])[:, None] + limb_width
        lo_y = torch.minimum(ay[sl], by[sl])[:, None] - limb_width
        hi_y = torch.maximum(ay[sl], by[sl])[:, None] + limb_width
        boxed = (xs[None] >= lo_x) & (xs[None] <= hi_x) & (ys[None] >= lo_y) & (ys[None] <= hi_y)
        on = boxed & (across <= limb_width) & ok[:, None]
        plane = lb[sl] * n_limbs + ll[sl]
        count.index_add_(0, plane, on.float())
        vec = torch.stack([ux[:, None] * on, uy[:, None] * on], 1)  # (n, 2, H*W)
        total.index_add_(0, plane, vec)
    paf = total / count.clamp(min=1)[:, None]
    paf = paf.view(b, n_limbs * 2, h, w)

    # no labelled keypoint: an unannotated person, whose cells are not supervised
    empty = t.mask & ~labelled.any(-1)
    mask = torch.ones(b, 1, h, w, device=device)
    eb, em = empty.nonzero(as_tuple=True)
    if len(eb):
        box = t.boxes[eb, em].float() / stride - 0.5  # cell coordinates of the corners
        inside = ((xs[None] >= box[:, 0:1]) & (xs[None] <= box[:, 2:3])
                  & (ys[None] >= box[:, 1:2]) & (ys[None] <= box[:, 3:4])).float()  # fmt: skip
        hit = torch.zeros(b, h * w, device=device).index_add_(0, eb, inside)
        mask = (hit == 0).float().view(b, 1, h, w)
    return PafTargets(heat.view(b, k, h, w), paf, mask)


def flip_maps(
    heat: torch.Tensor, paf: torch.Tensor, flip_idx: torch.Tensor, limbs: Limbs
) -> tuple[torch.Tensor, torch.Tensor]:
    """The maps of the horizontally mirrored input: mirrored along W, heat channels permuted by
    the schema's flip permutation, each limb's field moved to its mirror limb with x negated
    (and both components negated where the mirror limb runs the other way)."""
    heat = heat.flip(-1)[:, flip_idx]
    b, c, h, w = paf.shape
    p = paf.flip(-1).view(b, c // 2, 2, h, w)
    sign = torch.as_tensor(limbs.flip_sign, device=paf.device, dtype=paf.dtype)
    p = p * torch.stack([-sign, sign], -1)[None, :, :, None, None]
    out = torch.empty_like(p)
    out[:, torch.as_tensor(limbs.flip, device=paf.device)] = p
    return heat, out.view(b, c, h, w)
