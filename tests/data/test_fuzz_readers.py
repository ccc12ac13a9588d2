"""A seeded fuzz test over every reader of a file a user hands posekit: COCO, YOLO, DeepLabCut
CSV, CVAT XML, Label Studio, LabelMe, posekit checkpoint descriptions and ONNX metadata.

Each case starts from a valid file and mutates it, at the byte level (flips, cuts, inserted
bytes, repeated chunks) or, for JSON, at the value level (a field replaced by a huge or
negative number, NaN, a deep list, a string climbing out with `../`, a wrong type). Whatever
the mutation, `posekit data check` (or loading the model) must end with its verdict or one
readable line and exit 2: never a traceback, never a hang, and memory stays bounded. The
seed is fixed, so a failure reproduces; `POSEKIT_FUZZ_CASES` runs more cases.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fuzzing import fuzz, mutate_bytes, mutate_json
from posekit.cli.main import USER_ERRORS, main


def _dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=True)


# ------------------------------------------------------------------ seeds (valid files)
def _image(path: Path, w: int = 64, h: int = 48) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 120, np.uint8))


def coco_seed(root: Path) -> dict[str, Any]:
    _image(root / "images" / "a.jpg")
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [4, 4, 30, 30],
                "area": 900,
                "iscrowd": 0,
                "num_keypoints": 2,
                "keypoints": [10, 10, 2, 20, 20, 1, 0, 0, 0],
            }
        ],
        "categories": [
            {"id": 1, "name": "thing", "keypoints": ["a", "b", "c"], "skeleton": [[1, 2], [2, 3]]}
        ],
    }


def labelstudio_seed(root: Path) -> list[Any]:
    _image(root / "a.jpg")

    def point(rid: str, label: str, x: float, y: float) -> dict[str, Any]:
        return {"id": rid, "type": "keypointlabels", "from_name": "kp", "to_name": "image",
                "original_width": 64, "original_height": 48,
                "value": {"x": x, "y": y, "width": 1, "keypointlabels": [label]}}  # fmt: skip

    box = {
        "id": "b1",
        "type": "rectanglelabels",
        "from_name": "box",
        "to_name": "image",
        "original_width": 64,
        "original_height": 48,
        "value": {"x": 5, "y": 5, "width": 50, "height": 60, "rectanglelabels": ["thing"]},
    }
    pts = [point("p1", "a", 20, 30), point("p2", "b", 40, 50)]
    for p in pts:
        p["parentID"] = "b1"
    return [{"id": 1, "data": {"image": "/data/upload/1/a.jpg"},
             "annotations": [{"result": [box, *pts]}]}]  # fmt: skip


def labelme_seed(root: Path) -> dict[str, Any]:
    _image(root / "a.jpg")
    return {"version": "5.4.1", "flags": {}, "imagePath": "a.jpg", "imageData": None,
            "imageHeight": 48, "imageWidth": 64,
            "shapes": [{"label": "a", "points": [[10, 10]], "shape_type": "point",
                        "group_id": 1, "flags": {}},
                       {"label": "b", "points": [[20, 22]], "shape_type": "point",
                        "group_id": 1, "flags": {}}]}  # fmt: skip


CVAT_SEED = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels>
    <label><name>thing</name><type>skeleton</type>
      <svg>{svg}</svg>
    </label>
    <label><name>a</name><type>points</type><parent>thing</parent></label>
    <label><name>b</name><type>points</type><parent>thing</parent></label>
  </labels></task></meta>
  <image id="0" name="a.jpg" width="64" height="48">
    <skeleton label="thing" source="manual" z_order="0">
      <points label="a" source="manual" outside="0" occluded="0" points="10.0,10.0"/>
      <points label="b" source="manual" outside="0" occluded="1" points="20.0,22.0"/>
    </skeleton>
  </image>
</annotations>
""".format(
    svg='&lt;line data-node-from="1" data-node-to="2"/&gt;'
    '&lt;circle data-node-id="1" data-label-name="a"/&gt;'
    '&lt;circle data-node-id="2" data-label-name="b"/&gt;'
)

DLC_CSV = """scorer,me,me,me,me
bodyparts,snout,snout,tail,tail
coords,x,y,x,y
labeled-data/v1/img0.png,10.5,20.25,30,40
labeled-data/v1/img1.png,,,31,41
"""

DLC_CONFIG = "Task: t\nscorer: me\nbodyparts:\n- snout\n- tail\nmultianimalproject: false\n"

YOLO_LABEL = "0 0.5 0.5 0.4 0.6 0.3 0.3 2 0.6 0.6 1\n"
YOLO_YAML = "path: .\ntrain: images/train\nkpt_shape: [2, 3]\nnames:\n  0: thing\n"


