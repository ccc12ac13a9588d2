"""ONNX export and the ONNX Runtime backend, for every registered family: export -> metadata
read back -> ONNX Runtime -> the same `Results` as PyTorch; static graphs, files without
metadata, wrong input sizes, a failing self-check, the CLI with the .onnx file alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cli_output import error_lines
from posekit import Model
from posekit.cli.main import main
from posekit.export import ExportCheckError
from posekit.export.check import check_export, check_images
from posekit.export.metadata import MissingMetadataError, model_info, read_metadata
from posekit.models import REGISTRY, create
from posekit.predict.backends import OnnxBackend
from posekit.utils.extras import MissingExtraError

pytest.importorskip("onnxruntime")

#: One small model per family (a new family must add its case here: see the family test).
CASES = {
    "heatpose": ("heatpose-t", {}),
    "pafpose": ("pafpose-s", {"width": 0.5}),
    "rtmpose": ("rtmpose-t", {}),
    "rtpose": ("rtpose-n", {}),
    "vitpose": ("vitpose-s", {"width": 0.25, "depth": 0.25}),
    # end-to-end: a random YOLOv8's flat scores and image-sized boxes make NMS decide between
    # near ties (the NMS branch is checked on Ultralytics files in tests/models)
    "yolo": ("yolo26n-pose", {}),
}


def test_every_family_has_an_export_case() -> None:
    """Every family that reads images (lifting networks: test_liftpose.py)."""
    detectors = [f for f in REGISTRY.family_names() if REGISTRY.family(f).input_kind == "images"]
    assert sorted(CASES) == detectors


def perturbed(name: str, overrides: dict, seed: int = 0) -> Model:
    """A model whose every weight and BatchNorm statistic is random (fresh heads output
    constants, which would make the comparison vacuous)."""
    torch.manual_seed(seed)
    m = Model(name, "coco17")
    if overrides:  # a smaller network of the same family
        m.net = create(name, "coco17", **overrides)
    with torch.no_grad():
        for p in m.net.parameters():
            p.add_(torch.randn_like(p) * 0.03)
        for mod in m.net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    m.net.eval()
    return m


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Model, Path]]:
    """Each family's perturbed model and its export (dynamic shapes, checked)."""
    out = {}
    for family, (name, overrides) in CASES.items():
        m = perturbed(name, overrides)
        path = tmp_path_factory.mktemp(family) / f"{name}.onnx"
        result = m.export(out=path, imgsz=256)
        assert result.check is not None and result.check.ok, result.check
        print(f"{name}: {result.check.describe()}")
        out[family] = (m, path)
    return out


def _by_place(r):  # type: ignore[no-untyped-def]
    """`r`'s detections ordered by where they are (box, then keypoints, to 0.01 px): runs
    may order detections of exactly equal score differently."""
    keys = np.concatenate([r.boxes.xyxy, r.keypoints.xy.reshape(len(r), -1)], 1).round(2)
    return r[np.lexsort(keys.T[::-1])] if len(r) else r


def same_results(a: list, b: list, px: float = 0.5, score: float = 1e-3) -> int:
    """Assert two runs agree (the same instances, keypoints within `px`, scores within
    `score`); returns the number of instances compared."""
    n = 0
    for ra, rb in zip(a, b, strict=True):
        assert len(ra) == len(rb)
        ra, rb = _by_place(ra), _by_place(rb)
        np.testing.assert_allclose(ra.keypoints.xy, rb.keypoints.xy, atol=px, rtol=0)
        np.testing.assert_allclose(ra.keypoints.conf, rb.keypoints.conf, atol=score, rtol=0)
        np.testing.assert_allclose(ra.boxes.conf, rb.boxes.conf, atol=score, rtol=0)
        n += len(ra)
    return n


#: a random network gives a bottom-up grouping no people to find (its maps are faint noise):
#: pafpose's decoded results are compared on real maps in its own test below
DECODED = sorted(set(CASES) - {"pafpose"})


