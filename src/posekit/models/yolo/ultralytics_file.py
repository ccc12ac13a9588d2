"""Ultralytics checkpoints (`yolo11n-pose.pt`, a user's `best.pt`): read without running code.

An Ultralytics `.pt` is a `torch.save` of a dict whose `model` (or `ema`) entry is a pickled
`ultralytics.nn.tasks.PoseModel` / `DetectionModel`: unpickling it the usual way imports
Ultralytics and can run any code the file names. Here it is read with
`torch.load(weights_only=True)` after every global the file names has been listed without
running anything (`get_unsafe_globals_in_checkpoint`) and mapped:

- classes under `ultralytics.` and `torch.nn.modules.` (keyed by module path, so the flat
  `ultralytics.nn.modules.Conv` of early 8.0 files is the same) -> an inert `StandIn` that
  only keeps the state pickled for it;
- `builtins.getattr` (older files pickle a module's `forward` that way) -> a look-up that
  answers only `forward` / `forward_fuse` on stand-ins, with an inert reference;
- `pathlib` paths (training arguments) -> their text; NumPy scalars and dtypes as elsewhere;
- anything else -> refused in one line naming it (a planted `os.system` never runs).

The architecture description (`yaml`), `names`, `stride` and the tensors are then read from
the stand-ins and the network is rebuilt by the yolo family; nothing of Ultralytics is
imported. The weights stay under the licence stored in the file (Ultralytics': AGPL-3.0), which
the one line reporting the load repeats.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from posekit.models.base import load_weights
from posekit.models.yolo.model import YOLO, config_for
from posekit.schema import KeypointSchema, get_schema
from posekit.utils.bounds import within_budget
from posekit.utils.download import Published
from posekit.utils.errors import UserError
from posekit.utils.serialization import UnsafeFileError, numpy_safe_globals

#: module prefixes whose classes become inert stand-ins
STAND_IN_PREFIXES = ("ultralytics.", "torch.nn.modules.")
PATH_CLASSES = {
    f"{m}.{c}"
    for m in ("pathlib", "pathlib._local")
    for c in ("Path", "PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath")
}
#: bounds on what a description declares, checked before anything is allocated for it
MAX_CLASSES = 10_000
MAX_KEYPOINTS = 1_000
#: tensors of YOLO26's pose head that only training uses (keypoint sigmas, the RLE flow)
TRAINING_ONLY = ("flow_model.", "cv4_sigma.", "one2one_cv4_sigma.")


class StandIn:
    """An inert stand-in for a class named in a foreign file: it keeps what the file stores
    for it (a module's `__dict__`: parameters, buffers, sub-modules, attributes) and has no
    behaviour. `qualified_name` is the class the file named."""

    qualified_name = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["args"] = args

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state if isinstance(state, dict) else {"value": state}

    @property
    def state(self) -> dict[str, Any]:
        return self.__dict__.get("state", {})


class Reference:
    """What `getattr(stand_in, "forward")` unpickles to: a name, never a callable."""

    def __init__(self, owner: str, name: str) -> None:
        self.owner, self.name = owner, name


def safe_getattr(obj: Any, name: str) -> Reference:
    """`builtins.getattr` as old Ultralytics files use it (a module's forward method), and
    nothing else."""
    owner = obj if isinstance(obj, type) else type(obj)
    if issubclass(owner, StandIn) and name in {"forward", "forward_fuse"}:
        return Reference(owner.qualified_name, name)
    raise pickle.UnpicklingError(f"refused getattr({owner.__name__}, {name!r})")


def path_text(*parts: Any) -> str:
    """A pickled `pathlib` path as its text (nothing on disk is touched)."""
    return "/".join(str(p) for p in parts)


def file_globals(path: Path) -> list[str] | None:
    """The globals a `torch.save` zip file names beyond tensors and containers, or None when
    the file is not such a zip."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # a zip that is not a torch file: not this reader's
        return None


#: Where Ultralytics serves its released models (the tag its 8.4 releases download from);
#: `$POSEKIT_ULTRALYTICS_RELEASES` replaces it (a mirror, or a local server in tests).
RELEASES = "https://github.com/ultralytics/assets/releases/download/v8.4.0"
#: The released files posekit builds: pose and detect models of every size.
RELEASED = frozenset(
    f"{version}{size}{task}.pt"
    for version in ("yolov8", "yolo11", "yolo26")
    for size in "nsmlx"
    for task in ("-pose", "")
)


def published(name: str) -> Published | None:
    """Where Ultralytics publishes the file called `name` (None: not one posekit builds).
    No digest is pinned: Ultralytics publishes none beside the files; the download's SHA-256
    is logged, and the file is read by the safe loader like any other."""
    if name not in RELEASED:
        return None
    base = os.environ.get("POSEKIT_ULTRALYTICS_RELEASES", RELEASES).rstrip("/")
    return Published(f"{base}/{name}")


def recognises(path: Path) -> bool:
    """Whether `path` is a pickled Ultralytics model (it names an `ultralytics.` class)."""
    names = file_globals(path) if path.is_file() else None
    return bool(names) and any(n.startswith("ultralytics.") for n in names)  # type: ignore[union-attr]


def allow_list(names: list[str], path: Path) -> list[Any]:
    """(object, name) pairs for `torch.serialization.safe_globals`, one per global the file
    names; a global outside the rules is refused in one line naming it."""
    out: list[Any] = []
    for name in names:
        if name.startswith(STAND_IN_PREFIXES):
            base = name.rpartition(".")[2]
            cls = type(base, (StandIn,), {"qualified_name": name})
            out.append((cls, name))
        elif name == "builtins.getattr":
            out.append((safe_getattr, name))
        elif name in PATH_CLASSES:
            out.append((path_text, name))
        elif not name.startswith("numpy."):
            raise UnsafeFileError(
                f"{path}: refused: the file names {name}, which is not part of an Ultralytics "
                "model (it could run code); posekit loads model files without running code"
            )
    return out + numpy_safe_globals()


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The file's top-level dict with stand-ins for its objects."""
    names = file_globals(path) or []
    try:
        with torch.serialization.safe_globals(allow_list(names, path)):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeFileError(f"{path}: refused: {str(e).splitlines()[0][:200]}") from None
    except UnsafeFileError:
        raise
    except Exception as e:  # a truncated or corrupt archive
        raise UserError(
            f"{path}: not a readable Ultralytics file ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not an Ultralytics checkpoint (no dict at the top)")
    return data


def tensors_of(
    obj: Any, prefix: str = "", out: dict[str, torch.Tensor] | None = None, depth: int = 0
) -> dict[str, torch.Tensor]:
    """A stand-in module tree's parameters and buffers by their `state_dict` names."""
    out = {} if out is None else out
    if depth > 64 or not isinstance(obj, StandIn):
        return out
    st = obj.state
    for group in ("_parameters", "_buffers"):
        for name, t in (st.get(group) or {}).items():
            if isinstance(t, torch.Tensor):
                out[prefix + str(name)] = t.detach().float() if t.is_floating_point() else t
    for name, child in (st.get("_modules") or {}).items():
        tensors_of(child, f"{prefix}{name}.", out, depth + 1)
    return out


def _network(data: dict[str, Any], path: Path) -> StandIn:
    net = data.get("model") if isinstance(data.get("model"), StandIn) else data.get("ema")
    if not isinstance(net, StandIn):
        raise UserError(
            f"{path}: an Ultralytics file without a model (neither 'model' nor 'ema' holds one)"
        )
    return net


def _schemas(
    kpt_shape: Any, nc: int, names: list[str], given: KeypointSchema | None
) -> list[KeypointSchema]:
    if kpt_shape is None:  # a detect model: one keypoint per box, its centre
        return [KeypointSchema.create(n, ["centre"]) for n in names]
    k = int(kpt_shape[0])
    if given is not None:
        if given.num_keypoints != k:
            raise UserError(f"the schema names {given.num_keypoints} keypoints; the file has {k}")
        schema = given
    elif k == 17:
        schema = get_schema("coco17")  # Ultralytics' COCO pose order is COCO's
    else:
        schema = KeypointSchema.create("keypoints", [f"kpt_{i}" for i in range(k)])
    return [schema] * nc


def _fit_tensors(state: dict[str, torch.Tensor], model: YOLO) -> dict[str, Any]:
    """The file's tensors in the model's names: training-only ones dropped; a fused file's
    convolutions (bias, no BatchNorm) given an identity BatchNorm; a head that kept only one
    branch copied into the other. Whether they then fit the model is `load_weights`' check."""
    own = model.state_dict()
    head = f"model.{len(model.model) - 1}."
    state = {
        k: v for k, v in state.items() if not k.startswith(tuple(head + p for p in TRAINING_ONLY))
    }
    for key in own:
        if key in state or not key.startswith(head):
            continue
        twin = (
            key.replace(head + "one2one_", head)
            if "one2one_" in key
            else key.replace(head, head + "one2one_", 1)
        )
        if twin in state:  # fusing for inference removed the other branch
            state[key] = state[twin]
    for key in own:
        if key in state or ".bn." not in key:
            continue
        conv = key.rsplit(".bn.", 1)[0] + ".conv."
        bias = state.get(conv + "bias")
        if bias is None:
            continue
        field = key.rsplit(".", 1)[1]  # a fused convolution: BatchNorm as the identity
        eps = 1e-3
        state[key] = {
            "weight": torch.ones_like(bias),
            "bias": bias,
            "running_mean": torch.zeros_like(bias),
            "running_var": torch.full_like(bias, 1 - eps),
            "num_batches_tracked": torch.zeros((), dtype=torch.long),
        }[field]
    for key in list(state):
        if key.endswith(".conv.bias") and key not in own:
            del state[key]  # moved into the synthesised BatchNorm above
    return state


def _class_names(raw: Any, path: Path) -> list[str]:
    """The file's class names in index order (a dict by index, or a list)."""
    if not raw:
        return []
    if isinstance(raw, list | tuple | dict) and len(raw) > MAX_CLASSES:
        raise UserError(f"{path}: it names {len(raw):,} classes (at most {MAX_CLASSES:,})")
    if isinstance(raw, list | tuple):
        return [str(n) for n in raw]
    if not isinstance(raw, dict) or not all(type(i) is int for i in raw):
        raise UserError(f"{path}: its class names are not a list or a dict by class index")
    return [str(raw[i]) for i in sorted(raw)]


def _bounded(value: Any, what: str, high: int, path: Path) -> int:
    """A whole number from the file's description in 1..`high`, or one line naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise UserError(
            f"{path}: {what} = {str(value)[:50]!r} in its description is not a "
            f"whole number from 1 to {high}"
        )
    return value


def _kpt_shape(value: Any, path: Path) -> tuple[int, int]:
    """The description's `kpt_shape` (keypoints, 2 or 3 numbers each), checked."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise UserError(
            f"{path}: kpt_shape = {str(value)[:50]!r} in its description is not [keypoints, 2 or 3]"
        )
    k = _bounded(value[0], "the keypoint count", MAX_KEYPOINTS, path)
    dims = _bounded(value[1], "the numbers per keypoint", 3, path)
    if dims == 1:
        raise UserError(f"{path}: kpt_shape {list(value)} has 1 number per keypoint (2 or 3)")
    return k, dims


def _child(obj: Any, name: str) -> StandIn | None:
    """A stand-in module's sub-module `name`, if it has one."""
    child = (obj.state.get("_modules") or {}).get(name) if isinstance(obj, StandIn) else None
    return child if isinstance(child, StandIn) else None


def _decodes_one2one(net: StandIn, found: dict[str, torch.Tensor], head_index: int) -> bool:
    """Whether an end-to-end file is decoded through its one-to-one branch: the branch its
    head has selected when it says (`end2end` set before saving), else the one-to-one branch
    (NMS-free, as the published YOLO26 figures are measured); never a branch fusing removed."""
    prefix = f"model.{head_index}."
    if not any(k.startswith(prefix + "one2one_") for k in found):
        return False
    if not any(k.startswith(prefix + "cv2.") for k in found):
        return True
    head = _child(_child(net, "model"), str(head_index))
    return head is None or head.state.get("_end2end") is not False


def load(
    path: Path,
    schema: KeypointSchema | None = None,
    *,
    one2one: bool | None = None,
    **unknown: Any,
) -> tuple[YOLO, str]:
    """The network in an Ultralytics file, and the line that says what was loaded. `one2one`
    picks an end-to-end model's branch (default: the file's choice, else one-to-one)."""
    if unknown:
        raise UserError(
            f"{path}: an Ultralytics file takes no {', '.join(unknown)} (its one "
            "option is one2one=)"
        )
    data = read_checkpoint(path)
    net = _network(data, path)
    st = net.state
    desc = st.get("yaml")
    if not isinstance(desc, dict) or not isinstance(desc.get("backbone"), list):
        raise UserError(f"{path}: the Ultralytics model carries no architecture description")
    if desc.get("activation") not in (None, "nn.SiLU()", "torch.nn.SiLU()"):
        raise UserError(f"{path}: activation {desc['activation']!r} is not built by posekit")
    names = _class_names(st.get("names"), path)
    rows = desc.get("head")
    last = rows[-1] if isinstance(rows, list) and rows else None
    head_name = str(last[2]) if isinstance(last, list) and len(last) == 4 else ""
    detect = head_name == "Detect"
    if head_name not in {"Detect", "Pose", "Pose26"}:
        raise UserError(
            f"{path}: an Ultralytics {head_name or 'unknown'} model; posekit runs "
            "detect and pose models"
        )
    kpt_shape = None if detect else _kpt_shape(st.get("kpt_shape") or desc.get("kpt_shape"), path)
    if not names:
        names = [str(i) for i in range(_bounded(desc.get("nc") or 1, "nc", MAX_CLASSES, path))]
    args = st.get("args") if isinstance(st.get("args"), dict) else {}
    imgsz = args.get("imgsz", 640)
    imgsz = imgsz if isinstance(imgsz, int) and 32 <= imgsz <= 8192 and imgsz % 32 == 0 else 640
    version = str(data.get("version", "unknown version"))
    licence = str(data.get("license", "AGPL-3.0 (Ultralytics)")).split(" (")[0]
    scale = str(desc.get("scale") or "n")
    title = Path(str(desc.get("yaml_file") or path.name)).stem
    dims = kpt_shape[1] if kpt_shape is not None else 3
    found = tensors_of(net)
    head_index = len(desc["backbone"]) + len(desc["head"]) - 1
    try:
        cfg = config_for(
            desc,
            scale,
            kpt_dims=dims,
            detect=detect,
            imgsz=imgsz,
            name=title,
            origin=f"Ultralytics {version}, {licence}",
            one2one=_decodes_one2one(net, found, head_index) if one2one is None else one2one,
        )
    except UserError:
        raise
    except (TypeError, ValueError, KeyError, IndexError) as e:  # scales or rows mistyped
        raise UserError(
            f"{path}: its architecture description is malformed "
            f"({type(e).__name__}: {str(e)[:200]})"
        ) from None
    schemas = _schemas(kpt_shape, len(names), names, schema)
    model = within_budget(lambda: YOLO(cfg, schemas, names), f"{path}'s model")
    load_weights(model, _fit_tensors(found, model), str(path))
    branch = (
        "" if not cfg.end2end else "; one-to-one, no NMS" if cfg.one2one else "; one-to-many + NMS"
    )
    kind = "detect" if detect else f"pose, {schemas[0].num_keypoints} keypoints: {schemas[0].name}"
    summary = (
        f"loaded Ultralytics {title} ({kind}; {len(names)} classes{branch}; saved by "
        f"Ultralytics "
        f"{version}) from {path}; its weights are under {licence}, Ultralytics' "
        "licence stored in the file"
    )
    return model.eval(), summary
