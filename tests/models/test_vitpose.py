"""ViTPose: parity with the reference implementation (transformers), published sizes, weight
layouts, the heatmap codec and top-down prediction with boxes."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import MOUSE
from posekit import Model
from posekit.data.crops import from_crop
from posekit.models import create
from posekit.models.heatmap_codec import decode_heatmaps, flip_back, heatmap_to_input, udp_targets
from posekit.predict.topdown import make_crops, to_tensor
from posekit.schema import KeypointSchema, get_schema

transformers = pytest.importorskip("transformers")

# COCO xywh boxes, as transformers' processor takes them
BOXES = np.array([[250.5, 150.25, 120.0, 200.0], [300.0, 200.0, 200.0, 100.0], [5, 7, 60, 90]])


def _image() -> np.ndarray:
    """A real frame when the shared data is there, else a structured synthetic image."""
    frame = MOUSE / "labeled-data" / "m4s1" / "img0010.png"
    if frame.is_file():
        return cv2.imread(str(frame))
    from posekit.data.synth import SynthConfig
    from posekit.data.synth.generator import render

    return render(SynthConfig("person", imgsz=640, seed=1), 0).image


@pytest.fixture(scope="module", params=["classic", "simple"])
def hf_folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A randomly initialised transformers VitPoseForPoseEstimation, saved with its
    processor (a small config; the benchmark runs every published size)."""
    torch.manual_seed(0)
    bc = transformers.VitPoseBackboneConfig(hidden_size=96, num_hidden_layers=2,
                                            num_attention_heads=4, out_indices=[2],
                                            layer_norm_eps=1e-6)  # fmt: skip
    cfg = transformers.VitPoseConfig(backbone_config=bc, num_labels=17,
                                     use_simple_decoder=request.param == "simple")  # fmt: skip
    model = transformers.VitPoseForPoseEstimation(cfg).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    folder = tmp_path_factory.mktemp(f"hf-{request.param}")
    model.save_pretrained(folder)
    processor = transformers.VitPoseImageProcessor()
    processor.save_pretrained(folder)
    return folder, model, processor


