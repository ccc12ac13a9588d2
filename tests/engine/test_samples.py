"""Training samples: the epoch reaches persistent workers through the sampler's indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from posekit.data.layout import load_dataset
from posekit.data.synth import SynthConfig, generate
from posekit.engine.dataset import AugmentConfig, EpochSampler, KeypointSamples, collate


def test_persistent_workers_draw_new_augmentations_every_epoch(tmp_path: Path) -> None:
    root = generate(SynthConfig("person", images=4, imgsz=96, seed=0), tmp_path / "d", val=0.0)
    samples = KeypointSamples(load_dataset(root, "train"), 96, AugmentConfig(degrees=30))
    sampler = EpochSampler(RandomSampler(samples, generator=torch.Generator().manual_seed(0)), 4)
    loader = DataLoader(samples, batch_size=4, sampler=sampler, num_workers=1,
                        persistent_workers=True, collate_fn=collate)  # fmt: skip
    epochs = []
    for e in range(2):
        sampler.set_epoch(e)
        ((images, _, ids, _),) = list(loader)
        epochs.append(dict(zip(ids, images, strict=True)))
    assert sorted(epochs[0]) == sorted(epochs[1])  # every image once per epoch
    assert all(not torch.equal(epochs[0][i], epochs[1][i]) for i in epochs[0])
    sampler.set_epoch(1)
    assert sorted(sampler) == [4, 5, 6, 7]
    a, b = samples[1], samples[1 + 4]  # the same image, epochs 0 and 1
    assert a[2] == b[2] and not np.array_equal(a[3], b[3])
