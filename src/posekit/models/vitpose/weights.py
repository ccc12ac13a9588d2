"""Published ViTPose weights in posekit: three key layouts mapped onto posekit's names.

- **transformers** (`VitPoseForPoseEstimation`): `backbone.embeddings...`,
  `backbone.encoder.layer.N.attention.attention.{query,key,value}`, `head.deconv1` ...;
  its `config.json` gives the architecture (dims, heads, LayerNorm eps, decoder type).
- **official ViTPose** (MMPose 0.x): `backbone.patch_embed.proj`, `backbone.blocks.N.attn.qkv`,
  `backbone.last_norm`, `keypoint_head.deconv_layers.{0,1,3,4}`, `keypoint_head.final_layer`.
- **MMPose 1.x** (mmpretrain's ViT): `backbone.patch_embed.projection`,
  `backbone.layers.N.{ln1,attn.qkv,attn.proj,ln2,ffn.layers.0.0,ffn.layers.1}`, `backbone.ln1`,
  `head.deconv_layers...`, `head.final_layer`.

- **MAE / timm ViT backbones** (`patch_embed.proj`, `pos_embed` with a class token on a square
  grid, `blocks.N...`, `norm`): the backbone only, to fine-tune from; the position embeddings
  are resized (bicubic) to the crop's token grid and the decoder is new.

Without a config (the `.pth` layouts), the architecture comes from tensor shapes (width,
depth, keypoint count, decoder type) plus the family's size table for what tensors do not hold
(attention heads by width; LayerNorm eps 1e-6, the ViTPose code's), overridable by the caller.
Names mislead (mmpretrain's "small" is not ViTPose-S), so shapes decide.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from posekit.models.vitpose.model import SIZES, ViTPose, ViTPoseConfig
from posekit.schema import KeypointSchema
from posekit.utils.bounds import meta_build
from posekit.utils.errors import UserError

Rule = tuple[str, str]

#: Regex rules (applied in order, first match wins) from each layout to posekit's names.
LAYOUT_RULES: dict[str, list[Rule]] = {
    "official": [
        (r"^backbone\.patch_embed\.proj\.", "patch_embed.proj."),
        (r"^backbone\.pos_embed$", "pos_embed"),
        (r"^backbone\.blocks\.(\d+)\.", r"blocks.\1."),
        (r"^backbone\.last_norm\.", "norm."),
        (r"^keypoint_head\.deconv_layers\.0\.", "head.deconv1."),
        (r"^keypoint_head\.deconv_layers\.1\.", "head.bn1."),
        (r"^keypoint_head\.deconv_layers\.3\.", "head.deconv2."),
        (r"^keypoint_head\.deconv_layers\.4\.", "head.bn2."),
        (r"^keypoint_head\.final_layer\.", "head.final."),
    ],
    "mmpose": [
        (r"^backbone\.patch_embed\.projection\.", "patch_embed.proj."),
        (r"^backbone\.pos_embed$", "pos_embed"),
        (r"^backbone\.layers\.(\d+)\.ln1\.", r"blocks.\1.norm1."),
        (r"^backbone\.layers\.(\d+)\.ln2\.", r"blocks.\1.norm2."),
        (r"^backbone\.layers\.(\d+)\.attn\.", r"blocks.\1.attn."),
        (r"^backbone\.layers\.(\d+)\.ffn\.layers\.0\.0\.", r"blocks.\1.mlp.fc1."),
        (r"^backbone\.layers\.(\d+)\.ffn\.layers\.1\.", r"blocks.\1.mlp.fc2."),
        (r"^backbone\.(ln1|pre_norm|norm)\.", "norm."),
        (r"^head\.deconv_layers\.0\.", "head.deconv1."),
        (r"^head\.deconv_layers\.1\.", "head.bn1."),
        (r"^head\.deconv_layers\.3\.", "head.deconv2."),
        (r"^head\.deconv_layers\.4\.", "head.bn2."),
        (r"^head\.final_layer\.", "head.final."),
    ],
    "mae": [
        (r"^patch_embed\.proj\.", "patch_embed.proj."),
        (r"^pos_embed$", "pos_embed"),
        (r"^blocks\.(\d+)\.", r"blocks.\1."),
        (r"^(norm|fc_norm)\.", "norm."),
    ],
    "transformers": [
        (r"^backbone\.embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
        (r"^backbone\.embeddings\.position_embeddings$", "pos_embed"),
        (r"^backbone\.encoder\.layer\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
        (r"^backbone\.encoder\.layer\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
        (r"^backbone\.encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attn.proj."),
        (r"^backbone\.encoder\.layer\.(\d+)\.mlp\.", r"blocks.\1.mlp."),
        (r"^backbone\.layernorm\.", "norm."),
        (r"^head\.deconv1\.", "head.deconv1."),
        (r"^head\.batchnorm1\.", "head.bn1."),
        (r"^head\.deconv2\.", "head.deconv2."),
        (r"^head\.batchnorm2\.", "head.bn2."),
        (r"^head\.conv\.", "head.final."),
    ],
}

#: A key that only each layout has, to recognise it.
LAYOUT_MARKERS: dict[str, str] = {
    "official": "backbone.patch_embed.proj.weight",
    "mmpose": "backbone.patch_embed.projection.weight",
    "transformers": "backbone.embeddings.patch_embeddings.projection.weight",
    "mae": "patch_embed.proj.weight",
}

#: Attention heads by embedding width (the size table; heads are not in the tensors).
HEADS_BY_WIDTH = {cfg.embed_dim: cfg.num_heads for cfg in SIZES.values()}


def detect_layout(state: dict[str, torch.Tensor]) -> str | None:
    """'official', 'mmpose', 'transformers' or 'mae' (a backbone) for a state dict, else
    None. A posekit ViTPose state dict (with `head.final`) is not foreign: None."""
    for name, marker in LAYOUT_MARKERS.items():
        if marker in state and not (name == "mae" and "head.final.weight" in state):
            return name
    return None


def resize_pos_embed(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(1, 1 + g*g, C) position embeddings of a square grid (class slot first) -> the same
    for `grid` (h, w), resized bicubically (how ViTPose starts from MAE weights)."""
    n = pos.shape[1] - 1
    if n == grid[0] * grid[1]:
        return pos  # already this grid
    g = round(n**0.5)
    if g * g != n:
        raise UserError(
            f"weights: pos_embed has {n} patch slots, neither the {grid[0]}x{grid[1]} grid "
            "nor a square one"
        )
    patches = pos[:, 1:].reshape(1, g, g, -1).permute(0, 3, 1, 2)
    patches = torch.nn.functional.interpolate(patches.float(), size=grid, mode="bicubic",
                                              align_corners=False)  # fmt: skip
    return torch.cat([pos[:, :1], patches.flatten(2).transpose(1, 2).to(pos.dtype)], 1)


