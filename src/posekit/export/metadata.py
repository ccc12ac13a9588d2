"""posekit's metadata in an ONNX file (`metadata_props`), written at export and read back, so
an exported model is as self-describing as a checkpoint.

Keys (values are JSON): `posekit.family`, `posekit.config` (the family's config dataclass),
`posekit.schemas` (one keypoint schema per class: names, skeleton, flip permutation, sigmas),
`posekit.names` (class names), `posekit.category_ids`, `posekit.input` (what the graph takes:
layout, colour order, range, size, normalisation) and `posekit.outputs`; `posekit.version` is the
exporting version (a plain string).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from posekit.models.base import KeypointModel, model_from_description
from posekit.models.loading import Loaded
from posekit.models.registry import REGISTRY
from posekit.schema import KeypointSchema
from posekit.utils.errors import UserError
from posekit.utils.extras import require
from posekit.utils.onnx_files import checked_model

PREFIX = "posekit."
#: What rebuilding the model needs; the rest is informative.
REQUIRED = ("family", "config", "schemas", "names")


class MissingMetadataError(UserError):
    """An ONNX file without (all of) posekit's metadata."""


def require_onnx() -> Any:
    return require("onnx", "onnx", "ONNX export and .onnx files")


def metadata_for(
    net: KeypointModel,
    *,
    input_shape: tuple[int | str, int | str, int | str, int | str],
    category_ids: list[int] | None,
    version: str,
    imgsz: int | None = None,
) -> dict[str, str]:
    """The metadata of an export of `net` whose graph input is `input_shape` (ints, or names
    of dynamic dimensions). `imgsz`, the size it was exported at, becomes the file's default
    inference size (a config's `imgsz`)."""
    desc = net.describe()
    cfg = desc["config"]
    if imgsz is not None and "imgsz" in cfg:
        cfg["imgsz"] = imgsz
    graph_input = {
        "name": "images",
        "kind": net.input_mode.kind,  # "letterbox": whole images; "crops": one per instance
        "layout": "NCHW",
        "channels": "RGB",
        "dtype": "float32",
        "range": [0.0, 1.0],
        "shape": list(input_shape),
        "stride": net.input_stride,
        "imgsz": cfg.get("imgsz"),
        "normalisation": "inside the graph: (x - mean) / std",
        "mean": cfg.get("mean"),
        "std": cfg.get("std"),
    }
    values: dict[str, Any] = {
        "family": desc["architecture"],
        "config": cfg,
        "schemas": desc["schemas"],
        "names": desc["names"],
        "category_ids": category_ids,
        "input": graph_input,
        "outputs": net.export_output_names(),
    }
    out = {PREFIX + k: json.dumps(v) for k, v in values.items()}
    out[PREFIX + "version"] = version
    return out


@dataclass
class OnnxModelInfo:
    """What an ONNX file's metadata (or the caller) says about it."""

    net: KeypointModel  # on the meta device: decoder and settings, no weights
    category_ids: list[int] | None
    version: str | None
    from_metadata: bool


def read_metadata(path: str | Path) -> dict[str, str]:
    """posekit's `metadata_props` of an ONNX file (without loading its weights; a file whose
    external data would be read from outside its folder is refused)."""
    require_onnx()
    model = checked_model(path)
    return {p.key[len(PREFIX) :]: p.value for p in model.metadata_props
            if p.key.startswith(PREFIX)}  # fmt: skip


def model_info(
    path: str | Path, schema: KeypointSchema | None = None, session: Any = None
) -> OnnxModelInfo:
    """The model an ONNX file holds, from posekit's metadata, or (without it) from `schema` and
    the graph's output names with the family's default settings."""
    path = Path(path)
    meta = read_metadata(path)
    missing = [PREFIX + k for k in REQUIRED if k not in meta]
    if not missing:
        try:
            desc = {key: json.loads(meta[key]) for key in REQUIRED}
            desc["architecture"] = desc.pop("family")
            with torch.device("meta"):
                net = model_from_description(desc, str(path))
            ids = json.loads(meta.get("category_ids", "null"))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise UserError(
                f"{path}: its posekit metadata is malformed ({type(e).__name__}: "
                f"{e}); re-export the model with `posekit export`"
            ) from None
        if ids is not None and not (isinstance(ids, list) and all(type(i) is int for i in ids)):
            raise UserError(f"{path}: its posekit metadata is malformed (category_ids "
                             f"{ids!r} is not a list of integers)")  # fmt: skip
        return OnnxModelInfo(net.eval(), ids, meta.get("version"), True)
    if schema is None:
        raise MissingMetadataError(
            f"{path}: no posekit metadata (missing {', '.join(missing)}): export it with "
            "`posekit export`, or name its keypoints: Model(path, schema='coco17') or "
            "--schema (the family is then recognised from the graph's outputs)"
        )
    if session is None:
        from posekit.predict.backends import onnx_session

        session = onnx_session(path, torch.device("cpu"))
    names = [o.name for o in session.get_outputs()]
    shape = list(session.get_inputs()[0].shape)
    for family in REGISTRY.family_names():
        with torch.device("meta"):
            net = REGISTRY.family(family).for_graph(names, shape, schema)
        if net is not None:
            return OnnxModelInfo(net.eval(), None, None, False)
    raise MissingMetadataError(
        f"{path}: no posekit metadata (missing {', '.join(missing)}) and no registered model "
        f"family has the outputs {names}"
    )


def load_onnx(path: str | Path, schema: KeypointSchema | None = None) -> Loaded:
    """An exported ONNX file as a weightless model rebuilt from its metadata (or from
    `schema` and the graph's output names), which the file itself runs
    (`posekit.predict.backends.OnnxBackend`)."""
    path = Path(path)
    info = model_info(path, schema)
    s = info.net.schemas[0]
    how = f"exported by posekit {info.version}" if info.from_metadata else "no metadata"
    return Loaded(info.net, None,
                  f"loaded ONNX {info.net.family} ({info.net.config.name}, {how}, "
                  f"{s.num_keypoints} keypoints: {s.name}) from {path}",
                  path, info.category_ids)  # fmt: skip
