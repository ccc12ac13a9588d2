"""From heatmaps and part affinity fields to people (OpenPose's grouping), vectorised.

1. Peaks: local maxima of each heatmap (3 x 3 max-pool NMS) above `peak_threshold`, refined
   to sub-cell positions by a parabola through the logarithms of each peak and its neighbours
   (per axis; exact for a Gaussian peak).
2. Limb scores: for each limb of the grouping tree, every pair of candidate peaks (a, b) at
   once: the field sampled at `samples` points along the segment (bilinear), dotted with the
   segment's direction; a pair is a candidate when at least `min_aligned` of the samples exceed
   `paf_threshold`, scored by the mean plus a penalty for segments longer than half the map.
3. Matching, per limb: greedy in score order with each peak used once (OpenPose's rule), done
   as rounds of "mutually best" pairs, which picks exactly the pairs the greedy order picks.
4. Assembly, OpenPose's: the limbs of the tree first (`posekit.models.pafpose.limbs`), then
   the skeleton's other edges; a pair with one end placed adds the other end to that person
   (where the person has no keypoint of that type yet), a pair with neither starts a new
   person, and a pair whose ends lie in two people whose keypoints do not overlap merges them:
   a person split where a keypoint between was not found (unlabelled, undetected) is joined
   again by another edge.
5. People with fewer than `min_keypoints` keypoints are dropped; a person's score is the mean
   of its peaks' and limbs' scores times the fraction of the schema it found; `max_det` best.

Loops run over limbs (the skeleton's edges), matching rounds and the rare merges, never over
pixels or candidate pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from posekit.models.pafpose.limbs import Limbs
from posekit.ops.instances import Instances


@dataclass(frozen=True)
class GroupingSettings:
    peak_threshold: float = 0.1  # heatmap value a peak must exceed
    paf_threshold: float = 0.05  # field alignment a sample must exceed
    min_aligned: float = 0.8  # fraction of a segment's samples that must exceed it
    samples: int = 10  # points sampled along a candidate segment
    min_keypoints: int = 3  # people with fewer found keypoints are dropped
    max_peaks: int = 64  # per keypoint type (the strongest)


def find_peaks(heat: torch.Tensor, threshold: float, max_peaks: int) -> list[torch.Tensor]:
    """Per keypoint type, (P, 3) peaks x, y (cells, sub-cell refined), value, strongest first."""
    k = heat.shape[0]
    pooled = F.max_pool2d(heat[None], 3, 1, 1)[0]
    is_peak = (heat == pooled) & (heat > threshold)
    # a plateau (a point exactly between cells) is one peak: its first cell in raster order
    low = F.pad(heat[None], (1, 1, 1, 1), value=-torch.inf)[0]
    h, w = heat.shape[-2:]
    for dy, dx in ((0, -1), (-1, -1), (-1, 0), (-1, 1)):  # the neighbours that come before
        is_peak &= heat > low[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
    padded = F.pad(heat[None], (1, 1, 1, 1), mode="replicate")[0]
    kk, ii, jj = is_peak.nonzero(as_tuple=True)
    c = heat[kk, ii, jj]
    left, right = padded[kk, ii + 1, jj], padded[kk, ii + 1, jj + 2]
    up, down = padded[kk, ii, jj + 1], padded[kk, ii + 2, jj + 1]

    def vertex(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # the parabola through the logarithms: exact for a Gaussian peak
        la, lc, lb = (torch.log(v.clamp(min=1e-10)) for v in (a, c, b))
        curve = la - 2 * lc + lb
        return torch.where(curve < -1e-9, 0.5 * (la - lb) / curve, 0).clamp(-0.5, 0.5)

    x, y = jj.float() + vertex(left, right), ii.float() + vertex(up, down)
    out = []
    order = torch.argsort(c, descending=True)
    kk, x, y, c = kk[order], x[order], y[order], c[order]
    for t in range(k):  # the schema's keypoint types
        sel = kk == t
        out.append(torch.stack([x[sel], y[sel], c[sel]], 1)[:max_peaks])
    return out


def _sample(field: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of (2, H, W) `field` at cell coordinates (any shape) -> (2, *shape)."""
    h, w = field.shape[-2:]
    gx = (x + 0.5) / w * 2 - 1  # align_corners=False: cell j spans [j, j + 1) around j + 0.5
    gy = (y + 0.5) / h * 2 - 1
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)[None, None]
    out = F.grid_sample(field[None], grid, mode="bilinear", padding_mode="border",
                        align_corners=False)  # fmt: skip
    return out[0, :, 0].view(2, *x.shape)