def test_parity_with_transformers(hf_folder, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    folder, ref, processor = hf_folder
    with caplog.at_level(logging.INFO):
        ours = Model(folder)
    assert "loaded transformers" in caplog.text and ours.schemas[0] == get_schema("coco17")
    image = _image()
    inputs = processor(image[..., ::-1].copy(), boxes=[BOXES.tolist()], return_tensors="pt")
    with torch.no_grad():
        out = ref(**inputs)
        # (a) the network on the processor's pixel values
        heat = ours.net.head(ours.net.features(inputs["pixel_values"]))
    torch.testing.assert_close(heat, out.heatmaps, atol=1e-4, rtol=0)

    # (b) the decoder on the reference's heatmaps
    expected = processor.post_process_pose_estimation(out, boxes=[BOXES.tolist()])[0]
    xyxy = np.c_[BOXES[:, :2], BOXES[:, :2] + BOXES[:, 2:]]
    xy, scores = decode_heatmaps(out.heatmaps)
    crops = make_crops([image], [xyxy], (256, 192), 1.25, ours.net.config.pixel_centre)
    kp = from_crop(heatmap_to_input(xy.double(), (256, 192), (64, 48)).numpy(), crops.matrices)
    for i, e in enumerate(expected):
        np.testing.assert_allclose(kp[i], e["keypoints"].numpy(), atol=1e-3, rtol=0)
        np.testing.assert_allclose(scores[i].numpy(), e["scores"].numpy(), atol=1e-6, rtol=0)

    # (c) end to end: our crops, network, decoding and inverse against the reference's
    # the crops agree but at the image border, where OpenCV blends the edge pixel with the
    # padding and SciPy does not (the third box sticks out of the image)
    diff = (ours.net.normalise(to_tensor(crops.pixels)) - inputs["pixel_values"]).abs()
    assert (diff[:2] < 0.02).all() and (diff < 0.02).float().mean() > 0.99
    (r,) = ours.predict(image, boxes=xyxy, flip=False)
    assert len(r) == len(BOXES)
    err = np.stack([np.linalg.norm(r.keypoints.xy[i] - e["keypoints"].numpy(), axis=-1)
                    for i, e in enumerate(expected)])  # fmt: skip
    # boxes inside the image agree (to interpolation rounding); the third crosses the border,
    # where the two warps' edge handling differs and random heatmaps' maxima can move
    assert (err[:2] < 1.0).all() and np.median(err[:2]) < 0.01, err


PUBLISHED_MILLIONS = [("vitpose-s", 24), ("vitpose-b", 90), ("vitpose-l", 309), ("vitpose-h", 632)]


@pytest.mark.parametrize(("name", "millions"), PUBLISHED_MILLIONS)
def test_published_parameter_counts(name: str, millions: float) -> None:
    with torch.device("meta"):  # no memory: shapes only
        model = create(name, "coco17")
    n = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(n - millions) / millions < 0.02, n  # the published figures are rounded
    assert model.config.token_grid == (16, 12) and model.config.heatmap_size == (64, 48)


def _official_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """posekit's names -> the official ViTPose release's (for building test files)."""
    rules = [("patch_embed.proj.", "backbone.patch_embed.proj."),
             ("pos_embed", "backbone.pos_embed"), ("blocks.", "backbone.blocks."),
             ("norm.", "backbone.last_norm."),
             ("head.deconv1.", "keypoint_head.deconv_layers.0."),
             ("head.bn1.", "keypoint_head.deconv_layers.1."),
             ("head.deconv2.", "keypoint_head.deconv_layers.3."),
             ("head.bn2.", "keypoint_head.deconv_layers.4."),
             ("head.final.", "keypoint_head.final_layer.")]  # fmt: skip
    out = {}
    for k, v in state.items():
        new = next(b + k[len(a) :] for a, b in rules if k.startswith(a))
        out[new] = v
    return out


def test_official_pth_round_trip_and_fine_tuning_schema(tmp_path: Path) -> None:
    torch.manual_seed(1)
    src = create("vitpose-s", "coco17", depth=1 / 6).eval()
    path = tmp_path / "vitpose_small_official.pth"
    torch.save({"state_dict": _official_layout(src.state_dict()), "meta": {"a": np.ones(2)}},
               path)  # fmt: skip
    loaded = Model(path).net
    assert loaded.config.depth == 2 and loaded.config.embed_dim == 384
    assert loaded.config.num_heads == 12  # from the size table, not the tensors
    x = torch.rand(1, 3, 256, 192)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), src(x))
    # another schema: the backbone is kept, the head is new
    hand = KeypointSchema.create("hand", [f"k{j}" for j in range(5)])
    tuned = Model(path, schema=hand).net
    assert tuned.num_keypoints == 5
    torch.testing.assert_close(tuned.blocks[1].attn.qkv.weight, src.blocks[1].attn.qkv.weight)


def test_mismatching_weights_name_the_first_tensor(tmp_path: Path) -> None:
    state = _official_layout(create("vitpose-s", "coco17", depth=1 / 6).state_dict())
    state["backbone.blocks.1.mlp.fc1.weight"] = torch.zeros(10, 384)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"blocks\.1\.mlp\.fc1\.weight has shape \(10, 384\)"):
        Model(path)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="no registered model family knows this weight layout"):
        Model(tmp_path / "other.pth")


def test_udp_targets_decode_to_their_sub_pixel_centres() -> None:
    xy = torch.tensor([[[10.3, 20.7], [30.0, 5.25], [47.0, 63.0]]])
    heat, weight = udp_targets(xy, torch.ones(1, 3), (64, 48), sigma=2.0)
    assert heat.shape == (1, 3, 64, 48) and weight.tolist() == [[1, 1, 1]]
    got, scores = decode_heatmaps(heat)
    torch.testing.assert_close(got[:, :2], xy[:, :2], atol=0.05, rtol=0)
    assert (scores > 0.8).all()
    # a keypoint whose window misses the heatmap gets no weight
    _, w = udp_targets(torch.tensor([[[-20.0, 5.0]]]), torch.ones(1, 1), (64, 48))
    assert w.item() == 0


def test_flip_back_mirrors_and_swaps() -> None:
    schema = KeypointSchema.create("t", ["centre", "left_end", "right_end"])
    heat, _ = udp_targets(torch.tensor([[[10.0, 5.0], [3.0, 8.0], [40.0, 9.0]]]), torch.ones(1, 3),
                          (16, 48))  # fmt: skip
    flip_idx = torch.tensor([schema.flip_idx])
    back = flip_back(heat.flip(-1)[:, list(schema.flip_idx)], flip_idx)
    torch.testing.assert_close(back, heat)


