"""Loading a model from any file it may come in, without running code.

`load_any(path)` recognises what it is given:

- a posekit checkpoint (`.pt`: description + weights) -> the family named in it;
- a Hugging Face `transformers` folder (`config.json` + `model.safetensors`) or a
  `.safetensors` file (with the `config.json` beside it when there is one);
- a published `.pth` (a state dict, or a dict with `state_dict`, as the official and MMPose
  releases are) -> the family that recognises its key layout;
- a file of a registered reader (`REGISTRY.file_readers()`: e.g. Ultralytics' pickled `.pt`,
  read through inert stand-ins) -> the family its reader maps it onto;
- not an ONNX file: that is `posekit.export.metadata.load_onnx`'s (the export layer reads
  its metadata), which `posekit.Model` calls.

Files are read with `weights_only=True` (NumPy metadata admitted through the allow-list) or as
safetensors; nothing is unpickled beyond tensors and plain data. `fetch_published` downloads
a file only when it is named bare (no folder), is not on disk, and a reader's publisher serves it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from posekit.models.base import KeypointModel, load_weights, model_from_description
from posekit.models.registry import REGISTRY
from posekit.schema import KeypointSchema
from posekit.utils.errors import UserError
from posekit.utils.extras import require
from posekit.utils.serialization import load_torch_file


@dataclass
class Loaded:
    """A loaded model, the posekit checkpoint dict when it was one, and one line that says
    what was loaded."""

    model: KeypointModel
    checkpoint: dict[str, Any] | None
    summary: str
    #: an exported ONNX file: `model` is then weightless (meta device); the file runs it
    onnx: Path | None = None
    category_ids: list[int] | None = None


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors` file (a format that holds only tensors). The library checks
    the header against the file (offsets in range, sizes that match the shapes) before it
    allocates; a file that fails is refused in one line."""
    st = require("safetensors.torch", "hf", f"{path}: reading .safetensors")
    try:
        return st.load_file(str(path))
    except Exception as e:  # SafetensorError, and OSError for a truncated file
        raise UserError(f"{path}: refused: not a valid .safetensors file ({e})") from None


def read_config_json(path: Path) -> dict[str, Any]:
    """A transformers `config.json` as a dict, or a one-line error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config.json must hold an object")
    return data


def fetch_published(name: str) -> Path | None:
    """The local copy of a publisher's file named bare (e.g. "yolo11n-pose.pt", not on disk):
    downloaded once into the cache folder (`posekit.utils.download`), or None when `name` has a
    folder part or no registered reader's publisher serves it."""
    from posekit.utils.download import cache_folder, fetch

    if Path(name).name != name or (found := REGISTRY.published_file(name)) is None:
        return None
    reader, published = found
    return fetch(published, cache_folder() / reader.name / name)


def local_source(source: str) -> str:
    """`source` itself (a registered name, a file, anything not published), or the local
    copy of the publisher's file it names (see `fetch_published`)."""
    from posekit.models.registry import list_models

    if source in list_models() or Path(source).exists():
        return source
    return str(fetch_published(source) or source)


def load_any(path: str | Path, *, schema: KeypointSchema | None = None, **overrides: Any) -> Loaded:
    """The model in `path` (see the module docstring); `schema` names the keypoints of a file
    that does not (a transformers folder's labels are `LABEL_n`), `overrides` change
    architecture fields that a file cannot hold (e.g. `num_heads`, `layer_norm_eps`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: model file not found")
    hf_config: dict[str, Any] | None = None
    if path.suffix == ".onnx" and path.is_file():  # runs through `posekit.Model` (export layer)
        raise UserError(f"{path} is an ONNX export: it cannot be trained nor converted; use "
                         "the checkpoint it was exported from (posekit.Model runs it)")  # fmt: skip
    if path.is_dir():
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise UserError(f"{path}: a model folder needs a config.json (transformers layout)")
        hf_config = read_config_json(cfg_file)
        weights = path / "model.safetensors"
        if weights.is_file():
            state = read_safetensors(weights)
        elif (path / "pytorch_model.bin").is_file():
            state = load_torch_file(path / "pytorch_model.bin")
        else:
            raise UserError(f"{path}: no model.safetensors or pytorch_model.bin in the folder")
        source = "transformers folder"
    elif path.suffix == ".safetensors":
        state = read_safetensors(path)
        beside = path.parent / "config.json"
        if beside.is_file():
            hf_config = read_config_json(beside)
        source = "safetensors file"
    else:
        for reader in REGISTRY.file_readers():  # pickled foreign models (Ultralytics' .pt)
            if reader.recognises(path):
                model, summary = reader.load(path, schema, **overrides)
                return Loaded(model.eval(), None, summary)
        data = load_torch_file(path, allow_numpy=True)
        if isinstance(data, dict) and "model" in data and "weights" in data:
            model = model_from_description(data["model"], str(path))
            load_weights(model, data["weights"], str(path))
            what = f"posekit {model.family} checkpoint ({model.config.name})"
            return Loaded(model.eval(), data, f"loaded {what} from {path}")
        if not isinstance(data, dict):
            raise UserError(f"{path}: not a posekit checkpoint or a state dict")
        # released files keep their tensors at the top, under "state_dict" (MMPose) or under
        # "model" (MAE)
        state = data.get("state_dict") or (data["model"] if isinstance(data.get("model"), dict)
                                           else data)  # fmt: skip
        source = "state dict"
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    for name in REGISTRY.family_names():
        found = REGISTRY.family(name).from_foreign(state, hf_config, schema, **overrides)
        if found is not None:
            model, layout = found
            s = model.schemas[0]
            return Loaded(model.eval(), None,
                          f"loaded {layout} {source} as {model.family} ({model.config.name}, "
                          f"{s.num_keypoints} keypoints: {s.name}) from {path}")  # fmt: skip
    first = next(iter(state), "nothing")
    raise UserError(f"{path}: no registered model family knows this weight layout "
                     f"(first tensor: {first})")  # fmt: skip
