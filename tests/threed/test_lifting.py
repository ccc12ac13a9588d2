"""Lifting from one camera, end to end: synthetic motion datasets, training and validation
through the trainer and `posekit val`, live per-track lifting (exactly what lifting the track
so far gives), the events' `keypoints_3d`, and the one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from cli_output import error_lines
from posekit.cli.main import main
from posekit.data.sequences import load_sequence_splits
from posekit.engine.checkpoint import save_checkpoint
from posekit.engine.lifting import exact_pixels
from posekit.models import create
from posekit.predict.results import Boxes, Keypoints, Results
from posekit.schema import get_schema
from posekit.threed.lifting import Lifter, guessed_intrinsics
from posekit.threed.motion_dataset import MotionDataConfig, write_motion_dataset
from posekit.track.events import event_schema, frame_events
from posekit.utils.errors import UserError

COCO = get_schema("coco17")


@pytest.fixture(scope="module")
def motion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("motion")
    write_motion_dataset(out, COCO, MotionDataConfig(clips=10, frames=40, val=0.2, seed=3))
    return out


def random_lifter(tmp_path: Path, causal: bool) -> Path:
    torch.manual_seed(0)
    net = create("liftpose-27", COCO, width=1 / 32, causal=causal)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.1, 0.1)
    return save_checkpoint(tmp_path / f"lift{int(causal)}.pt", net, epoch=1)


def test_motion_dataset_is_deterministic_and_its_2d_is_the_3d_seen(
    motion: Path, tmp_path: Path
) -> None:
    splits = load_sequence_splits(motion)
    assert {k: (len(v), v.frames) for k, v in splits.items()} == {"train": (8, 40), "val": (2, 40)}
    write_motion_dataset(
        tmp_path / "again", COCO, MotionDataConfig(clips=10, frames=40, val=0.2, seed=3)
    )
    again = load_sequence_splits(tmp_path / "again")["val"]
    np.testing.assert_array_equal(again.keypoints3d, splits["val"].keypoints3d)
    train = splits["train"]
    exact = exact_pixels(train)
    seen = np.isfinite(train.keypoints2d[..., 0])
    error = np.linalg.norm(train.keypoints2d[..., :2] - exact[..., :2], axis=-1)[seen]
    heights = np.ptp(exact[..., 1], axis=-1)  # the person's pixel height per frame
    assert np.median(error) < 0.03 * np.median(heights)  # the detector's noise, ~1 % of it
    assert 0.02 < 1 - seen.mean() < 0.08  # 5 % dropped
    assert np.all(train.keypoints3d[..., 2] > 1.0)  # in front of every camera


def _frames(clip2d: np.ndarray, size: tuple[int, int]) -> list[Results]:
    """One tracked person (id 7) per frame, at posekit's continuous pixels."""
    out = []
    for i, kp in enumerate(clip2d):
        data = kp.copy()
        data[..., :2] += 0.5
        box = np.array([[0.0, 0.0, 10.0, 10.0]])
        out.append(
            Results(
                Boxes(box, np.ones(1), np.zeros(1), size, np.array([7])),
                Keypoints(data[None], size, COCO.keypoints, 0.5),
                {0: "person"},
                [COCO],
                "clip.mp4",
                frame=i,
            )
        )
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_live_lifting_is_lifting_the_track_so_far(
    motion: Path, tmp_path: Path, causal: bool
) -> None:
    """Frame t's live 3D equals `lift` of the track's frames 0..t, for the last frame."""
    ds = load_sequence_splits(motion)["val"]
    lifter = Lifter(random_lifter(tmp_path, causal), "cpu")
    clip = ds.keypoints2d[0].astype(np.float64)
    clip[..., 2] = np.where(np.isfinite(clip[..., 0]), 0.9, 0.0)
    w, h = (int(v) for v in ds.image_size[0])
    live = lifter.live(ds.intrinsics[0])
    got = [live(r).keypoints3d[0] for r in _frames(np.nan_to_num(clip), (h, w))]
    for t in (0, 5, 20, 39):
        expected = lifter.lift(clip[: t + 1], ds.intrinsics[0])[-1]
        np.testing.assert_allclose(got[t], expected, atol=1e-5)
    assert guessed_intrinsics(w, h).tolist() == [max(w, h), max(w, h), w / 2 - 0.5, h / 2 - 0.5]