def _fuse_qkv(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' separate query / key / value projections -> one qkv projection."""
    out = dict(state)
    pat = re.compile(
        r"^backbone\.encoder\.layer\.(\d+)\.attention\.attention\.query\.(weight|bias)$"
    )
    for key in list(state):
        m = pat.match(key)
        if m is None:
            continue
        i, kind = m.groups()
        base = f"backbone.encoder.layer.{i}.attention.attention"
        parts = [out.pop(f"{base}.{p}.{kind}") for p in ("query", "key", "value")]
        out[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat(parts, 0)
    return out


def convert_state_dict(state: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """Rename a state dict of `layout` to posekit's ViTPose names; keys no rule knows (an
    auxiliary head, a data preprocessor's buffers) are left out."""
    if layout == "transformers":
        state = _fuse_qkv(state)
    rules = [(re.compile(a), b) for a, b in LAYOUT_RULES[layout]]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("blocks.") and key.endswith((".qkv.weight", ".qkv.bias")):
            out[key] = value  # already fused
            continue
        for pat, repl in rules:
            if pat.match(key):
                out[pat.sub(repl, key)] = value
                break
    return out


def config_from_shapes(state: dict[str, torch.Tensor], **overrides: Any) -> ViTPoseConfig:
    """The architecture of a converted state dict: width, depth, token grid and decoder from
    the tensors; heads from the size table; everything else from ViTPose's defaults."""
    width = int(state["patch_embed.proj.weight"].shape[0])
    patch = int(state["patch_embed.proj.weight"].shape[-1])
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    # a backbone without any decoder gets ViTPose's default, the classic one
    decoder = "simple" if "head.final.weight" in state and "head.deconv1.weight" not in state \
        else "classic"  # fmt: skip
    fields: dict[str, Any] = {"embed_dim": width, "depth": depth, "patch_size": patch,
                              "num_heads": HEADS_BY_WIDTH.get(width, max(1, width // 64)),
                              "decoder": decoder, "name": f"vitpose-{width}x{depth}"}  # fmt: skip
    if "head.deconv1.weight" in state:
        fields["decoder_channels"] = int(state["head.deconv1.weight"].shape[1])
    mlp = state.get("blocks.0.mlp.fc1.weight")
    if mlp is not None:
        fields["mlp_ratio"] = mlp.shape[0] / width
    base = next((c for c in SIZES.values() if c.embed_dim == width and c.depth == depth), None)
    cfg = replace(base or ViTPoseConfig(), pixel_centre=0.0, **fields)  # trained on indices
    return replace(cfg, **overrides)


def config_from_transformers(hf: dict[str, Any], **overrides: Any) -> ViTPoseConfig:
    """The architecture from a transformers `config.json` (dims, heads, eps, decoder)."""
    bc = hf.get("backbone_config") or {}
    size = bc.get("image_size", [256, 192])
    patch = bc.get("patch_size", [16, 16])
    patch = patch[0] if isinstance(patch, list | tuple) else patch
    cfg = ViTPoseConfig(
        embed_dim=int(bc.get("hidden_size", 768)),
        depth=int(bc.get("num_hidden_layers", 12)),
        num_heads=int(bc.get("num_attention_heads", 12)),
        mlp_ratio=float(bc.get("mlp_ratio", 4)),
        qkv_bias=bool(bc.get("qkv_bias", True)),
        layer_norm_eps=float(bc.get("layer_norm_eps", 1e-12)),
        patch_size=int(patch),
        input_size=(int(size[0]), int(size[1])),
        decoder="simple" if hf.get("use_simple_decoder", True) else "classic",
        pixel_centre=0.0,  # trained on pixel indices
        name=f"vitpose-{bc.get('hidden_size', 768)}x{bc.get('num_hidden_layers', 12)}",
    )
    return replace(cfg, **overrides)


def generic_schema(k: int) -> KeypointSchema:
    """A schema for `k` unnamed keypoints (what a file without names gets)."""
    return KeypointSchema.create(f"keypoints{k}", [f"kpt{j}" for j in range(k)])


def default_schema(k: int) -> KeypointSchema:
    """COCO-17 for 17 keypoints (the published checkpoints are COCO), else generic names."""
    from posekit.schema import get_schema

    return get_schema("coco17") if k == 17 else generic_schema(k)


def build_from_state(
    state: dict[str, torch.Tensor],
    cfg: ViTPoseConfig,
    schema: KeypointSchema | None,
    check: Callable[[str], None] | None = None,
) -> ViTPose:
    """A ViTPose of `cfg` with the converted weights `state` loaded; a tensor whose shape fits
    no slot is an error naming it. Without a `schema`, one is chosen by keypoint count;
    with a schema of another count, the head is left new (fine-tuning onto new keypoints)."""
    head = "head.final.weight" in state
    k = int(state["head.final.weight"].shape[0]) if head else None
    schema = schema or default_schema(k or 17)

    def build() -> ViTPose:
        return ViTPose(cfg, [schema], [schema.name])

    # shapes are compared on the meta device: a config.json describing another (or a huge)
    # network is refused before any memory is allocated
    own = meta_build(build, f"the ViTPose of {cfg.name}").state_dict()
    if "pos_embed" in state:
        state = {**state, "pos_embed": resize_pos_embed(state["pos_embed"], cfg.token_grid)}
    if schema.num_keypoints != k:
        state = {n: t for n, t in state.items() if not n.startswith("head.final.")}
    for name, tensor in state.items():
        if name not in own:
            raise UserError(f"weights: unexpected tensor {name} {tuple(tensor.shape)}")
        if own[name].shape != tensor.shape:
            raise UserError(
                f"weights: {name} has shape {tuple(tensor.shape)}, the model expects "
                f"{tuple(own[name].shape)} (first mismatching tensor)"
            )
    # a backbone alone (MAE) leaves the whole decoder new
    new_part = "head.final." if head else "head."
    missing = [n for n in own if n not in state and not n.startswith(new_part)
               and not n.endswith("num_batches_tracked")]  # fmt: skip
    if missing:
        raise UserError(f"weights: no tensor for {missing[0]} ({len(missing)} missing)")
    model = build()
    model.load_state_dict(state, strict=False)
    return model.eval()


def drop_pretraining_extras(state: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """An MAE checkpoint also holds its pre-training decoder, mask token and class token,
    which a pose model does not use."""
    if layout != "mae":
        return state
    skip = ("decoder", "mask_token", "cls_token", "head.", "fc_norm.") if "norm.weight" in state \
        else ("decoder", "mask_token", "cls_token", "head.")  # fmt: skip
    return {k: v for k, v in state.items() if not k.startswith(skip)}
