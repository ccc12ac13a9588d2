"""Running a lifting network (a checkpoint of a family whose `input_kind` is "keypoints", e.g.
`liftpose`): whole clips of one subject's 2D keypoints to 3D (`Lifter.lift`), or live, per
track, frame by frame (`Lifter.live`, what `Model.track(..., lift=...)` uses).

The camera's intrinsics make the pixels camera-normalised (`posekit.models.lift_codec`): give
them when known (a calibration); otherwise they are guessed from the frame size, a focal
length of the frame's longer side (a 53-degree field of view) and the principal point at the
centre, said in one log line. The 3D is root-relative, in metres, in the camera's frame.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posekit.engine.checkpoint import load_model
from posekit.models.base import KeypointModel
from posekit.models.lift_codec import normalised_inputs
from posekit.predict.results import Results
from posekit.threed.views import POSEKIT_TO_OPENCV
from posekit.utils.device import select_device
from posekit.utils.errors import UserError

log = logging.getLogger(__name__)


def guessed_intrinsics(width: int, height: int) -> np.ndarray:
    """fx, fy, cx, cy of an unknown camera filming `width` x `height` frames (see the module
    docstring), in OpenCV's pixel convention."""
    focal = float(max(width, height))
    return np.array([focal, focal, width / 2 - 0.5, height / 2 - 0.5])


class Lifter:
    """A lifting network ready to run (eval mode, on `device`).

    Example:
        >>> lifter = Lifter("runs/lift/weights/best.pt")          # doctest: +SKIP
        >>> points3d = lifter.lift(keypoints2d, (1000, 1000, 959.5, 539.5))  # doctest: +SKIP
    """

    def __init__(self, model: str | Path | KeypointModel, device: str = "auto") -> None:
        net = load_model(model)[0] if isinstance(model, (str, Path)) else model
        if net.input_kind != "keypoints":
            raise UserError(
                f"{model} is a {net.family} model, which reads images: lifting "
                "needs a lifting network (train liftpose-27/81/243 on "
                "`posekit data motion` sequences)"
            )
        self.device = select_device(device)
        self.net = net.to(self.device).eval()
        self.schema = net.schemas[0]

    def lift(self, keypoints2d: np.ndarray, intrinsics: Any) -> np.ndarray:
        """(T, K, 3) root-relative 3D (metres) of one subject's (T, K, 3) pixels (OpenCV's
        convention) and confidences, NaN or confidence 0 where missing."""
        k2 = np.asarray(keypoints2d, dtype=np.float64)
        if k2.ndim != 3 or k2.shape[1:] != (self.schema.num_keypoints, 3):
            raise UserError(
                f"lift: keypoints of shape {k2.shape}, not (frames, "
                f"{self.schema.num_keypoints}, 3) for {self.schema.name}"
            )
        inputs = normalised_inputs(k2, np.asarray(intrinsics, dtype=np.float64))
        with torch.inference_mode():
            out = self.net.lift(torch.from_numpy(inputs[None]).to(self.device))
        return out[0].double().cpu().numpy()

    def live(self, intrinsics: Any = None) -> LiveLifting:
        """Per-track lifting of tracked `Results`, frame by frame (`LiveLifting`)."""
        return LiveLifting(self, None if intrinsics is None else np.asarray(intrinsics, float))


@dataclass
class LiveLifting:
    """Adds `keypoints3d` to each tracked frame: per track, the frames seen so far (at most
    the receptive field) are lifted and the newest frame's 3D kept. A causal network reads
    exactly that window; a centred one sees the newest frame repeated where its future would
    be (as at a clip's end), so its live 3D is a little less accurate than `lift` on the
    finished clip. A track unseen for a receptive field of frames is forgotten."""

    lifter: Lifter
    intrinsics: np.ndarray | None = None
    history: dict[int, deque[np.ndarray]] = field(default_factory=dict)
    last_seen: dict[int, int] = field(default_factory=dict)
    frames: int = 0

    def __call__(self, r: Results) -> Results:
        net, schema = self.lifter.net, self.lifter.schema
        if r.boxes.id is None:
            raise UserError("lifting needs tracked results (track ids)")
        if self.intrinsics is None:
            h, w = r.keypoints.orig_shape
            self.intrinsics = guessed_intrinsics(w, h)
            log.info(
                "lifting with a guessed camera: focal length %.0f px, principal point "
                "(%.1f, %.1f) (give the intrinsics when known)",
                *self.intrinsics[1:],
            )
        others = {
            r.schemas[int(c)].name
            for c in r.boxes.cls
            if r.schemas[int(c)].keypoints != schema.keypoints
        }
        if others:
            raise UserError(
                f"the lifter was trained on {schema.name} keypoints, the detector "
                f"gives {', '.join(sorted(others))}"
            )
        rf = net.receptive_field
        before, after = net.padding()
        k2 = r.keypoints.data.copy()
        k2[..., :2] += POSEKIT_TO_OPENCV
        k2[k2[..., 2] < r.keypoints.kpt_conf] = np.nan  # not seen: missing, as in training
        inputs = normalised_inputs(k2, self.intrinsics)  # (N, K, 3)
        windows = []
        for track, frame in zip(r.boxes.id.tolist(), inputs, strict=True):
            past = self.history.setdefault(int(track), deque(maxlen=before + 1))
            past.append(frame)
            self.last_seen[int(track)] = self.frames
            seen = list(past)
            windows.append([seen[0]] * (before + 1 - len(seen)) + seen + [seen[-1]] * after)
        self.frames += 1
        for track in [t for t, f in self.last_seen.items() if self.frames - f > rf]:
            del self.history[track], self.last_seen[track]
        points = np.full((len(inputs), schema.num_keypoints, 3), np.nan)
        if windows:
            with torch.inference_mode():
                x = torch.from_numpy(np.asarray(windows, dtype=np.float32)).to(self.lifter.device)
                points = net(x)[:, 0].double().cpu().numpy()
        return replace(r, keypoints3d=points)
