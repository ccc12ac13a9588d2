"""The blocks of Ultralytics' YOLOv8, YOLO11 and YOLO26 networks, written from their published
architecture descriptions (the model YAMLs and the papers' block diagrams).

Sub-module names (`cv1`, `cv2`, `m`, `attn`, `ffn` ...) are those of the published files'
tensors, so a file's weights load by name with no renaming table. Every convolution is
posekit's `ConvBNAct` (BatchNorm eps 1e-3, SiLU or none), which inference folds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from posekit.models.blocks import ConvBNAct


def dwconv(c_in: int, c_out: int, k: int) -> ConvBNAct:
    """Depth-wise convolution: one group per gcd(c_in, c_out) channels (YOLO's `DWConv`)."""
    return ConvBNAct(c_in, c_out, k, groups=math.gcd(c_in, c_out))


class Bottleneck(nn.Module):
    """Two convolutions (kernels `k`, hidden width `c_out * e`) and a residual when the widths
    allow it."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        shortcut: bool = True,
        k: tuple[int, int] = (3, 3),
        e: float = 0.5,
    ) -> None:
        super().__init__()
        hidden = int(c_out * e)
        self.cv1 = ConvBNAct(c_in, hidden, k[0])
        self.cv2 = ConvBNAct(hidden, c_out, k[1])
        self.add = shortcut and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP block with two convolutions: split in two halves, chain `n` blocks on the second,
    and fuse every intermediate output (YOLOv8)."""

    def __init__(
        self, c_in: int, c_out: int, n: int = 1, shortcut: bool = False, e: float = 0.5
    ) -> None:
        super().__init__()
        self.c = int(c_out * e)
        self.cv1 = ConvBNAct(c_in, 2 * self.c, 1)
        self.cv2 = ConvBNAct((2 + n) * self.c, c_out, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, e=1.0) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            parts.append(block(parts[-1]))
        return self.cv2(torch.cat(parts, 1))


class C3k(nn.Module):
    """CSP block with three convolutions and `n` bottlenecks of kernel `k` (YOLO11's inner
    block at sizes m, l and x)."""

    def __init__(
        self, c_in: int, c_out: int, n: int = 2, shortcut: bool = True, e: float = 0.5, k: int = 3
    ) -> None:
        super().__init__()
        hidden = int(c_out * e)
        self.cv1 = ConvBNAct(c_in, hidden, 1)
        self.cv2 = ConvBNAct(c_in, hidden, 1)
        self.cv3 = ConvBNAct(2 * hidden, c_out, 1)
        self.m = nn.Sequential(
            *(Bottleneck(hidden, hidden, shortcut, (k, k), 1.0) for _ in range(n))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat([self.m(self.cv1(x)), self.cv2(x)], 1))


class C3k2(C2f):
    """C2f whose inner blocks are plain bottlenecks, `C3k` blocks (`c3k`), or a bottleneck and
    an attention block (`attn`, YOLO26's last neck block)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        n: int = 1,
        c3k: bool = False,
        e: float = 0.5,
        attn: bool = False,
        shortcut: bool = True,
    ) -> None:
        super().__init__(c_in, c_out, n, shortcut, e)
        c = self.c
        self.m = nn.ModuleList(
            nn.Sequential(Bottleneck(c, c, shortcut), PSABlock(c, num_heads=max(c // 64, 1)))
            if attn
            else C3k(c, c, 2, shortcut)
            if c3k
            else Bottleneck(c, c, shortcut)
            for _ in range(n)
        )


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: `n` chained max-pools of kernel `k` concatenated. YOLO26's
    variant has no activation after its first convolution and adds its input back."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        k: int = 5,
        n: int = 3,
        shortcut: bool = False,
        act: bool = True,
    ) -> None:
        super().__init__()
        hidden = c_in // 2
        self.cv1 = ConvBNAct(c_in, hidden, 1, act=act)
        self.cv2 = ConvBNAct(hidden * (n + 1), c_out, 1)
        self.m = nn.MaxPool2d(k, 1, k // 2)
        self.n = n
        self.add = shortcut and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [self.cv1(x)]
        for _ in range(self.n):
            parts.append(self.m(parts[-1]))
        y = self.cv2(torch.cat(parts, 1))
        return x + y if self.add else y


class Attention(nn.Module):
    """Multi-head self-attention over the positions of a feature map, with a depth-wise 3x3
    positional term on the values; keys and queries are `attn_ratio` as wide as values."""

    def __init__(self, dim: int, num_heads: int = 8, attn_ratio: float = 0.5) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim**-0.5
        self.qkv = ConvBNAct(dim, dim + 2 * self.key_dim * num_heads, 1, act=False)
        self.proj = ConvBNAct(dim, dim, 1, act=False)
        self.pe = ConvBNAct(dim, dim, 3, groups=dim, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(x).view(b, self.num_heads, 2 * self.key_dim + self.head_dim, h * w)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.head_dim], dim=2)
        attn = ((q * self.scale).transpose(-2, -1) @ k).softmax(dim=-1)  # (B, heads, N, N)
        y = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(y)


class PSABlock(nn.Module):
    """Attention then a two-layer convolutional feed-forward, each with a residual."""

    def __init__(self, c: int, attn_ratio: float = 0.5, num_heads: int = 4) -> None:
        super().__init__()
        self.attn = Attention(c, num_heads, attn_ratio)
        self.ffn = nn.Sequential(ConvBNAct(c, 2 * c, 1), ConvBNAct(2 * c, c, 1, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ffn(x)


class C2PSA(nn.Module):
    """CSP block of `n` attention blocks on half the channels (YOLO11's and YOLO26's last
    backbone block)."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, e: float = 0.5) -> None:
        super().__init__()
        if c_in != c_out:
            raise ValueError(f"C2PSA keeps its width ({c_in} in, {c_out} out)")
        self.c = int(c_in * e)
        self.cv1 = ConvBNAct(c_in, 2 * self.c, 1)
        self.cv2 = ConvBNAct(2 * self.c, c_in, 1)
        self.m = nn.Sequential(
            *(PSABlock(self.c, num_heads=max(self.c // 64, 1)) for _ in range(n))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat([a, self.m(b)], 1))


class Concat(nn.Module):
    """Concatenation of several earlier layers' outputs along the channels."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, 1)
