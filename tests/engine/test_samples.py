"""Training samples: the epoch reaches persistent workers through the sampler's indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from posekit.data.formats import load_dataset
from posekit.data.synth import SynthConfig, generate
from posekit.data.transforms import transform_points
from posekit.models.samples import AugmentConfig, EpochSampler, KeypointSamples, collate


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


def test_mosaic_samples_hold_several_images_people_where_the_matrix_puts_them(
    tmp_path: Path,
) -> None:
    root = generate(SynthConfig("person", images=6, imgsz=160, seed=2), tmp_path / "d", val=0.0)
    ds = load_dataset(root, "train")
    still = {"scale": 0.0, "degrees": 0.0, "translate": 0.0, "flip": 0.0, "hsv": (0, 0, 0)}
    samples = KeypointSamples(ds, 160, AugmentConfig(mosaic=1.0, blur=0.0, **still), rect=True)
    plain = KeypointSamples(ds, 160, AugmentConfig.off(), rect=True)
    w, h = samples.canvas
    more = 0
    for i in range(len(samples)):
        image, inst, _, m = samples[i]
        assert image.shape == (3, h, w)
        kp = inst.keypoints
        labelled = kp[..., 2] > 0
        assert ((kp[..., 0] >= 0) & (kp[..., 0] <= w) & (kp[..., 1] >= 0) & (kp[..., 1] <= h))[
            labelled
        ].all()
        more += len(inst) > len(plain.instances[i])
        # image i's own labelled keypoints, moved by the returned matrix, are among them
        own = plain.instances[i].keypoints
        xy = transform_points(own[..., :2], m)
        inside = (own[..., 2] > 0) & (xy[..., 0] >= 0) & (xy[..., 0] < w)
        inside &= (xy[..., 1] >= 0) & (xy[..., 1] < h)
        for p in xy[inside]:
            assert np.abs(kp[..., :2][labelled] - p).max(-1).min() < 1e-6
    assert more >= 3  # most mosaics bring in people from the other images