def _check(path: Path) -> tuple[int, str]:
    return _run(["data", "check", str(path)])


def _run(args: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


# ------------------------------------------------------------------ the readers
def test_every_seed_is_a_valid_file(tmp_path: Path) -> None:
    """The fuzz starts from files that read clean, instance and keypoints included (else it
    would only ever test refusals)."""
    from posekit.data import load_dataset

    coco = tmp_path / "coco"
    seed = coco_seed(coco)
    (coco / "annotations").mkdir()
    (coco / "annotations" / "train.json").write_text(_dumps(seed))
    ls = tmp_path / "ls"
    ls.mkdir()
    (ls / "export.json").write_text(_dumps(labelstudio_seed(ls)))
    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "a.json").write_text(_dumps(labelme_seed(lm)))
    cvat = tmp_path / "cvat"
    _image(cvat / "images" / "a.jpg")
    (cvat / "annotations.xml").write_text(CVAT_SEED)
    dlc = tmp_path / "dlc"
    for i in range(2):
        _image(dlc / "labeled-data" / "v1" / f"img{i}.png", 120, 100)
    (dlc / "config.yaml").write_text(DLC_CONFIG)
    (dlc / "labeled-data" / "v1" / "CollectedData_me.csv").write_text(DLC_CSV)
    yolo = tmp_path / "yolo"
    _image(yolo / "images" / "train" / "a.jpg")
    (yolo / "labels" / "train").mkdir(parents=True)
    (yolo / "labels" / "train" / "a.txt").write_text(YOLO_LABEL)
    (yolo / "data.yaml").write_text(
        "path: .\ntrain: images/train\nkpt_shape: [2, 3]\nnames:\n  0: thing\n"
    )
    for path, points in [(coco / "annotations" / "train.json", [2]), (ls / "export.json", [2]),
                         (lm, [2]), (cvat / "annotations.xml", [2]), (dlc, [2, 1]),
                         (yolo / "data.yaml", [2])]:  # fmt: skip
        assert _check(path)[0] == 0, path
        ds = load_dataset(path)
        assert [int((a.keypoints[:, 2] > 0).sum()) for a in ds.annotations] == points, path


@pytest.mark.parametrize("level", ["bytes", "values"])
def test_fuzz_coco(tmp_path: Path, level: str) -> None:
    seed = coco_seed(tmp_path)
    (tmp_path / "annotations").mkdir()
    valid = _dumps(seed).encode()

    def case(rng: random.Random, i: int) -> tuple[int, str]:
        path = tmp_path / "annotations" / "train.json"
        data = mutate_bytes(valid, rng) if level == "bytes" else _dumps(mutate_json(seed, rng))
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return _check(path)

    fuzz(case, seed=1 if level == "bytes" else 2)


@pytest.mark.parametrize("level", ["bytes", "values"])
def test_fuzz_label_studio(tmp_path: Path, level: str) -> None:
    seed = labelstudio_seed(tmp_path)
    valid = _dumps(seed).encode()

    def case(rng: random.Random, i: int) -> tuple[int, str]:
        path = tmp_path / "export.json"
        data = mutate_bytes(valid, rng) if level == "bytes" else _dumps(mutate_json(seed, rng))
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        code, err = _run(["data", "check", str(path), "--image-root", str(tmp_path)])
        return code, err

    fuzz(case, seed=3 if level == "bytes" else 4)


@pytest.mark.parametrize("level", ["bytes", "values"])
def test_fuzz_labelme(tmp_path: Path, level: str) -> None:
    seed = labelme_seed(tmp_path)
    valid = _dumps(seed).encode()

    def case(rng: random.Random, i: int) -> tuple[int, str]:
        path = tmp_path / "a.json"
        data = mutate_bytes(valid, rng) if level == "bytes" else _dumps(mutate_json(seed, rng))
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return _check(tmp_path)

    fuzz(case, seed=5 if level == "bytes" else 6)


def test_fuzz_cvat(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "a.jpg")
    valid = CVAT_SEED.encode()

    def case(rng: random.Random, i: int) -> tuple[int, str]:
        path = tmp_path / "annotations.xml"
        path.write_bytes(mutate_bytes(valid, rng))
        return _check(path)

    fuzz(case, seed=7)


def test_fuzz_dlc_csv(tmp_path: Path) -> None:
    for i in range(2):
        _image(tmp_path / "labeled-data" / "v1" / f"img{i}.png", 120, 100)
    (tmp_path / "config.yaml").write_text(DLC_CONFIG)
    valid, config = DLC_CSV.encode(), DLC_CONFIG.encode()

    def case(rng: random.Random, i: int) -> tuple[int, str]:
        csv = tmp_path / "labeled-data" / "v1" / "CollectedData_me.csv"
        csv.write_bytes(mutate_bytes(valid, rng))
        (tmp_path / "config.yaml").write_bytes(mutate_bytes(config, rng) if i % 4 == 0 else config)
        return _check(tmp_path)

    fuzz(case, seed=8)


