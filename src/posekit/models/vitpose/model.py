"""ViTPose: a plain Vision Transformer and a light heatmap decoder, run on one crop per
instance (top-down).

Layout: blocks (patch embedding, attention, MLP, transformer block) -> decoders (classic, simple)
-> model class -> config table -> registered sizes. The architecture follows the ViTPose paper
(Xu et al., 2022): a 256x192 crop is cut into 16x16 patches with 2 pixels of padding (16x12
tokens), a ViT encodes them, and the decoder upsamples the token map 4x into one heatmap per
keypoint (64x48), decoded with UDP + DARK (`posekit.models.heatmap_codec`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from posekit.models.registry import register_family, register_sizes
from posekit.models.topdown import HeatmapTopDownModel, TopDownConfig
from posekit.schema import KeypointSchema
from posekit.utils.bounds import ranged
from posekit.utils.errors import UserError


# ---------------------------------------------------------------------- blocks
class PatchEmbed(nn.Module):
    """Non-overlapping-ish patches: a conv with kernel = stride = patch size and 2 pixels of
    padding (ViTPose's choice, which gives 16x12 tokens for a 256x192 crop)."""

    def __init__(self, dim: int, patch: int, padding: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)  # (B, C, h, w)


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, N, C/heads)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth: drops a residual branch per sample during training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, qkv_bias: bool, eps: float,
                 drop_path: float) -> None:  # fmt: skip
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ClassicDecoder(nn.Module):
    """Two rounds of 4x4 transposed conv (stride 2) + BatchNorm + ReLU, then a 1x1 conv."""

    def __init__(self, dim: int, channels: int, k: int) -> None:
        super().__init__()
        self.deconv1 = nn.ConvTranspose2d(dim, channels, 4, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.deconv2 = nn.ConvTranspose2d(channels, channels, 4, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.final = nn.Conv2d(channels, k, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.deconv1(x)))
        return self.final(F.relu(self.bn2(self.deconv2(x))))


class SimpleDecoder(nn.Module):
    """ReLU, bilinear 4x upsampling, then a 3x3 conv."""

    def __init__(self, dim: int, k: int) -> None:
        super().__init__()
        self.final = nn.Conv2d(dim, k, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(F.relu(x), scale_factor=4, mode="bilinear", align_corners=False)
        return self.final(x)


# ---------------------------------------------------------------------- model
@dataclass(frozen=True)
class ViTPoseConfig(TopDownConfig):
    """Size, input and codec settings of a ViTPose model (the crop settings are
    `TopDownConfig`'s)."""

    embed_dim: int = ranged(768, 8, 8192)
    depth: int = ranged(12, 1, 128)
    num_heads: int = ranged(12, 1, 256)
    mlp_ratio: float = ranged(4.0, 0.25, 16)
    qkv_bias: bool = True
    layer_norm_eps: float = ranged(1e-6, 0, 1)
    drop_path: float = ranged(0.3, 0, 1)
    patch_size: int = ranged(16, 1, 64)
    patch_padding: int = ranged(2, 0, 64)
    input_size: tuple[int, int] = ranged((256, 192), 16, 4096)  # crop (height, width)
    decoder: str = "classic"  # or "simple"
    decoder_channels: int = ranged(256, 1, 8192)
    sigma: float = ranged(2.0, 0.01, 1000)  # of the target Gaussians, in heatmap pixels
    layer_decay: float = ranged(0.75, 0, 1)  # layer-wise learning-rate decay when training
    name: str = "vitpose"

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(height, width) of the heatmaps: 4x the token grid."""
        h, w = self.token_grid
        return 4 * h, 4 * w

    @property
    def token_grid(self) -> tuple[int, int]:
        p, pad = self.patch_size, self.patch_padding
        return tuple((s + 2 * pad - p) // p + 1 for s in self.input_size)  # type: ignore[return-value]


@register_family("vitpose")
class ViTPose(HeatmapTopDownModel):
    """ViTPose for given keypoint schemas: one heatmap channel per keypoint slot.

    Input: (B, 3, H, W) RGB crops in 0..1 of `config.input_size`; output: (B, K, H/4, W/4)
    heatmaps; the flip test is `merge_flip_test`, decoding to crop pixels `decode_crops`.
    """

    config_class: ClassVar[type] = ViTPoseConfig

    def __init__(self, cfg: ViTPoseConfig, schemas: list[KeypointSchema], names: list[str]):
        super().__init__()
        if not schemas:
            raise UserError("vitpose needs at least one keypoint schema")
        if cfg.decoder not in ("classic", "simple"):
            raise UserError(f"unknown decoder {cfg.decoder!r}: use 'classic' or 'simple'")
        self.config = cfg
        self.schemas = list(schemas)
        self.names = list(names)
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed(d, cfg.patch_size, cfg.patch_padding)
        h, w = cfg.token_grid
        # one extra (class-token) slot, as the published checkpoints have; it is added to all
        self.pos_embed = nn.Parameter(torch.zeros(1, h * w + 1, d))
        rates = [cfg.drop_path * i / max(1, cfg.depth - 1) for i in range(cfg.depth)]
        self.blocks = nn.ModuleList(
            Block(d, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.layer_norm_eps, r)
            for r in rates
        )
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        k = self.num_keypoints
        self.head: nn.Module = (ClassicDecoder(d, cfg.decoder_channels, k)
                                if cfg.decoder == "classic" else SimpleDecoder(d, k))  # fmt: skip
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
        final = self.head.final
        nn.init.normal_(final.weight, std=0.001)
        nn.init.zeros_(final.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised crops -> (B, C, h, w) token map."""
        t = self.patch_embed(x)  # (B, C, h, w)
        b, c, h, w = t.shape
        t = t.flatten(2).transpose(1, 2)  # (B, hw, C)
        t = t + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t).transpose(1, 2).reshape(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) RGB crops in 0..1 -> (B, K, H/4, W/4) heatmaps."""
        return self.head(self.features(self.normalise(x)))

    @classmethod
    def scale_config(cls, cfg: ViTPoseConfig, width: float, depth: float) -> ViTPoseConfig:
        """width scales the embedding (kept a multiple of the head count) and the decoder's
        channels, depth the number of blocks."""
        heads = cfg.num_heads
        return replace(
            cfg,
            embed_dim=max(heads, round(cfg.embed_dim * width / heads) * heads),
            decoder_channels=max(16, round(cfg.decoder_channels * width)),
            depth=max(1, round(cfg.depth * depth)),
        )

    @classmethod
    def from_foreign(
        cls,
        state: dict[str, torch.Tensor],
        hf_config: dict[str, Any] | None,
        schema: KeypointSchema | None,
        **overrides: Any,
    ) -> tuple[ViTPose, str] | None:
        """Official ViTPose, MMPose 1.x and transformers weights (see `weights`)."""
        from posekit.models.vitpose import weights as w

        if hf_config is not None and hf_config.get("model_type") not in (None, "vitpose"):
            return None
        layout = w.detect_layout(state)
        if layout is None:
            return None
        if (
            layout == "transformers"
            and (hf_config or {}).get("backbone_config", {}).get("num_experts", 1) > 1
        ):
            raise UserError("ViTPose+ (mixture-of-experts) weights are not supported yet")
        converted = w.convert_state_dict(w.drop_pretraining_extras(state, layout), layout)
        if hf_config is not None:
            cfg = w.config_from_transformers(hf_config, **overrides)
        else:
            cfg = w.config_from_shapes(converted, **overrides)
        return w.build_from_state(converted, cfg, schema), layout

    @classmethod
    def for_graph(
        cls, output_names: list[str], input_shape: list[Any], schema: KeypointSchema
    ) -> ViTPose | None:
        if output_names != ["heatmaps"]:
            return None
        h, w = input_shape[2:4]
        if not (isinstance(h, int) and isinstance(w, int)):
            raise UserError("a heatmap graph without posekit metadata needs a fixed crop size")
        # the smallest network: its weights are never used, only the decoder and settings
        cfg = ViTPoseConfig(input_size=(h, w), embed_dim=16, depth=1, num_heads=1,
                            name="vitpose (onnx)")  # fmt: skip
        return cls(cfg, [schema], [schema.name])

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW groups with layer-wise learning-rate decay (ViTPose's recipe): block i of n
        learns at `layer_decay ** (n - i)` of the rate, the embeddings at the smallest, the
        decoder at the full rate; norms, biases and position embeddings get no weight decay."""
        n = self.config.depth
        groups: dict[tuple[float, bool], list[torch.nn.Parameter]] = {}
        for name, p in self.named_parameters():
            if name.startswith(("patch_embed.", "pos_embed")):
                depth = 0
            elif name.startswith("blocks."):
                depth = int(name.split(".")[1]) + 1
            else:
                depth = n + 1
            scale = self.config.layer_decay ** (n + 1 - depth)
            no_decay = p.ndim <= 1 or name.endswith(".bias") or name == "pos_embed"
            groups.setdefault((scale, no_decay), []).append(p)
        return [{"params": ps, "lr_scale": s, "weight_decay": 0.0 if nd else weight_decay}
                for (s, nd), ps in groups.items()]  # fmt: skip


# ---------------------------------------------------------------------- sizes
SIZES: dict[str, ViTPoseConfig] = {
    "s": ViTPoseConfig(embed_dim=384, depth=12, num_heads=12, drop_path=0.1, name="vitpose-s"),
    "b": ViTPoseConfig(embed_dim=768, depth=12, num_heads=12, drop_path=0.3, name="vitpose-b"),
    "l": ViTPoseConfig(
        embed_dim=1024, depth=24, num_heads=16, drop_path=0.5, layer_decay=0.8, name="vitpose-l"
    ),
    "h": ViTPoseConfig(
        embed_dim=1280, depth=32, num_heads=16, drop_path=0.55, layer_decay=0.85, name="vitpose-h"
    ),
}


register_sizes(ViTPose, SIZES)