def test_lifted_events_carry_keypoints_3d_that_match_the_schema(
    motion: Path, tmp_path: Path
) -> None:
    ds = load_sequence_splits(motion)["val"]
    live = Lifter(random_lifter(tmp_path, False), "cpu").live()
    w, h = (int(v) for v in ds.image_size[0])
    r = live(_frames(np.nan_to_num(ds.keypoints2d[0]), (h, w))[0])
    event = frame_events(r)[0]
    jsonschema.validate(event, event_schema())
    assert [p["name"] for p in event["keypoints_3d"]] == list(COCO.keypoints)
    assert r[0].keypoints3d.shape == (1, 17, 3)


def test_a_lifter_is_refused_where_images_are_read(tmp_path: Path) -> None:
    from posekit import Model

    path = random_lifter(tmp_path, False)
    with pytest.raises(
        UserError, match=r"lifting network .* cannot predict on images; give it to a detector"
    ):
        Model(path).predict(np.zeros((64, 64, 3), np.uint8))
    rtpose = save_checkpoint(tmp_path / "rt.pt", create("rtpose-n", COCO, width=0.25), epoch=1)
    with pytest.raises(UserError, match="reads images: lifting needs a lifting network"):
        Lifter(rtpose)


def test_the_trainer_refuses_a_model_that_reads_other_data(
    motion: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], valid_coco, make_dataset
) -> None:  # type: ignore[no-untyped-def]
    runs = tmp_path / "runs"
    common = ["--epochs", "1", "--workers", "0", "--project", str(runs)]
    assert main(["train", "--model", "rtpose-n", "--data", str(motion), *common]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "rtpose-n reads images" in line and "holds 2D keypoint sequences" in line
    coco = make_dataset(valid_coco)
    assert main(["train", "--model", "liftpose-27", "--data", str(coco), *common]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "liftpose-27 reads 2D keypoint sequences" in line
    assert not runs.exists()  # a refused run leaves no folder


def test_cli_motion_train_val(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`posekit data motion` -> `posekit train` (a lifting network) -> `posekit val`."""
    data = tmp_path / "motion"
    assert main(["data", "motion", "--clips", "12", "--frames", "40", "--out", str(data)]) == 0
    assert "wrote 12 clips of 40 frames" in capsys.readouterr().out
    settings = ["--epochs", "2", "--width", "0.0625", "--batch", "8", "--workers", "0"]
    args = ["train", "--model", "liftpose-27", "--data", str(data), *settings]
    args += ["--project", str(tmp_path / "runs")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best MPJPE" in out and " mm;" in out
    best = tmp_path / "runs" / "exp" / "weights" / "best.pt"
    rc = main(["val", "--data", str(data), "--model", str(best), "--out", str(tmp_path / "v")])
    out = capsys.readouterr().out
    assert rc == 0 and "P-MPJPE" in out and "left_ankle" in out
    report = json.loads((tmp_path / "v" / "metrics.json").read_text())
    assert report["frames"] == 40 and report["MPJPE_mm"] > report["P-MPJPE_mm"] > 0
    assert (tmp_path / "v" / "per_joint.png").stat().st_size > 10_000
    assert main(["val", "--data", str(data), "--model", str(best), "--exact-2d"]) == 0
    assert "exact 2D" in capsys.readouterr().out


def test_live_lifting_refuses_untracked_results_and_other_keypoints(tmp_path: Path) -> None:
    live = Lifter(random_lifter(tmp_path, False), "cpu").live((500, 500, 99.5, 99.5))
    hand = get_schema("hand21")
    r = Results(
        Boxes(np.array([[0.0, 0, 9, 9]]), np.ones(1), np.zeros(1), (200, 200), np.array([1])),
        Keypoints(np.ones((1, 21, 3)), (200, 200), hand.keypoints, 0.5),
        {0: "hand"},
        [hand],
    )
    with pytest.raises(UserError, match="trained on person keypoints, the detector gives hand"):
        live(r)
    untracked = Results(
        Boxes(np.zeros((0, 4)), np.zeros(0), np.zeros(0), (200, 200)),
        Keypoints(np.zeros((0, 17, 3)), (200, 200), COCO.keypoints),
        {0: "person"},
        [COCO],
    )
    with pytest.raises(UserError, match="needs tracked results"):
        live(untracked)
