"""Prediction: letterbox inverse, sources, Results, COCO output and the overfitted model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cli_output import error_lines
from posekit import Model
from posekit.cli.main import main
from posekit.data.formats import load_splits
from posekit.data.image_headers import SUPPORTED
from posekit.data.transforms import Letterbox
from posekit.predict import Boxes, Keypoints, Results, SourceError, iter_frames
from posekit.predict.predictor import letterbox_batch, letterbox_on_device
from posekit.predict.sources import prefetch
from posekit.schema import get_schema


@pytest.mark.parametrize("rect", [False, True])
@pytest.mark.parametrize(
    ("w", "h", "size"),
    [(333, 517, 320), (517, 333, 320), (97, 61, 64), (641, 479, 640), (1000, 7, 96), (40, 40, 128)],
)
def test_letterbox_inverse_lands_on_the_drawn_pixels(w: int, h: int, size: int, rect: bool) -> None:
    """A drawn block's centroid, found in the network input and mapped back, is where it was
    drawn in the original image: a half-pixel convention error would move it 0.5 px or more."""
    rng = np.random.default_rng(w * h)
    img = np.zeros((h, w, 3), np.uint8)
    bw, bh = max(2, w // 5), max(2, h // 5)
    x0, y0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
    img[y0 : y0 + bh, x0 : x0 + bw] = 255
    tensor, (lb,) = letterbox_batch([img], size, rect)
    out = tensor[0, 0].numpy().astype(np.float64)
    # the GPU path's resize (run here on the CPU) has the same geometry
    on_device = letterbox_on_device([img], [lb], torch.device("cpu"))[0, 0].numpy() * 255
    for pixels in (out, on_device.astype(np.float64)):
        _centroid_maps_back(pixels, lb, x0 + bw / 2, y0 + bh / 2, size, rect)


def _centroid_maps_back(out: np.ndarray, lb: Letterbox, cx: float, cy: float, size: int,
                        rect: bool) -> None:  # fmt: skip
    out = out.copy()
    out[np.abs(out - 114) < 0.5] = 0  # the padding
    ys, xs = np.mgrid[: out.shape[0], : out.shape[1]] + 0.5  # pixel centres
    found = np.array([(xs * out).sum() / out.sum(), (ys * out).sum() / out.sum()])
    back = lb.to_original(found)
    assert np.abs(back - [cx, cy]).max() < 0.25 / min(lb.scale_x, 1)
    if rect:
        assert out.shape[0] % 32 == 0 and out.shape[1] % 32 == 0
        assert max(out.shape) == size
    np.testing.assert_allclose(lb.to_input(lb.to_original(found)), found, atol=1e-9)


def test_letterbox_batch_of_mixed_shapes_falls_back_to_squares() -> None:
    a, b = np.zeros((100, 200, 3), np.uint8), np.zeros((200, 100, 3), np.uint8)
    tensor, boxes = letterbox_batch([a, b], 64, rect=True)
    assert tuple(tensor.shape) == (2, 3, 64, 64)
    assert [lb.shape for lb in boxes] == [(64, 64), (64, 64)]
    assert Letterbox.fit(200, 100, 64, 32).shape == (32, 64)


def test_device_letterbox_matches_opencv_up_to_resampling() -> None:
    """Mixed sizes in one batch (one resize per size), shrunk and enlarged, BGR -> RGB: the
    device path's pixels are OpenCV's up to the filters' rounding."""
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (9, 9), 3)
    images = [smooth, cv2.resize(smooth, (80, 60)), smooth[:, ::-1].copy(), smooth[:50, :90]]
    tensor, boxes = letterbox_batch(images, 160, rect=False)
    ours = letterbox_on_device(images, boxes, torch.device("cpu"))
    ref = tensor.float() / 255
    assert ours.shape == ref.shape
    diff = (ours - ref).abs()
    assert float(diff.mean()) < 0.005 and float(diff.max()) < 0.1
    # channel order: the red channel of the input (BGR index 2) comes first
    assert torch.allclose(ours[0, 0].mean(), ref[0, 0].mean(), atol=0.005)


