"""Ultralytics files in posekit: parity with Ultralytics itself, the seeds' code, safety.

The reference is Ultralytics 8.4 in an environment of its own (`make reference`; its Python is
`POSEKIT_ULTRALYTICS_PYTHON`), which builds each model from its own YAML with conditioned random
weights, saves it in the published layouts and records its outputs and `predict` detections
(tests/reference/ultralytics_reference.py). The files are generated here, cached outside the
repository, never committed. Without that environment these tests are skipped, unless
`POSEKIT_REQUIRE_REFERENCE=1` (as `make test` and CI set it) makes that a failure.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from posekit import Model
from posekit.cli.main import main
from posekit.data.synth.generator import SynthConfig, render
from posekit.utils.errors import UserError
from posekit.utils.serialization import UnsafeFileError

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parent / "reference" / "ultralytics_reference.py"
VERSION = "8.4.190"
#: v8, 11 and 26 at n (11 and 26 with 80 classes, as their YAMLs say), the C3k path at m, and
#: the detect models that serve top-down families as detectors
MODELS = ["yolov8n-pose", "yolo11n-pose", "yolo26n-pose", "yolo11m-pose", "yolo11n", "yolo26n"]
BRANCHES = [(m, b) for m in MODELS for b in ("one2many", "one2one") if "26" in m or b == "one2many"]


def reference_python() -> Path | None:
    given = os.environ.get("POSEKIT_ULTRALYTICS_PYTHON")
    default = Path.home() / ".cache" / "posekit-test" / f"ultralytics-{VERSION}" / "bin" / "python"
    path = Path(given) if given else default
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def reference() -> Path:
    """The folder of reference files and outputs (generated once per script version)."""
    python = reference_python()
    if python is None:
        if os.environ.get("POSEKIT_REQUIRE_REFERENCE") == "1":
            pytest.fail("the Ultralytics reference environment is missing: run `make reference`")
        pytest.skip("no Ultralytics reference environment (make reference)")
    key = hashlib.sha256(SCRIPT.read_bytes() + Path(__file__).read_bytes()).hexdigest()[:12]
    out = python.parent.parent / "files" / key
    if not (out / "done").is_file():
        out.mkdir(parents=True, exist_ok=True)
        # a scene and its mirror image: different detections, alike score statistics (the
        # random networks' scores hang on content, and one bias serves both images)
        scene = render(SynthConfig(kind="person", imgsz=640, seed=3), 0).image
        images = [out / "img0.png", out / "img1.png"]
        cv2.imwrite(str(images[0]), scene)
        cv2.imwrite(str(images[1]), np.ascontiguousarray(scene[:, ::-1]))
        env = {**os.environ, "YOLO_CONFIG_DIR": str(out / "settings"), "YOLO_OFFLINE": "1"}
        subprocess.run(
            [
                str(python),
                str(SCRIPT),
                str(out),
                *map(str, images),
                "--models",
                *MODELS,
                "--planted",
                str(out / "PLANTED-RAN"),
            ],
            check=True,
            env=env,
            capture_output=True,
            timeout=900,
        )
        (out / "done").write_text("ok")
    return out


def _frames(ref: Path) -> list[np.ndarray]:
    return [cv2.imread(str(ref / f"img{i}.png")) for i in range(2)]


def _model(ref: Path, name: str, branch: str) -> Model:
    return Model(ref / f"{name}-release.pt", one2one=branch == "one2one")


@pytest.mark.parametrize(("name", "branch"), BRANCHES)
def test_outputs_per_location_agree_with_ultralytics(
    reference: Path, name: str, branch: str
) -> None:
    ref = np.load(reference / f"{name}.npz")
    net = _model(reference, name, branch).inference_net  # BatchNorm folded, as Ultralytics runs
    with torch.no_grad():
        out = net(torch.from_numpy(ref["input"]))
    strides = out.strides.numpy()[:, None]
    # raw units: side distances and keypoint offsets in cells, scores as probabilities
    box = np.abs(out.boxes[0].numpy() - ref[f"raw_{branch}_boxes"]) / strides
    assert box.max() < 1e-3
    assert np.abs(out.cls_logits[0].sigmoid().numpy() - ref[f"raw_{branch}_scores"]).max() < 1e-3
    if not name.endswith("-pose"):
        return
    kp = ref[f"raw_{branch}_keypoints"]
    # in the head's raw units: YOLOv8/11 decode (2 * raw + cell - 0.5) * stride, YOLO26
    # (raw + cell) * stride
    per_raw = strides[:, :, None] * (1 if "26" in name else 2)
    assert (np.abs(out.keypoints[0].numpy() - kp[..., :2]) / per_raw).max() < 1e-3
    assert np.abs(out.kpt_logits[0].sigmoid().numpy() - kp[..., 2]).max() < 1e-3


def _pairs(
    boxes: np.ndarray, classes: np.ndarray, ref_boxes: np.ndarray, ref_classes: np.ndarray
) -> np.ndarray:
    """For each reference detection, the index of the nearest posekit box of its class (an
    end-to-end model may report one location under several classes)."""
    d = np.abs(ref_boxes[:, None] - boxes[None]).max(-1)
    d += 1e6 * (ref_classes[:, None] != classes[None])
    return d.argmin(1)


@pytest.mark.parametrize(("name", "branch"), BRANCHES)
def test_predict_gives_ultralytics_detections(reference: Path, name: str, branch: str) -> None:
    ref = np.load(reference / f"{name}.npz")
    frames = _frames(reference)
    results = _model(reference, name, branch).predict(frames)
    for i, (r, frame) in enumerate(zip(results, frames, strict=True)):
        rb = ref[f"det{i}_{branch}_boxes"]
        assert 0 < len(rb) < 300, "the reference must have detections and no max_det cut"
        assert len(r) == len(rb)
        rc = ref[f"det{i}_{branch}_classes"]
        j = _pairs(r.boxes.xyxy, r.boxes.cls, rb, rc)
        assert len(set(j.tolist())) == len(rb)  # one to one
        assert np.abs(r.boxes.xyxy[j] - rb).max() < 0.05
        assert np.abs(r.boxes.conf[j] - ref[f"det{i}_{branch}_scores"]).max() < 1e-3
        assert (r.boxes.cls[j] == rc).all()
        if name.endswith("-pose"):
            kp = ref[f"det{i}_{branch}_keypoints"]
            h, w = frame.shape[:2]
            # Ultralytics clips keypoints to the image; posekit keeps where they fall
            xy = r.keypoints.data[j][..., :2].clip(0, [w, h])
            assert np.abs(xy - kp[..., :2]).max() < 0.05
            assert np.abs(r.keypoints.conf[j] - kp[..., 2]).max() < 1e-3


def test_a_planted_global_is_refused_in_one_line(reference: Path) -> None:
    planted = reference / f"{MODELS[0]}-planted.pt"
    with pytest.raises(UnsafeFileError) as e:
        Model(planted)
    message = str(e.value)
    assert "\n" not in message and "system" in message and str(planted) in message
    assert not (reference / "PLANTED-RAN").exists()


def test_the_release_and_saved_layouts_load_alike(reference: Path) -> None:
    a = Model(reference / "yolo11n-pose.pt").net
    b = Model(reference / "yolo11n-pose-release.pt").net
    for (ka, ta), (kb, tb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(ta, tb)


def test_the_seeds_example_runs_unchanged_but_for_the_import(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """Seeds 000 and 002 with `Model` for `YOLO`: predict on a photo, read the keypoints,
    show (no display here: one note, no crash) and save a drawing with the seeds' options."""
    monkeypatch.chdir(tmp_path)
    photo = reference / "img0.png"
    from posekit import Model as YOLO  # the seeds' one changed line

    model = YOLO(reference / "yolov8n-pose-release.pt")
    results = model(str(photo))
    for result in results:
        with caplog.at_level("INFO"):
            result.show()
        assert "nothing was shown" in caplog.text
        kp = result.keypoints
        assert kp.data.shape == (len(result), 17, 3)
        assert kp.xy.shape == (len(result), 17, 2) and kp.conf.shape == (len(result), 17)
        assert result.names == {0: "0"}  # the file's names (built from a YAML, no dataset)
        result.plot(
            show=False,
            save=True,
            filename="out.jpg",
            conf=True,
            line_width=2,
            font_size=14,
            boxes=True,
            labels=True,
        )
    drawn = cv2.imread(str(tmp_path / "out.jpg"))
    assert drawn is not None and drawn.shape == cv2.imread(str(photo)).shape
    assert np.abs(drawn.astype(int) - cv2.imread(str(photo)).astype(int)).sum() > 0


