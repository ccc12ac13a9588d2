"""Sequence datasets of synthetic motion (`posekit data motion`): clips of `posekit.threed.motion`
filmed by random cameras, written as a `posekit.data.sequences` folder, the training and
validation data of lifting networks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posekit.data.sequences import write_sequence_dataset
from posekit.schema import KeypointSchema
from posekit.threed.motion import film, generate_clip
from posekit.utils.bounds import check_ranges, ranged

#: the frame sizes the random cameras have (the lifter reads camera-normalised points, so any
#: size works; a mix keeps the data honest about it)
FRAME_SIZES = ((1920, 1080), (1280, 720), (1000, 1000), (640, 480))


@dataclass(frozen=True)
class MotionDataConfig:
    """What `posekit data motion` generates."""

    clips: int = ranged(400, 1, 1_000_000)  # clips in all (`val` of them held out)
    frames: int = ranged(120, 1, 10_000)  # frames per clip (30 per second)
    val: float = ranged(0.1, 0, 0.9)  # the fraction of clips held out for validation
    noise: float = ranged(0.01, 0, 0.2)  # the detector's error, a fraction of the height
    dropped: float = ranged(0.05, 0, 0.9)  # the fraction of keypoints the detector misses
    seed: int = ranged(0, 0, 2**63 - 1)  # the generator's seed: the same seed, the same dataset

    def __post_init__(self) -> None:
        check_ranges(self, "data motion")


def film_clips(
    schema: KeypointSchema,
    clips: int,
    cfg: MotionDataConfig,
    rng: np.random.Generator,
    progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of `clips` random clips (`posekit.data.sequences`'s names)."""
    k2, k3, intrinsics, sizes = [], [], [], []
    for _ in range(clips):
        clip = generate_clip(schema, cfg.frames, rng)
        size = FRAME_SIZES[rng.integers(len(FRAME_SIZES))]
        noise = (cfg.noise * 0.5, cfg.noise * 1.5)
        seen = film(clip, rng, size=size, noise=noise, gross=cfg.dropped * 0.4, dropped=cfg.dropped)
        m = seen.camera.matrix
        k2.append(seen.detected)
        k3.append(seen.points)
        intrinsics.append([m[0, 0], m[1, 1], m[0, 2], m[1, 2]])
        sizes.append(size)
        if progress is not None:
            progress(1)
    return {
        "keypoints2d": np.asarray(k2, dtype=np.float32),
        "keypoints3d": np.asarray(k3, dtype=np.float32),
        "intrinsics": np.asarray(intrinsics),
        "image_size": np.asarray(sizes, dtype=np.int64),
    }


def write_motion_dataset(
    out: str | Path,
    schema: KeypointSchema,
    cfg: MotionDataConfig,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate and write the dataset (train and val splits, deterministic for `cfg.seed`);
    returns its index file."""
    rng = np.random.default_rng(cfg.seed)
    held_out = round(cfg.clips * cfg.val)
    splits = {"train": film_clips(schema, cfg.clips - held_out, cfg, rng, progress)}
    if held_out:
        splits["val"] = film_clips(schema, held_out, cfg, rng, progress)
    return write_sequence_dataset(out, schema, splits)