def test_one_result_per_given_box_in_order_never_filtered(caplog) -> None:  # type: ignore[no-untyped-def]
    model = Model(create_tiny())
    image = np.full((120, 160, 3), 90, np.uint8)
    boxes = np.array([[10, 10, 50, 100], [60, 5, 150, 110], [0, 0, 5, 5]], dtype=float)
    (r,) = model.predict(image, boxes=boxes, conf=0.99)
    np.testing.assert_array_equal(r.boxes.xyxy, boxes)
    assert r.keypoints.data.shape == (3, 17, 3)
    empty = model.predict([image, image], boxes=[np.zeros((0, 4)), boxes[:1]], batch=2)
    assert [len(e) for e in empty] == [0, 1]
    (none,) = model.predict(image, boxes=np.zeros((0, 4)))
    assert len(none) == 0 and none.keypoints.data.shape == (0, 17, 3)
    with caplog.at_level(logging.INFO):
        (whole,) = model.predict(image)
    assert len(whole) == 1 and "whole image is one instance" in caplog.text
    np.testing.assert_array_equal(whole.boxes.xyxy, [[0, 0, 160, 120]])
    calls = []

    def detector(images):  # type: ignore[no-untyped-def]
        calls.append(len(images))
        return [(np.array([[20.0, 20, 60, 90]]), np.array([0.5]), np.array([0]))] * len(images)

    (det,) = Model(create_tiny(), detector=detector).predict([image], batch=4)
    assert calls == [1] and len(det) == 1 and 0 < det.boxes.conf[0] <= 0.5


def create_tiny() -> str:
    """A saved tiny vitpose checkpoint (path), for prediction tests."""
    import tempfile

    from posekit.engine.checkpoint import save_checkpoint

    net = create("vitpose-s", "coco17", width=0.25, depth=0.25)
    return str(save_checkpoint(Path(tempfile.mkdtemp()) / "tiny.pt", net))


def test_val_on_detector_boxes_equals_ground_truth_boxes_when_they_are_the_same(
    make_dataset, valid_coco, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """Detection results holding exactly the ground-truth boxes (score 1) give the figures of
    ground-truth-box validation, through `Model.val` and `posekit val --detector`."""
    import json

    from posekit.cli.main import main

    root = make_dataset(valid_coco)
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0}
            for a in valid_coco["annotations"]]  # fmt: skip
    f = tmp_path / "dets.json"
    f.write_text(json.dumps(dets))
    model = Model(create_tiny())
    on_gt = model.val(root, split="train")
    on_dets = model.val(root, split="train", detector=str(f))
    assert on_gt.coco == on_dets.coco
    ckpt = create_tiny()
    assert main(["val", "--data", str(root), "--split", "train", "--model", ckpt,
                 "--detector", str(f), "--out", str(tmp_path / "m")]) == 0  # fmt: skip
    assert f"evaluated on the boxes of {f}" in capsys.readouterr().err
    f.write_text(json.dumps([{"image_id": 12345, "bbox": [0, 0, 5, 5], "score": 1}]))
    assert main(["val", "--data", str(root), "--split", "train", "--model", ckpt,
                 "--detector", str(f)]) == 2  # fmt: skip
    assert "image_id 12345" in capsys.readouterr().err


def test_mae_backbone_to_fine_tune_from(tmp_path: Path) -> None:
    """An MAE pre-training checkpoint (224 px square grid, class token, its own decoder):
    the backbone is kept, the position embeddings resized to 16x12, the pose decoder new."""
    torch.manual_seed(2)
    donor = create("vitpose-s", "coco17", depth=1 / 6)
    backbone = {
        k: v for k, v in donor.state_dict().items() if not k.startswith(("head.", "pos_embed"))
    }
    pos = torch.randn(1, 1 + 14 * 14, 384)
    extras = {
        "cls_token": torch.zeros(1, 1, 384),
        "mask_token": torch.zeros(1, 1, 512),
        "decoder_embed.weight": torch.zeros(512, 384),
    }  # MAE's pre-training parts
    path = tmp_path / "mae_pretrain_vit_small.pth"
    torch.save({"model": {**backbone, "pos_embed": pos, **extras}}, path)  # as MAE saves it
    hand = KeypointSchema.create("hand", [f"k{j}" for j in range(21)])
    net = Model(path, schema=hand).net
    assert net.config.token_grid == (16, 12) and net.num_keypoints == 21
    assert net.pos_embed.shape == (1, 16 * 12 + 1, 384)
    torch.testing.assert_close(net.pos_embed[:, :1], pos[:, :1])
    torch.testing.assert_close(net.blocks[0].mlp.fc1.weight, donor.blocks[0].mlp.fc1.weight)
    assert net(torch.rand(1, 3, 256, 192)).shape == (1, 21, 64, 48)