@pytest.mark.parametrize("family", sorted(CASES))
def test_export_round_trip_gives_the_same_results(exported, family: str) -> None:  # type: ignore[no-untyped-def]
    model, path = exported[family]
    meta = read_metadata(path)
    assert json.loads(meta["family"]) == family and meta["version"]
    info = model_info(path)
    assert info.net.schemas == model.schemas and info.net.names == model.names
    # the export size becomes the file's default inference size
    expected = model.net.describe()["config"]
    expected.update({"imgsz": 256} if "imgsz" in expected else {})
    assert info.net.describe()["config"] == expected
    loaded = Model(path)
    assert loaded.onnx == path and loaded.schemas[0].flip_idx == model.schemas[0].flip_idx
    images = check_images(n=3)
    # rectangular letterboxing (640x480 -> 256x192) needs the dynamic height and width
    # no max_det cut: a random network's exactly tied scores would decide who is kept
    settings = {"imgsz": 256, "conf": 0.01, "batch": 2, "max_det": 5000}
    a, b = model.predict(images, **settings), loaded.predict(images, **settings)
    if family in DECODED:
        assert same_results(a, b) >= 3
    with pytest.raises(ValueError, match="ONNX export: it cannot be trained"):
        loaded.train(data="nowhere")


def test_the_check_compares_decoded_results_and_catches_a_different_model(exported) -> None:  # type: ignore[no-untyped-def]
    model, path = exported["rtpose"]
    images = check_images(n=2)
    good = check_export(model.net, path, images, imgsz=256)
    assert (
        good.ok and good.instances > 0 and set(good.outputs) == set(model.net.export_output_names())
    )
    other = perturbed("rtpose-n", {}, seed=1)
    bad = check_export(other.net, path, images, imgsz=256)
    assert not bad.ok and "keypoints max" in bad.describe()