def _results(n: int = 3) -> Results:
    s = get_schema("coco17")
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(0, 100, (n, 17, 2)), rng.uniform(0, 1, (n, 17, 1))], -1)
    boxes = Boxes(
        np.tile([10.0, 20, 60, 90], (n, 1)), np.linspace(0.9, 0.3, n), np.zeros(n), (120, 160)
    )
    return Results(
        boxes,
        Keypoints(kp, (120, 160), s.keypoints, 0.3),
        {0: "person"},
        [s],
        "x.jpg",
        np.zeros((120, 160, 3), np.uint8),
    )


def test_results_shapes_slicing_lookup_and_conversions() -> None:
    r = _results()
    assert r.keypoints.xy.shape == (3, 17, 2) and r.keypoints.conf.shape == (3, 17)
    assert r.keypoints.data.shape == (3, 17, 3)
    np.testing.assert_allclose(r.keypoints.xyn, r.keypoints.xy / [160, 120])
    np.testing.assert_array_equal(r.keypoints.visible, r.keypoints.conf >= 0.3)
    # low-confidence keypoints keep their coordinates
    low = r.keypoints.conf < 0.3
    assert low.any() and np.all(r.keypoints.xy[low] > 0)
    assert len(r[0]) == 1 and r[0].keypoints.data.shape == (1, 17, 3)
    strong = r[r.boxes.conf > 0.5]
    assert len(strong) == 2 and np.all(strong.boxes.conf > 0.5)
    np.testing.assert_array_equal(r.keypoints["left_wrist"], r.keypoints.data[:, 9])
    with pytest.raises(KeyError, match="no keypoint 'wrist'"):
        r.keypoints["wrist"]
    assert not r.empty() and r[np.zeros(3, bool)].empty()
    assert r.schema.num_keypoints == 17 and r.names == {0: "person"}
    d = json.loads(r.to_json())
    assert d[0]["keypoints"][9]["name"] == "left_wrist" and d[0]["name"] == "person"
    coco = r.to_coco(7)
    assert coco[0]["image_id"] == 7 and len(coco[0]["keypoints"]) == 51
    assert coco[0]["bbox"] == [10.0, 20.0, 50.0, 70.0]
    with pytest.raises(ValueError, match="3 rows for 2 boxes"):
        Boxes(np.zeros((2, 4)), np.zeros(3), np.zeros(2), (1, 1))
    assert r.plot().shape == (120, 160, 3)


def _images(folder: Path, n: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"im{i}.png"
        cv2.imwrite(str(p), np.full((48 + 8 * i, 64, 3), 40 * i, np.uint8))
        paths.append(p)
    return paths


def _video(path: Path, frames: int = 7, fps: float = 12.0) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (64, 48))
    assert w.isOpened()
    for i in range(frames):
        w.write(np.full((48, 64, 3), 20 * i, np.uint8))
    w.release()
    return path


def test_every_source_type_reads(tmp_path: Path) -> None:
    from PIL import Image

    paths = _images(tmp_path / "imgs")
    video = _video(tmp_path / "clip.mp4")
    arr = np.zeros((30, 40, 3), np.uint8)
    cases = {
        "path": (str(paths[0]), 1),
        "Path": (paths[1], 1),
        "folder": (tmp_path / "imgs", 3),
        "glob": (str(tmp_path / "imgs" / "im[01].png"), 2),
        "list": ([str(p) for p in paths] + [arr], 4),
        "array": (arr, 1),
        "gray array": (np.zeros((30, 40), np.uint8), 1),
        "PIL": (Image.fromarray(np.zeros((30, 40, 3), np.uint8)), 1),
        "video": (video, 7),
    }
    for name, (src, n) in cases.items():
        frames = list(iter_frames(src))
        assert len(frames) == n, name
        assert all(f.image is not None and f.image.shape[2] == 3 for f in frames), name
    frames = list(iter_frames(video))
    assert [f.index for f in frames] == list(range(7)) and all(f.video for f in frames)
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(7) / 12.0, atol=1e-3)
    assert [f.index for f in iter_frames(video, vid_stride=3)] == [0, 3, 6]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing.png", "no such file or folder"),
        ("empty", "no images or videos in this folder"),
        ("*.nothing", "the pattern matches no files"),
        ([], "empty source list"),
        (np.zeros((5, 5, 2), np.uint8), "expected an"),
        (np.zeros((5, 5, 3), np.float32), "expected a uint8"),
        (3.5, "unsupported source type"),
    ],
)
def test_unusable_sources_are_one_clear_error(tmp_path: Path, monkeypatch, source, message) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=message):
        iter_frames(source)


