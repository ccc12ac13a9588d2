"""What runs the network inside the prediction pipeline: PyTorch or ONNX Runtime.

A backend takes the preprocessed batch (a (B, 3, H, W) float tensor, RGB in 0..1) and returns
what the family's `forward` returns, so that the same family decoder and the same inverse
mappings follow whichever backend ran: the backend is a seam, not a second predictor.

- `TorchBackend`: the (BatchNorm-folded) module itself, channels-last, optionally in fp16 on
  CUDA (outputs are handed to the decoder in fp32).
- `OnnxBackend`: an ONNX Runtime session of an exported file (`posekit.export`); its output
  tensors go back through the family's `from_export_outputs`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from posekit.models.base import KeypointModel
from posekit.utils.errors import UserError
from posekit.utils.extras import require
from posekit.utils.onnx_files import checked_model


class Backend(Protocol):
    """Runs the network: a (B, 3, H, W) float batch in, `forward`'s outputs (float32) out."""

    name: str
    fixed_shape: tuple[int, int] | None  # (height, width) when the graph takes only that
    fixed_batch: int | None  # the batch size when the graph takes only that

    def __call__(self, x: torch.Tensor) -> Any: ...


class TorchBackend:
    """The PyTorch module on `device`; `half` runs it in fp16 (CUDA)."""

    name = "pytorch"
    fixed_shape: tuple[int, int] | None = None
    fixed_batch: int | None = None

    def __init__(self, net: KeypointModel, device: torch.device, *, half: bool = False) -> None:
        self.device = device
        self.half = half
        if half and any(p.dtype != torch.float16 for p in net.parameters()):
            net = copy.deepcopy(net).half()  # the caller's fp32 network stays as it is
        self.net = net.to(device, memory_format=torch.channels_last)

    def __call__(self, x: torch.Tensor) -> Any:
        x = x.to(self.device, torch.float16 if self.half else torch.float32)
        out = self.net(x.contiguous(memory_format=torch.channels_last))
        if not self.half:
            return out
        # fp16 outputs -> fp32 for decoding (boxes in pixels lose precision in fp16 sums)
        flat = [t.float() for t in self.net.export_outputs(out)]
        return self.net.from_export_outputs(flat, tuple(x.shape[-2:]))


def require_onnxruntime() -> Any:
    """The `onnxruntime` module, or an ImportError naming the install extra."""
    return require("onnxruntime", "onnx", "running .onnx files")


def onnx_session(path: Path, device: torch.device) -> Any:
    """An ONNX Runtime session of `path`: the CUDA provider for a CUDA device when this
    onnxruntime has it, else the CPU provider with as many threads as torch uses. The file is
    checked first: external data from outside its folder is refused (`checked_model`)."""
    ort = require_onnxruntime()
    checked_model(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's
    # idle ORT threads would spin between runs, taking the cores from the letterboxing and
    # decoding around them (measured end to end on 2 cores at 320 px: 48-50 img/s spinning,
    # 58-67 not)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as e:  # onnxruntime's own exception types: one line for the user
        raise UserError(f"{path}: ONNX Runtime cannot load this file ({e})") from None


class OnnxBackend:
    """An ONNX Runtime session standing in for `net.forward` (`net` supplies the decoder and
    the mapping of the graph's outputs back to the family's output type; its weights are not
    used, so it may live on the meta device)."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, net: KeypointModel, device: torch.device) -> None:
        self.path = Path(path)
        self.net = net
        self.device = device
        self.session = onnx_session(self.path, device)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.float16 = "float16" in inp.type
        shape = list(inp.shape)
        fixed = [d if isinstance(d, int) else None for d in shape]
        self.fixed_batch: int | None = fixed[0]
        hw = fixed[2:4]
        self.fixed_shape: tuple[int, int] | None = (
            (int(hw[0]), int(hw[1])) if None not in hw else None
        )
        self.output_names = [o.name for o in self.session.get_outputs()]
        expected = net.export_output_names()
        if self.output_names != expected:
            raise UserError(f"{self.path}: the graph's outputs {self.output_names} are not the "
                             f"{net.family} outputs {expected}")  # fmt: skip
        self._check_output_shapes()

    def _check_output_shapes(self) -> None:
        """Refuse a file whose metadata describes another network than its graph (say, 5
        keypoints over a 17-keypoint graph): every fixed size of the graph's outputs must be
        what the described network gives (run on the meta device: no weights, no pixels)."""
        x = self.net.example_input(1)
        if self.fixed_shape is not None:
            x = torch.empty(1, 3, *self.fixed_shape)
        try:
            with torch.no_grad():
                want = [tuple(t.shape) for t in self.net.export_outputs(self.net(x.to("meta")))]
        except (RuntimeError, NotImplementedError):  # an op without a meta kernel: no check
            return
        for out, shape in zip(self.session.get_outputs(), want, strict=True):
            got = list(out.shape)
            if len(got) != len(shape) or any(
                isinstance(g, int) and g != w for g, w in zip(got[1:], shape[1:], strict=True)
            ):
                shown = [g if isinstance(g, int) else "?" for g in got]
                raise UserError(
                    f"{self.path}: its posekit metadata describes another network than its "
                    f"graph (output {out.name!r} is {shown} in the graph, the metadata's "
                    f"{self.net.family} gives {list(shape)}); re-export the model with "
                    "`posekit export`"
                )

    def check_input(self, shape: tuple[int, ...]) -> None:
        """A clear error for an input the graph cannot take (instead of a runtime stack)."""
        h, w = shape[-2:]
        if self.fixed_shape is not None and (h, w) != self.fixed_shape:
            fh, fw = self.fixed_shape
            raise UserError(
                f"{self.path.name} takes {fw}x{fh} inputs only (exported with --static); got "
                f"{w}x{h}: predict with imgsz={max(fh, fw)}, or export again without --static"
            )
        stride = self.net.input_stride
        if self.net.input_mode.dynamic_size and (h % stride or w % stride):
            raise UserError(f"{self.path.name}: input {w}x{h} is not a multiple of the "
                             f"stride {stride}")  # fmt: skip

    def __call__(self, x: torch.Tensor) -> Any:
        self.check_input(tuple(x.shape))
        arr = np.asarray(x.detach().cpu().numpy(), np.float16 if self.float16 else np.float32)
        n = self.fixed_batch
        if n is None or len(arr) == n:
            outs = self._run(arr)
        else:  # a fixed batch size: run in chunks of it, the last one padded
            pad = -len(arr) % n
            padded = np.concatenate([arr, np.zeros((pad, *arr.shape[1:]), arr.dtype)])
            parts = [self._run(padded[i : i + n]) for i in range(0, len(padded), n)]
            outs = [np.concatenate(p)[: len(arr)] for p in zip(*parts, strict=True)]
        tensors = [torch.from_numpy(np.asarray(o, dtype=np.float32)).to(self.device) for o in outs]
        return self.net.from_export_outputs(tensors, tuple(x.shape[-2:]))

    def _run(self, arr: np.ndarray) -> list[np.ndarray]:
        try:
            return self.session.run(self.output_names, {self.input_name: arr})
        except Exception as e:  # onnxruntime's exceptions: explained in one line
            raise UserError(f"{self.path.name}: ONNX Runtime failed on a {arr.shape} input "
                             f"({str(e).splitlines()[0]})") from None  # fmt: skip