@pytest.mark.parametrize("name", ["yolov8n-pose", "yolo26n-pose", "yolo11n"])
def test_an_exported_file_gives_ultralytics_detections(
    reference: Path, tmp_path: Path, name: str
) -> None:
    """`posekit export` of an Ultralytics file (checked against PyTorch on the reference
    image), then predict with the .onnx file alone: Ultralytics' detections."""
    out = tmp_path / f"{name}.onnx"
    file, image = reference / f"{name}-release.pt", reference / "img0.png"
    args = ["export", "--model", str(file), "--out", str(out), "--check-source", str(image)]
    assert main(args) == 0
    branch = "one2one" if "26" in name else "one2many"
    ref = np.load(reference / f"{name}.npz")
    r = Model(out).predict(_frames(reference)[0])[0]
    rb, rc = ref[f"det0_{branch}_boxes"], ref[f"det0_{branch}_classes"]
    assert len(r) == len(rb) > 0
    j = _pairs(r.boxes.xyxy, r.boxes.cls, rb, rc)
    assert np.abs(r.boxes.xyxy[j] - rb).max() < 0.05
    assert np.abs(r.boxes.conf[j] - ref[f"det0_{branch}_scores"]).max() < 1e-3


def test_a_published_name_not_on_disk_is_downloaded_and_loaded(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Model("yolo11n-pose.pt")` with no such file: fetched from the publisher's URL (here a
    server on 127.0.0.1 with the reference's file) into `$POSEKIT_CACHE`, then loaded."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(reference / "yolo11n-pose-release.pt", served / "yolo11n-pose.pt")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("POSEKIT_ULTRALYTICS_RELEASES", f"http://127.0.0.1:{httpd.server_port}")
        monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "cache"))
        monkeypatch.chdir(tmp_path)
        model = Model("yolo11n-pose.pt")
    finally:
        httpd.shutdown()
        httpd.server_close()
    cached = tmp_path / "cache" / "ultralytics" / "yolo11n-pose.pt"
    assert Path(model.source) == cached
    assert cached.read_bytes() == (served / "yolo11n-pose.pt").read_bytes()
    frame = _frames(reference)[0]
    a, b = model.predict(frame)[0], Model(reference / "yolo11n-pose-release.pt").predict(frame)[0]
    assert len(a) == len(b) > 0 and np.array_equal(a.keypoints.data, b.keypoints.data)
    assert Model("yolo11n-pose.pt").source == str(cached)  # the server is gone: the cache serves


def test_a_file_fine_tunes_on_other_keypoints_with_a_new_head(
    reference: Path, mouse8: Path, tmp_path: Path
) -> None:
    """`posekit train --model file.pt` on the openfield mouse (4 keypoints, not 17): the body
    is the file's, the keypoint outputs a new head; the run saves a posekit checkpoint that
    predicts the mouse's keypoints."""
    from posekit.data import load_splits
    from posekit.models.base import for_keypoints

    file = reference / "yolo11n-pose-release.pt"
    schema = load_splits(str(mouse8))["train"].category(1).schema
    net = Model(file).net
    new, fresh = for_keypoints(net, [schema], ["mouse"])
    old, own = net.state_dict(), new.state_dict()
    changed = [k for k in own if own[k].shape != old[k].shape]
    # only the head's outputs (this random file has 80 classes: its class branch too)
    head = f"model.{len(net.model) - 1}."
    assert fresh == len(changed) and all(k.startswith(head) for k in changed)
    assert any(".cv4." in k for k in changed)
    assert all(torch.equal(own[k], old[k]) for k in own if k not in changed)
    run = f"--epochs 1 --imgsz 160 --batch 8 --workers 0 --project {tmp_path} --name ft"
    assert main(["train", "--model", str(file), "--data", str(mouse8), *run.split()]) == 0
    tuned = Model(tmp_path / "ft" / "weights" / "last.pt")
    assert tuned.net.family == "yolo" and tuned.schemas == [schema]
    assert tuned.predict(_frames(reference)[0], conf=0.0)[0].keypoints.data.shape[1:] == (4, 3)


def test_ultralytics_is_not_importable_in_posekits_environment() -> None:
    found = subprocess.run([sys.executable, "-c", "import ultralytics"], capture_output=True)
    assert found.returncode != 0


def test_a_detect_file_finds_the_boxes_of_a_top_down_model(reference: Path) -> None:
    """A COCO-style detect file serves as `detector=`: its class-0 (person) boxes become the
    crops, its other classes are left out."""
    detector = Model(reference / "yolo11n-release.pt")
    frame = _frames(reference)[0]
    found = detector.predict(frame)[0]
    people = found.boxes.cls == 0
    assert people.any() and (~people).any()  # both kinds, so the filter is exercised
    top_down = Model("heatpose-s", detector=reference / "yolo11n-release.pt")
    r = top_down.predict(frame)[0]
    assert len(r) == people.sum()
    assert np.allclose(
        np.sort(r.boxes.conf / r.keypoints.conf.mean(1)),
        np.sort(found.boxes.conf[people]),
        atol=1e-6,
    )


def _fake_ultralytics_file(path: Path, monkeypatch: pytest.MonkeyPatch, **state: object) -> Path:
    """A file that names `ultralytics.nn.tasks.PoseModel` (pickled through a stand-in module,
    Ultralytics is not installed here) whose model holds `state`: hostile descriptions."""
    import types

    package = types.ModuleType("ultralytics")
    tasks = types.ModuleType("ultralytics.nn.tasks")
    pose_model = type("PoseModel", (), {"__module__": "ultralytics.nn.tasks"})
    tasks.PoseModel = pose_model  # type: ignore[attr-defined]
    for name, module in (
        ("ultralytics", package),
        ("ultralytics.nn", types.ModuleType("x")),
        ("ultralytics.nn.tasks", tasks),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    model = pose_model()
    model.__dict__.update(state)
    torch.save({"model": model, "version": "8.4.190"}, path)
    return path


ROWS = {"backbone": [[-1, 1, "Conv", [64, 3, 2]]], "head": [[[0], 1, "Pose", ["nc", "kpt_shape"]]]}


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ({"yaml": {**ROWS, "kpt_shape": "17x3"}}, "kpt_shape"),
        ({"yaml": {**ROWS, "kpt_shape": [10**9, 3]}}, "keypoint count"),
        ({"yaml": {**ROWS, "kpt_shape": [17, 3], "nc": 10**12}}, "nc"),
        ({"yaml": {**ROWS, "kpt_shape": [17, 3]}, "names": {"a": 1, 2: "b"}}, "class names"),
        ({"yaml": {**ROWS, "kpt_shape": [17, 3], "scales": {"n": "big"}}}, "malformed"),
        ({"yaml": {"backbone": [], "head": "Pose"}}, "unknown model"),
        ({"yaml": "yolo11n-pose.yaml"}, "no architecture description"),
    ],
)
def test_a_hostile_description_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: dict, says: str
) -> None:
    path = _fake_ultralytics_file(tmp_path / "m.pt", monkeypatch, **state)
    with pytest.raises(UserError) as e:
        Model(path)
    assert says in str(e.value) and "\n" not in str(e.value) and str(path) in str(e.value)