def test_a_corrupt_image_becomes_an_error_frame_and_the_rest_continue(tmp_path: Path) -> None:
    paths = _images(tmp_path)
    paths[1].write_bytes(b"not a png")
    frames = list(iter_frames(tmp_path))
    assert [f.error for f in frames] == [
        None,
        f"not an image of a format posekit reads ({SUPPORTED})",
        None,
    ]
    assert frames[2].image is not None


def test_prefetch_keeps_order_and_reraises() -> None:
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def broken():  # type: ignore[no-untyped-def]
        yield 1
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError, match="decoder died"):
        list(prefetch(broken()))
    it = prefetch(iter(range(1000)), depth=2)
    assert next(it) == 0
    it.close()  # an abandoned stream does not hang its thread


# --- with a trained model -------------------------------------------------------------------


@pytest.mark.slow
def test_predictions_on_training_images_match_their_labels(overfit_run, four_people: Path) -> None:  # type: ignore[no-untyped-def]
    model = Model(overfit_run.best)
    ds = load_splits(four_people)["train"]
    by_image = ds.annotations_by_image()
    paths = [str(ds.image_path(im)) for im in ds.images]
    for batch in (1, 3):
        results = model(paths, conf=0.3, batch=batch, imgsz=192)
        assert len(results) == len(paths)
        for im, r in zip(ds.images, results, strict=True):
            gts = [a for a in by_image.get(im.id, []) if (a.keypoints[:, 2] > 0).any()]
            assert len(r) >= len(gts), (im.file_name, len(r), len(gts))
            for a in gts:
                vis = a.keypoints[:, 2] > 0
                # the prediction nearest this person, by mean keypoint distance
                d = np.linalg.norm(r.keypoints.xy[:, vis] - a.keypoints[vis, :2], axis=-1)
                best = d.mean(1).argmin()
                assert np.median(d[best]) < 3.0, (im.file_name, d[best])
            assert r.speed.keys() == {"preprocess", "inference", "postprocess"}
    # an array gives the same answer as its file
    img = cv2.imread(paths[0])
    a, b = model(img, imgsz=192)[0], model(paths[0], imgsz=192)[0]
    np.testing.assert_allclose(a.keypoints.data, b.keypoints.data, atol=1e-4)
    # a stream is lazy and yields the same results
    it = model(paths, stream=True, imgsz=192)
    assert not isinstance(it, list)
    assert len(list(it)) == len(paths)


