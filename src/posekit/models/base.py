"""The model contract: what every model family supplies, so that the trainer, validation, the
predictor, checkpoints and `Model` never name a family.

A family is one package under `posekit/models/` whose network class subclasses `KeypointModel`
and is registered with `@register_family("name")`; its size table is registered with
`register_sizes(Network, SIZES)` (`posekit.models.registry`). The class supplies:

- `config_class` (its config dataclass) and `scale_config(cfg, width, depth)`: the generic
  size multipliers, relative to a size's config; `describe()` / `from_description(desc)` (the
  self-describing checkpoint entry: family name, config, one keypoint schema per class, class
  names, and the way back) come with them;
- `training_samples(...)`: the training dataset (images and targets);
- `loss(outputs, targets)`: the training loss and its parts (nanoGPT's spirit: the model knows
  how it is trained);
- `decode(outputs, ...)`: raw outputs -> `Instances` (one per image) in network-input pixels;
- `export_outputs(outputs)` / `from_export_outputs(tensors, input_shape)`: the outputs as the
  flat tuple of tensors an exported graph returns (named by `export_output_names()`), and the
  way back to what `decode` takes, so an ONNX Runtime session can stand in for `forward`.

Whole-image families are letterboxed to a multiple of `input_stride` by the shared
preprocessing; the instances go back to image pixels through the letterbox's exact inverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from posekit.models.input_mode import LETTERBOX, WHOLE_FRAME, InputMode
from posekit.models.registry import REGISTRY
from posekit.ops.instances import Instances
from posekit.schema import KeypointSchema
from posekit.utils.bounds import MAX_INPUT_PIXELS, meta_build
from posekit.utils.errors import UserError


@dataclass
class Targets:
    """A padded batch of ground truth in network-input pixels; `mask` marks real instances."""

    boxes: torch.Tensor  # (B, M, 4) xyxy
    classes: torch.Tensor  # (B, M) long
    keypoints: torch.Tensor  # (B, M, K, 3) x, y, v
    mask: torch.Tensor  # (B, M) bool

    def to(self, device: torch.device) -> Targets:
        parts = (self.boxes, self.classes, self.keypoints, self.mask)
        return Targets(*(t.to(device, non_blocking=True) for t in parts))


class KeypointModel(nn.Module):
    """Base class of every family's network (see the module docstring for the contract).

    Subclasses set `family`, and in `__init__` `config` (a dataclass with at least `imgsz`),
    `schemas` and `names` (one per class).
    """

    family: ClassVar[str] = ""
    #: Letterboxed inputs are padded to a multiple of this (the largest feature stride).
    input_stride: ClassVar[int] = 32

    #: the family's config dataclass (saved in checkpoints by `describe`)
    config_class: ClassVar[type]
    #: values of config fields that descriptions written before the field existed lack
    legacy_defaults: ClassVar[dict[str, Any]] = {}
    #: the lowest score whose detections the export check compares between backends (0: all).
    #: A family that groups peaks into people sets it: a faint person's grouping hangs on
    #: near ties between candidates, which the backends' last bits of precision decide.
    export_check_conf: ClassVar[float] = 0.0
    #: prediction settings (`PredictConfig` fields) whose defaults differ for this family,
    #: e.g. a published model's own post-processing; a caller's value still wins
    predict_defaults: ClassVar[dict[str, Any]] = {}
    #: how whole-image families are resized into the letterbox when shrinking: "area"
    #: (OpenCV's area filter, the least aliasing) or "linear" (what a published model's own
    #: pipeline does)
    letterbox_interpolation: ClassVar[str] = "area"
    #: what the network reads: "images" (every detector), or "keypoints" (2D keypoints over
    #: time: lifting families, trained on sequence datasets and run by `Model.track(lift=)`)
    input_kind: ClassVar[str] = "images"

    config: Any
    schemas: list[KeypointSchema]
    names: list[str]

    @classmethod
    def scale_config(cls, cfg: Any, width: float, depth: float) -> Any:
        """`cfg` with its channels multiplied by `width` and its depth (blocks, layers) by
        `depth`: the generic multipliers, the same meaning in every family."""
        raise UserError(f"{cls.family} has no width / depth multipliers")

    @property
    def input_mode(self) -> InputMode:
        """How the network sees an image (`posekit.models.input_mode`): whole letterboxed
        images here; the top-down families' crops or whole frames."""
        return LETTERBOX

    @property
    def single_subject(self) -> bool:
        """Whether the model reads each whole frame as one subject (no boxes, no detector):
        the single-subject mode of top-down families."""
        return self.input_mode is WHOLE_FRAME

    @property
    def num_keypoints(self) -> int:
        """The largest keypoint count over the classes (the width of keypoint outputs)."""
        return max(s.num_keypoints for s in self.schemas)

    def describe(self) -> dict[str, Any]:
        """Everything needed to rebuild this model (saved in checkpoints and exports)."""
        return {
            "architecture": self.family,
            "config": asdict(self.config),
            "schemas": [s.to_dict() for s in self.schemas],
            "names": list(self.names),
        }

    @classmethod
    def from_description(cls, desc: dict[str, Any]) -> KeypointModel:
        """The (untrained) model that `describe()` describes."""
        values = {**cls.legacy_defaults, **desc["config"]}
        schemas = [KeypointSchema.from_dict(s) for s in desc["schemas"]]
        return cls(config_from_dict(cls.config_class, values), schemas, list(desc["names"]))

    @classmethod
    def from_foreign(
        cls,
        state: dict[str, torch.Tensor],
        hf_config: dict[str, Any] | None,
        schema: KeypointSchema | None,
        **overrides: Any,
    ) -> tuple[KeypointModel, str] | None:
        """A model of this family from weights in another project's layout (and its
        `config.json`, if any) and the layout's name, or None when the layout is not this
        family's. A shape that fits no known layout is a `ValueError` naming the tensor."""
        return None

    @classmethod
    def for_graph(
        cls, output_names: list[str], input_shape: list[Any], schema: KeypointSchema
    ) -> KeypointModel | None:
        """A model of this family with its default settings for an exported graph that lacks
        posekit's metadata, when `output_names` are this family's (None otherwise);
        `input_shape` holds ints for fixed dimensions."""
        return None

    def keypoint_sigmas(self) -> torch.Tensor:
        """(nc, K) OKS sigmas of each class's keypoints; 0 in slots a class does not use."""
        out = torch.zeros(len(self.schemas), self.num_keypoints)
        for c, s in enumerate(self.schemas):
            out[c, : s.num_keypoints] = torch.tensor(s.sigmas, dtype=torch.float32)
        return out

    def training_samples(self, ds: Any, imgsz: int, augment: Any, **options: Any) -> Any:
        """The training dataset of this family: whole images letterboxed to `imgsz` with
        affine augmentation, each with its instances (`posekit.models.samples`). A family
        with another input (crops) overrides this."""
        from posekit.models.samples import KeypointSamples

        return KeypointSamples(ds, imgsz, augment, **options)

    def example_input(self, batch: int = 2) -> torch.Tensor:
        """A small valid input batch (tests and exports use it): whole-image families take
        any multiple of `input_stride`."""
        return torch.rand(batch, 3, 2 * self.input_stride, 3 * self.input_stride)

    def prepare_inputs(self, batch: torch.Tensor, device: torch.device) -> torch.Tensor:
        """A collated training batch as the network takes it on `device`: uint8 images to
        floats in [0, 1], channels-last (about 15 % faster convolutions on a CPU)."""
        images = batch.to(device, non_blocking=True).float().div_(255)
        return images.contiguous(memory_format=torch.channels_last)

    def loss(self, outputs: Any, targets: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss of `outputs` (of `forward`) against `targets` (what the family's
        training samples collate), and its named parts as floats for logging."""
        raise NotImplementedError

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Optimizer parameter groups: weight decay on weights, none on norms and biases. A
        group's `lr_scale` (default 1) multiplies the scheduled learning rate."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]  # fmt: skip

    def decode(
        self,
        outputs: Any,
        *,
        conf: float,
        iou: float,
        max_det: int,
        oks_nms: float,
    ) -> list[Instances]:
        """Detections per image of a batch, in network-input pixels. The settings have no
        defaults here: they are `PredictConfig`'s, passed by the predictor."""
        raise NotImplementedError

    # ------------------------------------------------------------- lifting families
    def lift(self, inputs: torch.Tensor) -> torch.Tensor:
        """Lifting families (`input_kind` "keypoints"): (N, T, K, 3) normalised 2D inputs of
        whole clips (`posekit.models.lift_codec`) -> (N, T, K, 3) root-relative 3D in metres,
        one pose per frame."""
        raise NotImplementedError(f"{self.family} does not lift 2D keypoints to 3D")

    # ------------------------------------------------------------- top-down families
    def merge_flip_test(self, outputs: Any, classes: torch.Tensor) -> Any:
        """Crop families: the outputs of a batch of 2M crops whose second half mirrors the
        first (the flip test), merged into the outputs of the M crops; `classes` (M,) picks each
        crop's flip permutation."""
        raise NotImplementedError(f"{self.family} has no flip test")

    def decode_crops(self, outputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop families: keypoints (M, K, 2) in crop-input pixel indices (the coordinates the
        crop matrices map to) and their confidences (M, K), for a whole batch at once."""
        raise NotImplementedError(f"{self.family} does not run on crops")

    def export_output_names(self) -> list[str]:
        """Names of the tensors `export_outputs` returns (the exported graph's outputs)."""
        return ["output"]

    def export_outputs(self, outputs: Any) -> tuple[torch.Tensor, ...]:
        """`forward`'s outputs as a flat tuple of tensors (what an exported graph returns).
        A family whose `forward` returns one tensor needs no override."""
        return (outputs,)

    def from_export_outputs(
        self, tensors: Sequence[torch.Tensor], input_shape: tuple[int, int]
    ) -> Any:
        """`forward`'s outputs rebuilt from `export_outputs`' tensors (e.g. as ONNX Runtime
        returns them) for an input of `input_shape` (height, width): what `decode` takes."""
        return tensors[0]


def class_tables(schemas: list[KeypointSchema]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class flip permutations (nc, K), sigmas (nc, K) and used-slot masks (nc, K), padded
    to the largest keypoint count (unused slots map to themselves, sigma 1)."""
    k = max(s.num_keypoints for s in schemas)
    flips = np.tile(np.arange(k), (len(schemas), 1))
    sigmas = np.ones((len(schemas), k))
    valid = np.zeros((len(schemas), k), dtype=bool)
    for c, s in enumerate(schemas):
        flips[c, : s.num_keypoints] = s.flip_idx
        sigmas[c, : s.num_keypoints] = s.sigmas
        valid[c, : s.num_keypoints] = True
    return flips, sigmas, valid


def config_from_dict(config_class: type, values: dict[str, Any]) -> Any:
    """A config dataclass from its `asdict` form read back from JSON or a checkpoint: lists
    become tuples where the field is a tuple (JSON has no tuples); an unknown field is a
    `TypeError`, as from the dataclass itself."""
    tuples = {f.name for f in fields(config_class) if str(f.type).startswith("tuple")}
    return config_class(**{k: tuple(v) if k in tuples and isinstance(v, list) else v
                           for k, v in values.items()})  # fmt: skip


def input_pixels(model: KeypointModel) -> int:
    """Pixels of one network input at the model's own size: a crop (top-down) or the square
    letterbox of `config.imgsz`."""
    crop = getattr(model.config, "input_size", None)
    if crop is not None:
        return int(crop[0]) * int(crop[1])
    return int(getattr(model.config, "imgsz", 0)) ** 2  # a lifting family reads no image


def model_from_description(desc: dict[str, Any], where: str = "") -> KeypointModel:
    """Rebuild a model of any registered family from its `describe()` dict (`where`: the file
    it came from, named in errors). Bounded before anything is allocated: its parameters
    (`MAX_PARAMETERS`), its input size by what it costs (`MAX_INPUT_PIXELS` per input, the
    memory of every activation scales with it), and its class names must be one per class."""
    prefix = f"{where}: " if where else ""
    if not isinstance(desc, dict):
        raise UserError(f"{prefix}the model description is not a dict")
    family = REGISTRY.family(str(desc.get("architecture")))
    try:
        probe = meta_build(lambda: family.from_description(desc), f"{prefix}the described model")
    except UserError as e:
        raise UserError(f"{prefix}{e}" if where and where not in str(e) else str(e)) from None
    except (TypeError, KeyError, AttributeError, IndexError) as e:  # a field missing or mistyped
        why = f"{type(e).__name__}: {str(e)[:200]}"
        raise UserError(f"{prefix}the model description is malformed ({why})") from None
    pixels, limit = input_pixels(probe), MAX_INPUT_PIXELS.value()
    if pixels > limit:
        raise UserError(
            f"{prefix}the model declares inputs of {pixels:,} pixels, more than the limit of "
            f"{limit:,} (set {MAX_INPUT_PIXELS.env} to allow larger inputs)"
        )
    if len(probe.names) != len(probe.schemas):
        raise UserError(
            f"{prefix}the model description names {len(probe.names)} classes for "
            f"{len(probe.schemas)} keypoint schemas"
        )
    return family.from_description(desc)


def for_keypoints(
    model: KeypointModel, schemas: list[KeypointSchema], names: list[str]
) -> tuple[KeypointModel, int]:
    """`model`'s network for other keypoints or classes (fine-tuning on a dataset that has
    them): built from its description with `schemas` and `names`, every tensor whose name and
    shape still fit copied from `model` (the body), the others (the head's keypoint and class
    outputs) left as a new network initialises them. Returns the network and how many
    tensors are new."""
    desc = {**model.describe(), "schemas": [s.to_dict() for s in schemas], "names": names}
    new = model_from_description(desc)
    own = new.state_dict()
    kept = {k: t for k, t in model.state_dict().items() if k in own and own[k].shape == t.shape}
    new.load_state_dict(kept, strict=False)
    return new, len(own) - len(kept)


def load_weights(model: nn.Module, weights: Any, what: str) -> None:
    """Load a checkpoint's `weights` into `model` after checking that every tensor is there
    with the model's shape: a mismatch is one line naming the first tensor (PyTorch's own
    error lists every tensor over many lines)."""
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor)
                                                for v in weights.values()):  # fmt: skip
        raise UserError(f"{what}: its weights are not a dict of tensors")
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    extra = [k for k in weights if k not in own]
    if missing or extra:
        first = f"no tensor for {missing[0]}" if missing else f"unexpected tensor {extra[0]}"
        raise UserError(f"{what}: its weights do not fit the model it describes ({first}; "
                         f"{len(missing)} missing, {len(extra)} unexpected)")  # fmt: skip
    for k, t in own.items():
        if weights[k].shape != t.shape:
            raise UserError(f"{what}: its weights do not fit the model it describes ({k} has "
                             f"shape {tuple(weights[k].shape)}, the model "
                             f"{tuple(t.shape)})")  # fmt: skip
    model.load_state_dict(weights)