def test_a_failing_check_writes_nothing_and_says_by_how_much(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The file is checked before it is put in place: an earlier export at the same path is
    left as it was, and no staging folder stays behind."""
    import posekit.export.onnx as onnx_export

    m = perturbed("vitpose-s", CASES["vitpose"][1])
    real = onnx_export.fused_for_inference

    def broken(net):  # an exporter that writes different weights than the model's
        net = real(net)
        with torch.no_grad():
            for p in list(net.parameters())[-2:]:
                p.add_(0.5)
        return net

    out = tmp_path / "m.onnx"
    m.export(out=out, check=False)
    earlier = out.read_bytes()
    monkeypatch.setattr(onnx_export, "fused_for_inference", broken)
    with pytest.raises(ExportCheckError, match=r"disagrees .* nothing was written .*keypoints max"):
        m.export(out=out)
    assert out.read_bytes() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_an_export_failing_as_it_is_put_in_place_keeps_the_earlier_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import posekit.utils.commit as commit_module

    m = perturbed("rtpose-n", {})
    out = tmp_path / "m.onnx"
    m.export(out=out, imgsz=64, check=False)
    earlier = out.read_bytes()
    real = commit_module._step

    def full_disk(a: Path, b: Path) -> None:
        if b == out:
            raise OSError(28, "No space left on device", str(b))
        real(a, b)

    monkeypatch.setattr(commit_module, "_step", full_disk)
    with pytest.raises(OSError, match="No space left"):
        m.export(out=out, imgsz=96, check=False)
    assert out.read_bytes() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_a_link_planted_beside_the_output_is_not_written_through(tmp_path: Path) -> None:
    """Before: the export went through a fixed temporary name (`.m.onnx.tmp`), so a link
    planted there wrote the file wherever it pointed."""
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("keep")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / ".m.onnx.tmp").symlink_to(victim)
    perturbed("rtpose-n", {}).export(out=out_dir / "m.onnx", imgsz=64, check=False)
    assert victim.read_text() == "keep" and (out_dir / "m.onnx").stat().st_size > 1000


def test_a_static_graph_runs_any_batch_and_explains_a_wrong_size(tmp_path: Path) -> None:
    m = perturbed("rtpose-n", {})
    path = m.export(out=tmp_path / "s.onnx", imgsz=192, static=True, batch=2).path
    loaded = Model(path)
    images = check_images(n=3)
    # batch 3 on a batch-2 graph: run in chunks, the last padded; square letterbox
    same_results(m.predict(images, imgsz=192, conf=0.01, rect=False, batch=3),
                 loaded.predict(images, imgsz=192, conf=0.01, batch=3))  # fmt: skip
    with pytest.raises(ValueError, match=r"takes 192x192 inputs only .*imgsz=192"):
        loaded.predict(images[0], imgsz=256)
    assert len(loaded.predict(images, conf=0.01)) == 3  # its default size is the graph's
    backend = OnnxBackend(path, loaded.net, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"takes 192x192 inputs only"):
        backend(torch.rand(1, 3, 160, 160))


def test_a_dynamic_graph_explains_a_size_that_is_not_a_multiple_of_the_stride(exported) -> None:  # type: ignore[no-untyped-def]
    _, path = exported["rtpose"]
    backend = OnnxBackend(path, Model(path).net, torch.device("cpu"))
    with pytest.raises(ValueError, match="not a multiple of the stride 32"):
        backend(torch.rand(1, 3, 100, 96))


def test_a_file_without_metadata_names_what_is_missing_and_takes_a_schema(
    exported, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import onnx

    model, path = exported["rtpose"]
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(
        MissingMetadataError, match=r"missing posekit.family, posekit.config.*schema="
    ):
        Model(bare)
    rc = main(["predict", "--model", str(bare), "--source", str(tmp_path)])
    assert rc == 2
    given = Model(bare, "coco17")
    images = check_images(n=2)
    same_results(model.predict(images, imgsz=256, conf=0.01),
                 given.predict(images, imgsz=256, conf=0.01))  # fmt: skip


def test_a_missing_extra_is_one_line_naming_it(
    exported, monkeypatch, capsys, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import posekit.utils.extras as extras

    _, path = exported["vitpose"]
    real = extras.importlib.import_module

    def without_ort(name: str):  # type: ignore[no-untyped-def]
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real(name)

    monkeypatch.setattr(extras.importlib, "import_module", without_ort)
    with pytest.raises(MissingExtraError, match=r"pip install 'posekit\[onnx\]'"):
        OnnxBackend(path, Model(path).net, torch.device("cpu"))
    capsys.readouterr()
    cv2.imwrite(str(tmp_path / "a.png"), check_images(n=1)[0])
    assert main(["predict", "--model", str(path), "--source", str(tmp_path)]) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "posekit[onnx]" in err[0]


def test_half_exports_need_cuda(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"need a CUDA device"):
        Model("rtpose-n").export(out=tmp_path / "h.onnx", half=True)


def test_export_refuses_to_replace_a_file_it_did_not_write(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    mine = tmp_path / "notes.onnx"
    mine.write_text("my notes")
    assert main(["export", "--model", "rtpose-n", "--out", str(mine)]) == 2
    assert "not a posekit export" in capsys.readouterr().err and mine.read_text() == "my notes"
    assert main(["export", "--model", "rtpose-n", "--format", "tflite"]) == 2


@pytest.mark.slow
def test_cli_export_then_predict_and_val_with_the_onnx_file_alone(
    overfit_run, four_people: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """A trained model (real detections): export with the CLI, move the .onnx away from every
    checkpoint, predict and validate with it alone; results and AP equal PyTorch's."""
    best = overfit_run.best
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(best), "--out", str(out), "--imgsz", "192"]) == 0
    said = capsys.readouterr()
    assert "check: ONNX Runtime vs PyTorch" in said.out + said.err
    alone = tmp_path / "deploy" / "m.onnx"
    alone.parent.mkdir()
    shutil.move(out, alone)
    images = four_people.parent / "images"
    args = ["predict", "--source", str(images), "--save-json", "--imgsz", "192", "--project",
            str(tmp_path), "--exist-ok"]  # fmt: skip
    assert main([*args, "--model", str(alone), "--name", "onnx"]) == 0
    assert main([*args, "--model", str(best), "--name", "torch"]) == 0
    a = json.loads((tmp_path / "onnx" / "predictions.json").read_text())
    b = json.loads((tmp_path / "torch" / "predictions.json").read_text())
    assert len(a) == len(b) >= 4
    for pa, pb in zip(a, b, strict=True):
        assert pa["image_id"] == pb["image_id"] and abs(pa["score"] - pb["score"]) < 1e-3
        np.testing.assert_allclose(pa["keypoints"], pb["keypoints"], atol=0.5)
    m_onnx, m_torch = (
        Model(alone).val(four_people, imgsz=192),
        Model(best).val(four_people, imgsz=192),
    )
    assert m_onnx.coco["AP"] > 0.5 and abs(m_onnx.coco["AP"] - m_torch.coco["AP"]) < 1e-6
    assert main(["val", "--data", str(four_people), "--model", str(alone), "--imgsz", "192",
                 "--no-plots"]) == 0  # fmt: skip
    img = cv2.imread(str(next(images.iterdir())))
    r = Model(alone).predict(img, imgsz=192)[0]
    assert len(r) >= 1 and r.keypoints.xy.shape[1] == 17


