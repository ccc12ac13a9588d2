"""Shared fixtures: a small valid COCO keypoints dataset on disk that tests break on purpose."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MOUSE = SHARED_DATA / "openfield-mouse"

# 3 keypoints: a centre point and a left/right pair; 64x48 and 80x60 images.
VALID_COCO: dict[str, Any] = {
    "images": [
        {"id": 1, "file_name": "a.png", "width": 64, "height": 48},
        {"id": 2, "file_name": "b.png", "width": 80, "height": 60},
    ],
    "annotations": [
        {
            "id": 10,
            "image_id": 1,
            "category_id": 1,
            "keypoints": [10, 10, 2, 20, 12, 1, 5, 30, 2],
            "num_keypoints": 3,
            "bbox": [4, 8, 20, 24],
            "area": 480.0,
            "iscrowd": 0,
        },
        {
            "id": 11,
            "image_id": 1,
            "category_id": 1,
            "keypoints": [40, 20, 2, 0, 0, 0, 50, 30, 2],
            "num_keypoints": 2,
            "bbox": [38, 18, 14, 14],
            "area": 196,
            "iscrowd": 0,
        },
        {
            "id": 12,
            "image_id": 2,
            "category_id": 1,
            "keypoints": [30, 30, 2, 35, 31, 2, 25, 31, 2],
            "num_keypoints": 3,
            "bbox": [20, 25, 20, 10],
            "area": 200,
            "iscrowd": 0,
        },
    ],
    "categories": [
        {
            "id": 1,
            "name": "thing",
            "keypoints": ["centre", "left_end", "right_end"],
            "skeleton": [[1, 2], [1, 3]],
        },
    ],
}


def write_images(root: Path, coco: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for im in coco["images"]:
        img = np.full((im["height"], im["width"], 3), 90, dtype=np.uint8)
        cv2.imwrite(str(root / im["file_name"]), img)


@pytest.fixture
def valid_coco() -> dict[str, Any]:
    return copy.deepcopy(VALID_COCO)


@pytest.fixture
def make_dataset(tmp_path: Path):
    """Write a posekit dataset folder from a COCO dict (images from the unmodified template)."""

    def make(coco: dict[str, Any] | str, name: str = "ds") -> Path:
        root = tmp_path / name
        write_images(root / "images", VALID_COCO)
        ann = root / "annotations" / "train.json"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(coco if isinstance(coco, str) else json.dumps(coco, indent=1))
        return root

    return make


def needs_mouse() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not (MOUSE / "config.yaml").is_file(),
        reason=f"real data not found at {MOUSE} (../shared/data is only in the posekit workspace)",
    )


@pytest.fixture(scope="session")
def mouse8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight frames of the openfield mouse (every 14th, 640x480, one animal each) as a COCO
    dataset whose val split is its train split: what a family must be able to memorise."""
    import shutil

    from posekit.data.convert import convert

    if not (MOUSE / "config.yaml").is_file():
        pytest.skip(f"real data not found at {MOUSE}")
    root = tmp_path_factory.mktemp("mouse8")
    folder = root / "project" / "labeled-data" / "m4s1"
    folder.mkdir(parents=True)
    shutil.copy(MOUSE / "config.yaml", root / "project" / "config.yaml")
    lines = (MOUSE / "labeled-data/m4s1/CollectedData_Pranav.csv").read_text().splitlines()
    rows = lines[3::14][:8]
    (folder / "CollectedData_Pranav.csv").write_text("\n".join(lines[:3] + rows) + "\n")
    for row in rows:
        name = row.split(",")[0].rsplit("/", 1)[-1]
        shutil.copy(MOUSE / "labeled-data/m4s1" / name, folder / name)
    data, _ = convert(root / "project", root / "coco", to="coco", link_images=False)
    return _fit_yaml(data.parent if data.is_file() else data)


def _fit_yaml(root: Path) -> Path:
    """Validate on the training images themselves (to measure memorisation)."""
    y = root / "fit.yaml"
    y.write_text(
        "path: .\nimages: images\ntrain: annotations/train.json\nval: annotations/train.json\n"
    )
    return y


@pytest.fixture(scope="session")
def four_people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four synthetic 192 px person images, as a dataset whose val split is its train split."""
    from posekit.data.synth import SynthConfig, generate

    root = generate(
        SynthConfig("person", images=4, imgsz=192, seed=3),
        tmp_path_factory.mktemp("fit") / "p",
        val=0.0,
    )
    return _fit_yaml(root)


#: The recipe a one-stage family memorises `four_people` with: no augmentation, rtpose's
#: learning rate, half width (about a minute for rtpose-n on 2 CPU cores).
MEMORISE_RECIPE: dict[str, Any] = {
    "epochs": 150,
    "imgsz": 192,
    "batch": 4,
    "workers": 0,
    "width": 0.5,
    "lr0": 0.006,
    "warmup_epochs": 1,
    "scale": 0,
    "degrees": 0,
    "translate": 0,
    "flip": 0,
    "hsv": (0, 0, 0),
    "blur": 0,
}


def memorise(model: str, data: Path, project: Path, **overrides: Any) -> Any:
    """`Model(model).train` on `data` with `MEMORISE_RECIPE` (and `overrides`, e.g. the run's
    `name`)."""
    from posekit import Model

    settings = {**MEMORISE_RECIPE, **overrides}
    return Model(model).train(data=str(data), project=str(project), **settings)


@pytest.fixture(scope="session")
def memorisation() -> Any:
    """`memorise`, for test modules that cannot import this conftest by name."""
    return memorise


@pytest.fixture(scope="session")
def overfit_run(four_people: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A tiny rtpose trained to memorise `four_people` (about a minute on 2 CPU cores); shared
    by the training test that checks it and the prediction tests that use it."""
    project = tmp_path_factory.mktemp("overfit")
    return memorise("rtpose-n", four_people, project, name="fit", val_period=50)


def tiny_slp(root: Path, video: Path | None = None) -> Path:
    """A SLEAP project written with sleap-io: a 3-frame video (`video`, default
    `root/clip.mp4`) with two labelled frames of one two-node mouse; `root/labels.slp`."""
    sio = pytest.importorskip("sleap_io")
    root.mkdir(parents=True, exist_ok=True)
    video = video or root / "clip.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10, (80, 64))
    for i in range(3):
        writer.write(np.full((64, 80, 3), 60 * i, np.uint8))
    writer.release()
    clip = sio.Video.from_filename(str(video))
    sk = sio.Skeleton(["head", "tail"], edges=[("head", "tail")], name="mouse")
    points = np.array([[10.0, 12.0], [30, 20]])
    frames = [sio.LabeledFrame(video=clip, frame_idx=f,
                               instances=[sio.Instance.from_numpy(points, skeleton=sk)])
              for f in (0, 2)]  # fmt: skip
    sio.Labels(frames).save(str(root / "labels.slp"))
    return root / "labels.slp"