def limb_scores(
    field: torch.Tensor, a: torch.Tensor, b: torch.Tensor, s: GroupingSettings
) -> torch.Tensor:
    """(Pa, Pb) scores of every pair of peaks (-inf: not a candidate) for one limb's field
    (2, H, W); a, b are (P, 3) peaks."""
    h = field.shape[-2]
    if len(a) == 0 or len(b) == 0:
        return torch.full((len(a), len(b)), -torch.inf, device=field.device)
    dx = b[None, :, 0] - a[:, None, 0]
    dy = b[None, :, 1] - a[:, None, 1]
    length = torch.hypot(dx, dy).clamp(min=1e-6)
    t = torch.linspace(0, 1, s.samples, device=field.device)
    px = a[:, None, None, 0] + t * dx[..., None]  # (Pa, Pb, n)
    py = a[:, None, None, 1] + t * dy[..., None]
    vx, vy = _sample(field, px, py)
    align = (vx * dx[..., None] + vy * dy[..., None]) / length[..., None]
    score = align.mean(-1) + torch.clamp(0.5 * h / length - 1, max=0)
    ok = ((align > s.paf_threshold).float().mean(-1) >= s.min_aligned) & (score > 0)
    return torch.where(ok, score, -torch.inf)


def greedy_match(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs (rows, cols) chosen greedily in descending score, each row and column once,
    -inf never: rounds in which every pair that is the best of its row and its column is
    taken (those are exactly the next pairs the greedy order would take)."""
    s = scores.clone()
    rows, cols = [], []
    while s.numel() and torch.isfinite(s).any():  # at most min(Pa, Pb) rounds
        best_in_row = s == s.max(1, keepdim=True).values
        best_in_col = s == s.max(0, keepdim=True).values
        r, c = (best_in_row & best_in_col & torch.isfinite(s)).nonzero(as_tuple=True)
        # exact ties: one pair per row (nonzero is row-major), then one per column
        first_of_row = torch.ones_like(r, dtype=torch.bool)
        first_of_row[1:] = r[1:] != r[:-1]
        r, c = r[first_of_row], c[first_of_row]
        uniq, inverse = torch.unique(c, return_inverse=True)
        first = torch.full((len(uniq),), len(c), dtype=torch.long, device=s.device)
        first.scatter_reduce_(0, inverse, torch.arange(len(c), device=s.device), "amin")
        r, c = r[first], c[first]
        rows.append(r)
        cols.append(c)
        s[r, :] = -torch.inf
        s[:, c] = -torch.inf
    if not rows:
        empty = torch.zeros(0, dtype=torch.long, device=scores.device)
        return empty, empty
    return torch.cat(rows), torch.cat(cols)


def group_people(
    heat: torch.Tensor, paf: torch.Tensor, limbs: Limbs, s: GroupingSettings
) -> Instances:
    """People of one image from its (K, H, W) heatmaps and (2L, H, W) fields, in grid (cell)
    coordinates: keypoints (N, K, 3) x, y, confidence (all 0 where not found), boxes around
    the found keypoints, class 0, the person's score."""
    k = heat.shape[0]
    device = heat.device
    peaks = find_peaks(heat, s.peak_threshold, s.max_peaks)
    # person_of[t][p]: the person that peak p of keypoint type t belongs to (-1: none)
    person_of = [torch.full((len(p),), -1, dtype=torch.long, device=device) for p in peaks]
    members = torch.zeros(0, k, dtype=torch.long, device=device)  # peak index per type, -1
    limb_sum = torch.zeros(0, device=device)
    limb_count = torch.zeros(0, device=device)
    tree = limbs.tree.tolist()
    for limb in tree + [e for e in range(limbs.count) if e not in tree]:
        a_type, b_type = (int(v) for v in limbs.pairs[limb])
        scores = limb_scores(paf[2 * limb : 2 * limb + 2], peaks[a_type], peaks[b_type], s)
        ia, ib = greedy_match(scores)
        conn = scores[ia, ib]
        oa, ob = person_of[a_type][ia], person_of[b_type][ib]
        # one end placed: the other joins its person, where that person has no such keypoint
        # (each person owns at most one peak per type, so no person is joined twice here)
        for owner, t, peak, other in ((oa, b_type, ib, ob), (ob, a_type, ia, oa)):
            join = (owner >= 0) & (other < 0)
            join[join.clone()] = members[owner[join], t] < 0
            members[owner[join], t] = peak[join]
            person_of[t][peak[join]] = owner[join]
            limb_sum[owner[join]] += conn[join]
            limb_count[owner[join]] += 1
        # neither placed: a new person
        new = (oa < 0) & (ob < 0)
        n_new = int(new.sum())
        if n_new:
            ids = torch.arange(len(members), len(members) + n_new, device=device)
            rows = torch.full((n_new, k), -1, dtype=torch.long, device=device)
            rows[:, a_type], rows[:, b_type] = ia[new], ib[new]
            members = torch.cat([members, rows])
            person_of[a_type][ia[new]] = ids
            person_of[b_type][ib[new]] = ids
            limb_sum = torch.cat([limb_sum, conn[new]])
            limb_count = torch.cat([limb_count, torch.ones(n_new, device=device)])
        # both placed, in two people: one person split where a keypoint between was not
        # found, joined again when their keypoints do not overlap (OpenPose's merge). Rare
        # (fragments only): a loop over those pairs.
        for i in ((oa >= 0) & (ob >= 0) & (oa != ob)).nonzero().flatten().tolist():
            x, y = int(person_of[a_type][ia[i]]), int(person_of[b_type][ib[i]])
            if x == y or ((members[x] >= 0) & (members[y] >= 0)).any():
                continue
            moved = members[y] >= 0
            for t in moved.nonzero().flatten().tolist():
                person_of[t][members[y, t]] = x
            members[x, moved] = members[y, moved]
            members[y] = -1
            limb_sum[x] += limb_sum[y] + conn[i]
            limb_count[x] += limb_count[y] + 1
    # lone peaks never joined anything: not people (nor the emptied rows of merged ones)
    n = len(members)
    kp = torch.zeros(n, k, 3, device=device)
    for t in range(k):  # keypoint types
        found = members[:, t] >= 0
        kp[found, t] = peaks[t][members[found, t]]
    found = (members >= 0).sum(1)
    keep = found >= min(s.min_keypoints, k)
    peak_sum = kp[..., 2].sum(1)
    quality = (peak_sum + limb_sum) / (found + limb_count).clamp(min=1)
    scores = quality * found / k
    kp = kp[keep]
    sure = kp[..., 2:] > 0
    big = torch.finfo(kp.dtype).max
    lo = torch.where(sure, kp[..., :2], big).amin(1)
    hi = torch.where(sure, kp[..., :2], -big).amax(1)
    classes = torch.zeros(len(kp), dtype=torch.long, device=device)
    return Instances(
        boxes=torch.cat([lo, hi], 1).reshape(-1, 4),
        keypoints=kp,
        classes=classes,
        scores=scores[keep],
    )