def _external_data_model(path: Path, location: str) -> Path:
    """A one-node graph whose weight lives in another file, at `location`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones(2, np.float32), "w")
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    for k, v in {"location": location, "offset": "0", "length": "8"}.items():
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
    onnx.save(helper.make_model(graph), str(path))
    return path


@pytest.mark.parametrize("where", ["absolute", "climbing", "link"])
def test_external_data_outside_the_model_folder_is_refused_before_anything_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\1" * 8)
    folder = tmp_path / "models"
    folder.mkdir()
    location = {"absolute": str(secret), "climbing": "../secret.bin", "link": "w.bin"}[where]
    if where == "link":
        (folder / "w.bin").symlink_to(secret)
    path = _external_data_model(folder / "m.onnx", location)
    from posekit.predict.backends import onnx_session

    with pytest.raises(ValueError, match="refused: tensor 'w' keeps its data at"):
        onnx_session(path, torch.device("cpu"))
    assert main(["predict", "--model", str(path), "--source", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1 and "refused" in err, err


def test_external_data_beside_the_model_still_loads(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(np.full(2, 3, np.float32).tobytes())
    from posekit.predict.backends import onnx_session

    session = onnx_session(_external_data_model(tmp_path / "m.onnx", "w.bin"), torch.device("cpu"))
    (y,) = session.run(None, {"x": np.ones(2, np.float32)})
    np.testing.assert_array_equal(y, [4, 4])


def test_truncated_onnx_and_malformed_metadata_are_one_line(
    exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    import onnx

    _, path = exported["rtpose"]
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    proto = onnx.load(str(path))
    for p in proto.metadata_props:
        if p.key == "posekit.config":
            p.value = '{"name": "rtpose-n", "width": '  # cut short
    bad_json = tmp_path / "bad-json.onnx"
    onnx.save(proto, str(bad_json))
    for p in proto.metadata_props:
        if p.key == "posekit.config":
            p.value = "[1, 2, 3]"  # valid JSON, not a config
    wrong = tmp_path / "wrong-type.onnx"
    onnx.save(proto, str(wrong))
    for bad, needle in ((truncated, "not a readable ONNX file"),
                        (bad_json, "posekit metadata is malformed"),
                        (wrong, "posekit metadata is malformed")):  # fmt: skip
        capsys.readouterr()
        assert main(["predict", "--model", str(bad), "--source", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(error_lines(err)) == 1 and needle in err, err


@pytest.mark.parametrize("family", sorted(CASES))
def test_metadata_describing_another_network_than_the_graph_is_refused(
    exported, family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """A file whose schema says 5 keypoints over a 17-keypoint graph (self-consistent, so it
    builds) is refused in one line before any image is decoded with it."""
    import onnx

    _, path = exported[family]
    proto = onnx.load(str(path))
    for p in proto.metadata_props:
        if p.key == "posekit.schemas":
            schemas = json.loads(p.value)
            for s in schemas:
                s["keypoints"] = s["keypoints"][:5]
                s["skeleton"] = [e for e in s["skeleton"] if max(e) < 5]
                s.pop("flip_idx", None), s.pop("sigmas", None)
            p.value = json.dumps(schemas)
    lying = tmp_path / "lying.onnx"
    onnx.save(proto, str(lying))
    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((96, 128, 3), 90, np.uint8))
    assert main(["predict", "--model", str(lying), "--source", str(tmp_path / "a.jpg"),
                 "--project", str(tmp_path / "runs")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1 and "describes another network than its graph" in err, err


def test_metadata_saying_width_1e6_is_refused_at_once(
    exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """Before the config ranges, `Model()` on this file spun for minutes building the
    network its metadata described."""
    import onnx

    _, path = exported["rtpose"]
    proto = onnx.load(str(path))
    for p in proto.metadata_props:
        if p.key == "posekit.config":
            cfg = json.loads(p.value)
            cfg["width"] = 1e6
            p.value = json.dumps(cfg)
    lying = tmp_path / "lying.onnx"
    onnx.save(proto, str(lying))
    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((32, 32, 3), 90, np.uint8))
    assert main(["predict", "--model", str(lying), "--source", str(tmp_path / "a.jpg"),
                 "--project", str(tmp_path / "runs")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1 and "width = 1000000.0 is outside its range" in err, err