def test_fine_tune_published_weights_onto_a_new_schema(
    make_dataset, valid_coco, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """`posekit train --model vitpose.pth`: the backbone comes from the file, the head is new
    for the dataset's three keypoints, and the run's checkpoint names the dataset's schema."""
    src = create("vitpose-s", "coco17", width=0.25, depth=1 / 6)
    path = tmp_path / "vitpose_official.pth"
    torch.save({"state_dict": _official_layout(src.state_dict())}, path)
    root = make_dataset(valid_coco)
    data = str(root / "annotations" / "train.json")
    runs = str(tmp_path / "runs")
    result = Model(path).train(data=data, epochs=1, batch=2, workers=0, project=runs, val=False)
    tuned = Model(result.last).net
    assert tuned.schemas[0].keypoints == ("centre", "left_end", "right_end")
    assert tuned.config.embed_dim == src.config.embed_dim and tuned.num_keypoints == 3


def test_half_body_box_picks_a_half_with_enough_points() -> None:
    from posekit.models.crop_samples import half_body_box, is_lower_body

    coco = get_schema("coco17")
    lower = np.array([is_lower_body(n) for n in coco.keypoints])
    assert lower.sum() == 6 and not lower[:11].any()  # hips, knees, ankles
    kp = np.zeros((17, 3))
    kp[:11] = [[10 + j, 20 + j, 2] for j in range(11)]  # upper body labelled
    kp[11:13] = [[50, 80, 2], [52, 82, 2]]  # two lower-body points: too few
    box = half_body_box(kp, lower, np.random.default_rng(0))
    np.testing.assert_allclose(box, [7.5, 17.5, 22.5, 32.5])  # upper body, grown 1.5x
    assert half_body_box(kp, np.zeros(17, bool), np.random.default_rng(0)) is None


def test_mmpose_layout_round_trip(tmp_path: Path) -> None:
    """MMPose 1.x names (mmpretrain's ViT: layers.N.ln1, ffn.layers.0.0, ln1 as final norm)."""
    src = create("vitpose-s", "coco17", width=0.25, depth=1 / 6).eval()
    rules = [("patch_embed.proj.", "backbone.patch_embed.projection."),
             ("pos_embed", "backbone.pos_embed"), ("norm.", "backbone.ln1."),
             ("head.deconv1.", "head.deconv_layers.0."), ("head.bn1.", "head.deconv_layers.1."),
             ("head.deconv2.", "head.deconv_layers.3."), ("head.bn2.", "head.deconv_layers.4."),
             ("head.final.", "head.final_layer.")]  # fmt: skip
    block = {".norm1.": ".ln1.", ".norm2.": ".ln2.", ".mlp.fc1.": ".ffn.layers.0.0.",
             ".mlp.fc2.": ".ffn.layers.1.", ".attn.": ".attn."}  # fmt: skip
    state = {}
    for k, v in src.state_dict().items():
        if k.startswith("blocks."):
            i, rest = k.split(".", 2)[1:]
            part = next(b for a, b in block.items() if ("." + rest).startswith(a))
            tail = ("." + rest)[len(next(a for a in block if ("." + rest).startswith(a))) :]
            state[f"backbone.layers.{i}{part}{tail}"] = v
        else:
            state[next(b + k[len(a) :] for a, b in rules if k.startswith(a))] = v
    path = tmp_path / "td-hm_ViTPose-small_8xb64-210e_coco-256x192.pth"
    torch.save({"meta": {"dataset_meta": {"sigmas": np.ones(17)}}, "state_dict": state}, path)
    loaded = Model(path).net
    x = torch.rand(1, 3, 256, 192)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), src(x))


def test_detection_json_serves_val_not_predict(make_dataset, valid_coco, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    root = make_dataset(valid_coco)
    f = tmp_path / "dets.json"
    f.write_text(json.dumps([{"image_id": 1, "bbox": [4, 8, 20, 24], "score": 0.9}]))
    model = Model(create_tiny(), detector=str(f))
    assert model.val(root, split="train").counts["images"] == 2
    with pytest.raises(ValueError, match="gives boxes by dataset image id"):
        model.predict(np.zeros((48, 64, 3), np.uint8))
    assert len(model.predict(np.zeros((48, 64, 3), np.uint8), boxes=np.ones((1, 4)))[0]) == 1
