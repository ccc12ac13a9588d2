"""Training samples of lifting: chunks of `chunk` frames' 3D truth with the 2D window that
predicts them, cut from the clips of a sequence dataset (VideoPose3D's chunked generator).

Each clip is cut into consecutive chunks (the last one flush with the clip's end); a chunk's
window reaches the receptive field's context before and after it, the clip's first and last
frames repeated where it runs past an end, as `LiftPose.lift` pads at inference. With
augmentation, a chunk is mirrored with the probability `AugmentConfig.flip`, the draw seeded
by the run's seed, the epoch and the index (`posekit.models.samples.EpochSampler`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from posekit.data.sequences import PoseSequences
from posekit.models.lift_codec import mirrored, normalised_inputs, root_relative, root_weights


class LiftSamples(Dataset):
    """(window (T + RF - 1, K, 3), root-relative truth (T, K, 3), clip, first frame) items."""

    def __init__(self, ds: PoseSequences, net: Any, augment: Any, seed: int = 0) -> None:
        self.inputs = normalised_inputs(ds.keypoints2d, ds.intrinsics)  # (N, F, K, 3)
        self.truth = root_relative(ds.keypoints3d, root_weights(ds.schema)).astype(np.float32)
        frames = ds.frames
        self.chunk = min(net.config.chunk, frames)
        self.before, self.after = net.padding()
        starts = list(range(0, frames - self.chunk + 1, self.chunk))
        if starts[-1] + self.chunk < frames:
            starts.append(frames - self.chunk)
        self.items = [(clip, s) for clip in range(len(ds)) for s in starts]
        self.flip = float(getattr(augment, "flip", 0.0))
        self.flip_idx = np.asarray(ds.schema.flip_idx or range(ds.schema.num_keypoints))
        self.seed = seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        epoch, i = divmod(i, len(self.items))  # `EpochSampler` folds the epoch in
        clip, start = self.items[i]
        frames = self.inputs.shape[1]
        index = np.clip(
            np.arange(start - self.before, start + self.chunk + self.after), 0, frames - 1
        )
        window = self.inputs[clip, index]
        truth = self.truth[clip, start : start + self.chunk]
        rng = np.random.default_rng((self.seed, epoch, i))
        if self.flip and rng.random() < self.flip:
            window, truth = mirrored(window, truth, self.flip_idx)
        return torch.from_numpy(window), torch.from_numpy(truth), clip, start

    @staticmethod
    def collate(batch: list) -> tuple[torch.Tensor, torch.Tensor, list[int], list[int]]:
        windows = torch.stack([b[0] for b in batch])
        truth = torch.stack([b[1] for b in batch])
        return windows, truth, [b[2] for b in batch], [b[3] for b in batch]