def test_fuzz_yolo(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "train" / "a.jpg")
    (tmp_path / "labels" / "train").mkdir(parents=True)
    valid_label, valid_yaml = YOLO_LABEL.encode(), YOLO_YAML.encode()

    def case(rng: random.Random, i: int) -> tuple[int, str]:
        (tmp_path / "labels" / "train" / "a.txt").write_bytes(mutate_bytes(valid_label, rng))
        (tmp_path / "data.yaml").write_bytes(mutate_bytes(valid_yaml, rng) if i % 3 == 0
                                             else valid_yaml)  # fmt: skip
        return _check(tmp_path / "data.yaml")

    fuzz(case, seed=9)


# ------------------------------------------------------------------ model descriptions
@pytest.fixture(scope="module")
def descriptions() -> dict[str, dict[str, Any]]:
    from posekit.models import create

    return {name: create(name, "coco17").describe()
            for name in ("rtpose-n", "rtmpose-t", "vitpose-s", "heatpose-t")}  # fmt: skip


def _describe_refused(desc: Any) -> tuple[int, str]:
    """What a user sees when a file carries `desc` as its model description: the model, or
    one line (the CLI prints a USER_ERRORS exception as `posekit: error: ...`)."""
    from posekit.models import model_from_description

    try:
        model_from_description(desc)
    except USER_ERRORS as e:
        return 2, f"posekit: error: {e}"
    return 0, ""


def test_fuzz_checkpoint_descriptions(descriptions: dict[str, dict[str, Any]]) -> None:
    """What a `.pt` checkpoint and an ONNX file's metadata both rebuild their model from."""
    names = sorted(descriptions)

    def case(rng: random.Random, i: int) -> tuple[int, str]:
        desc = mutate_json(descriptions[names[i % len(names)]], rng)
        code, err = _describe_refused(desc)
        assert "\n" not in err.strip(), err
        return code, err

    fuzz(case, seed=10)


def test_fuzz_checkpoint_files(tmp_path: Path) -> None:
    """Whole files: a checkpoint whose description and weights are mutated, given to
    `posekit predict`."""
    import torch

    from posekit.engine.checkpoint import save_checkpoint
    from posekit.models import create

    net = create("rtmpose-t", "coco17", input_size=(64, 64))
    base = torch.load(save_checkpoint(tmp_path / "base.pt", net), weights_only=True)
    _image(tmp_path / "img.png")

    def case(rng: random.Random, i: int) -> tuple[int, str]:
        data = dict(base)
        data["model"] = mutate_json(base["model"], rng)
        if i % 3 == 0:  # a weight of another shape, or one missing
            weights = dict(base["weights"])
            key = rng.choice(sorted(weights))
            if rng.random() < 0.5:
                del weights[key]
            else:
                weights[key] = torch.zeros(3, 1)
            data["weights"] = weights
        path = tmp_path / "m.pt"
        torch.save(data, path)
        return _run(["predict", "--model", str(path), "--source", str(tmp_path / "img.png"),
                     "--project", str(tmp_path / "runs"), "--no-save"])  # fmt: skip

    fuzz(case, seed=11)


def test_fuzz_onnx_metadata(tmp_path: Path) -> None:
    """posekit's metadata in an ONNX file, each string mutated (bytes or JSON values), read
    by `model_info` as `Model(path.onnx)` does before any session opens."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from posekit.export.metadata import metadata_for, model_info
    from posekit.models import create

    net = create("rtpose-n", "coco17")
    meta = metadata_for(net, input_shape=("batch", 3, "height", "width"), category_ids=[1],
                        version="0", imgsz=640)  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["out"])], "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 32, 32])],
    )  # fmt: skip

    def case(rng: random.Random, i: int) -> tuple[int, str]:
        model = helper.make_model(graph)
        for key, value in meta.items():
            if rng.random() < 0.4:
                try:
                    value = _dumps(mutate_json(json.loads(value), rng))
                except ValueError:
                    value = mutate_bytes(value.encode(), rng).decode("utf-8", "replace")
                if rng.random() < 0.3:
                    value = mutate_bytes(value.encode(), rng).decode("utf-8", "replace")
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        path = tmp_path / "m.onnx"
        onnx.save(model, str(path))
        try:
            model_info(path)
        except USER_ERRORS as e:
            assert "\n" not in str(e).strip(), e
            return 2, f"posekit: error: {e}"
        return 0, ""

    fuzz(case, seed=12)
