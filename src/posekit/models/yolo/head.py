"""The YOLO detection head and its pose variants, as the published files hold them.

Per feature level, decoupled branches predict a box (`cv2`: four side distances, each a
`reg_max`-bin distribution read by its expectation, or one value when `reg_max` is 1), class
logits (`cv3`) and, for pose models, every keypoint's x, y (and visibility logit) (`cv4`).
YOLOv8 uses plain 3x3 convolutions in its class branch ("legacy"), YOLO11 and YOLO26 depth-wise
ones. YOLO26's pose head ("Pose26") splits its keypoint branch into a shared trunk (`cv4`) and a
1x1 output (`cv4_kpts`) and decodes keypoints as `(raw + anchor) * stride`; YOLOv8/11 decode
`(2 * raw + anchor - 0.5) * stride` (anchors at cell centres in cell units). End-to-end models
(YOLO26) carry a second, one-to-one copy of the branches (`one2one_*`) whose top scores need no
NMS. The training-only parts of YOLO26 (keypoint sigmas and the RLE flow) are not built.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from posekit.models.blocks import ConvBNAct
from posekit.models.yolo.blocks import dwconv

#: What decode sees of a detect model's missing keypoints: fully confident (sigmoid = 1).
SURE_LOGIT = 30.0


class DFL(nn.Module):
    """Expectation of a `bins`-bin softmax distribution per box side (a fixed 1x1 convolution
    with weights 0 .. bins-1, as the files store it)."""

    def __init__(self, bins: int) -> None:
        super().__init__()
        self.bins = bins
        self.conv = nn.Conv2d(bins, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(bins, dtype=torch.float32).view(1, bins, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape  # (B, 4 * bins, A)
        return self.conv(x.view(b, 4, self.bins, a).transpose(2, 1).softmax(1)).view(b, 4, a)


def _branches(channels: list[int], hidden: int, c_out: int | None) -> nn.ModuleList:
    """Per level: two 3x3 convolutions and (unless `c_out` is None) a 1x1 output."""
    return nn.ModuleList(
        nn.Sequential(
            ConvBNAct(c, hidden, 3),
            ConvBNAct(hidden, hidden, 3),
            *([nn.Conv2d(hidden, c_out, 1)] if c_out is not None else []),
        )
        for c in channels
    )


def _class_branches(channels: list[int], hidden: int, nc: int, legacy: bool) -> nn.ModuleList:
    if legacy:
        return _branches(channels, hidden, nc)
    return nn.ModuleList(
        nn.Sequential(
            nn.Sequential(dwconv(c, c, 3), ConvBNAct(c, hidden, 1)),
            nn.Sequential(dwconv(hidden, hidden, 3), ConvBNAct(hidden, hidden, 1)),
            nn.Conv2d(hidden, nc, 1),
        )
        for c in channels
    )


class YOLOHead(nn.Module):
    """Box, class and keypoint branches over the feature levels.

    `forward` returns, per branch set, raw box (B, 4 * reg_max, A), class (B, nc, A) and
    keypoint (B, K * dims, A) tensors; `num_keypoints` 0 is a detect head.
    """

    def __init__(
        self,
        channels: list[int],
        nc: int,
        num_keypoints: int,
        kpt_dims: int,
        *,
        reg_max: int,
        legacy: bool,
        pose26: bool,
        end2end: bool,
    ) -> None:
        super().__init__()
        self.nc, self.nl, self.reg_max = nc, len(channels), reg_max
        self.num_keypoints, self.kpt_dims, self.pose26 = num_keypoints, kpt_dims, pose26
        c_box = max(16, channels[0] // 4, 4 * reg_max)
        c_cls = max(channels[0], min(nc, 100))
        self.cv2 = _branches(channels, c_box, 4 * reg_max)
        self.cv3 = _class_branches(channels, c_cls, nc, legacy)
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
        nk = num_keypoints * kpt_dims
        if nk and pose26:
            c_kpt = max(channels[0] // 4, num_keypoints * (kpt_dims + 2))
            self.cv4 = _branches(channels, c_kpt, None)
            self.cv4_kpts = nn.ModuleList(nn.Conv2d(c_kpt, nk, 1) for _ in channels)
        elif nk:
            self.cv4 = _branches(channels, max(channels[0] // 4, nk), nk)
        names = [n for n in ("cv2", "cv3", "cv4", "cv4_kpts") if hasattr(self, n)]
        if end2end:
            for n in names:
                setattr(self, f"one2one_{n}", copy.deepcopy(getattr(self, n)))

    @property
    def end2end(self) -> bool:
        return hasattr(self, "one2one_cv2")

    def forward(
        self, feats: list[torch.Tensor], one2one: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The raw outputs of one branch set: the one-to-one copy with `one2one` on an
        end-to-end head, else the one-to-many branches."""
        pre = "one2one_" if one2one and self.end2end else ""
        b = feats[0].shape[0]
        box_head, cls_head = getattr(self, pre + "cv2"), getattr(self, pre + "cv3")
        box = torch.cat(
            [box_head[i](f).view(b, 4 * self.reg_max, -1) for i, f in enumerate(feats)], 2
        )
        cls = torch.cat([cls_head[i](f).view(b, self.nc, -1) for i, f in enumerate(feats)], 2)
        nk = self.num_keypoints * self.kpt_dims
        if not nk:
            return box, cls, box.new_zeros(b, 0, box.shape[2])
        trunk = getattr(self, pre + "cv4")
        if self.pose26:
            out = getattr(self, pre + "cv4_kpts")
            kpt = [out[i](trunk[i](f)).view(b, nk, -1) for i, f in enumerate(feats)]
        else:
            kpt = [trunk[i](f).view(b, nk, -1) for i, f in enumerate(feats)]
        return box, cls, torch.cat(kpt, 2)

    def distances(self, box: torch.Tensor) -> torch.Tensor:
        """(B, 4, A) side distances in cells from the raw box output."""
        return self.dfl(box)

    def keypoints(
        self, kpt: torch.Tensor, cells: torch.Tensor, strides: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints (B, A, K, 2) in input pixels and visibility logits (B, A, K) from the raw
        (B, K * dims, A) output; `cells` (A, 2) are cell centres in cell units."""
        b, _, a = kpt.shape
        k = self.num_keypoints
        y = kpt.view(b, k, self.kpt_dims, a).permute(0, 3, 1, 2)  # (B, A, K, dims)
        c = cells[None, :, None, :]
        s = strides[None, :, None, None]
        xy = (y[..., :2] + c) * s if self.pose26 else (y[..., :2] * 2 + c - 0.5) * s
        vis = y[..., 2] if self.kpt_dims == 3 else torch.full_like(y[..., 0], SURE_LOGIT)
        return xy, vis