@pytest.mark.slow
def test_cli_predict_writes_images_json_that_val_reads(
    overfit_run, four_people: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    ds = load_splits(four_people)["train"]
    src = tmp_path / "src"
    src.mkdir()
    for im in ds.images:
        (src / Path(im.file_name).name).write_bytes(ds.image_path(im).read_bytes())
    (src / "broken.png").write_bytes(b"garbage")
    rc = main(
        [
            "predict",
            "--model",
            str(overfit_run.best),
            "--source",
            str(src),
            "--imgsz",
            "192",
            "--conf",
            "0.1",
            "--save-json",
            "--save-txt",
            "--project",
            str(tmp_path / "runs"),
            "--name",
            "p",
        ]
    )
    out = capsys.readouterr()
    assert rc == 1, out  # one input failed
    assert "broken.png" in out.err and "4 images" in out.out and "1 failed" in out.out
    run = tmp_path / "runs" / "p"
    for im in ds.images:
        name = Path(im.file_name).name
        assert cv2.imread(str(run / name)) is not None
        assert (run / "labels" / (Path(name).stem + ".txt")).read_text().strip()
    rc = main(
        [
            "val",
            "--data",
            str(four_people),
            "--pred",
            str(run / "predictions.json"),
            "--no-per-keypoint",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["AP"] > 0.9


@pytest.mark.slow
def test_cli_predict_on_a_video_keeps_its_fps_and_size(overfit_run, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    video = _video(tmp_path / "clip.mp4", frames=9, fps=15.0)
    rc = main(
        [
            "predict",
            "--model",
            str(overfit_run.best),
            "--source",
            str(video),
            "--imgsz",
            "96",
            "--batch",
            "4",
            "--project",
            str(tmp_path / "runs"),
            "--name",
            "v",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    cap = cv2.VideoCapture(str(tmp_path / "runs" / "v" / "clip.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(15.0)
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (64, 48)
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 9
    assert "9 video frames" in capsys.readouterr().out


def test_cli_predict_bad_source_is_one_line_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from posekit.engine.checkpoint import save_checkpoint
    from posekit.models import create

    ck = save_checkpoint(tmp_path / "m.pt", create("rtpose-n", "coco17"))
    (tmp_path / "empty").mkdir()
    for source, message in [(tmp_path / "nope", "no such file"), (tmp_path / "empty", "no images")]:
        rc = main(["predict", "--model", str(ck), "--source", str(source)])
        # the log (on stderr too) says what was loaded; the error is one line
        err = error_lines(capsys.readouterr().err)
        assert rc == 2 and len(err) == 1 and message in err[0], err


def test_a_stream_url_is_read_lazily_through_opencv(tmp_path: Path) -> None:
    """An HTTP stream served from this process: the same path a network camera takes."""
    import functools
    import http.server
    import socketserver
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    _video(tmp_path / "clip.mp4", frames=5)
    handler = functools.partial(Quiet, directory=str(tmp_path))
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
        frames = iter_frames(url)
        first = next(frames)
        assert first.video and first.index == 0 and first.image.shape == (48, 64, 3)
        assert [f.index for f in frames] == [1, 2, 3, 4]
        server.shutdown()


def test_a_missing_camera_is_one_clear_error() -> None:
    with pytest.raises(SourceError, match="cannot open video or stream"):
        list(iter_frames(97))


def test_half_precision_runs_on_a_copy_of_the_network() -> None:
    """fp16 (CUDA's default) converts a copy: a later fp32 run of the same `Model` (or the
    caller's own network) still has fp32 weights (found on a GPU, where fp32 after fp16 failed
    with 'Input type (float) and bias type (c10::Half) should be the same')."""
    import torch

    from posekit import Model
    from posekit.predict.backends import TorchBackend

    model = Model("rtpose-n", "coco17")
    cpu = torch.device("cpu")
    half_net, _ = model.runner(cpu, half=True)
    full_net, _ = model.runner(cpu)
    assert {p.dtype for p in half_net.parameters()} == {torch.float16}
    assert {p.dtype for p in full_net.parameters()} == {torch.float32}
    assert model.runner(cpu, half=True)[0] is half_net  # kept between calls
    backend = TorchBackend(full_net, cpu, half=True)
    assert {p.dtype for p in backend.net.parameters()} == {torch.float16}
    assert {p.dtype for p in full_net.parameters()} == {torch.float32}


def test_a_grey_image_is_predicted_and_drawn_in_colour(tmp_path: Path) -> None:
    """A .pgm / .pbm source: its annotated copy is a .ppm (colour), not a failed write."""
    from posekit.engine.checkpoint import save_checkpoint
    from posekit.models import create

    ck = save_checkpoint(tmp_path / "m.pt", create("rtpose-n", "coco17"))
    grey = np.random.default_rng(0).integers(0, 255, (64, 96), dtype=np.uint8)
    for ext in (".pgm", ".pbm"):
        cv2.imwrite(str(tmp_path / f"x{ext}"), grey)
        run = f"--imgsz 64 --project {tmp_path / 'p'} --name {ext[1:]}".split()
        assert (
            main(["predict", "--model", str(ck), "--source", str(tmp_path / f"x{ext}"), *run]) == 0
        )
        drawn = cv2.imread(str(tmp_path / "p" / ext[1:] / "x.ppm"))
        assert drawn is not None and drawn.shape == (64, 96, 3)
