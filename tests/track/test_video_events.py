"""Synthetic tracking video, the tracking pipeline, the JSONL event stream and `posekit track`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest

from posekit.cli.main import main
from posekit.predict import Boxes, Keypoints, Results
from posekit.schema import get_schema
from posekit.track import Tracker, TrackerConfig
from posekit.track.events import SCHEMA_VERSION, JsonlWriter, event_schema, frame_events
from posekit.track.pipeline import tracked
from posekit.track.synth_video import SynthVideoConfig, load_truth, synth_video, write_synth_video

COCO = get_schema("coco17")


def test_synthetic_video_has_walkers_entering_crossing_and_occluding() -> None:
    cfg = SynthVideoConfig(
        people=4, frames=90, width=320, height=240, min_height=70, max_height=160, seed=1
    )
    frames = list(synth_video(cfg))
    assert len(frames) == 90 and frames[0][0].shape == (240, 320, 3)
    ids = [set(t.ids.tolist()) for _, t in frames]
    assert ids[0] < set().union(*ids)  # somebody enters after the first frame
    first_seen = {i: next(f for f, s in enumerate(ids) if i in s) for i in set().union(*ids)}
    assert max(first_seen.values()) > 0
    vis = np.concatenate([t.instances.keypoints[..., 2].ravel() for _, t in frames])
    assert (vis == 1).any() and (vis == 2).any()  # occlusions happen
    for _, t in frames:  # boxes hold their keypoints
        for b, kp in zip(t.instances.boxes, t.instances.keypoints, strict=True):
            lab = kp[kp[:, 2] == 2]
            assert np.all((lab[:, 0] >= b[0] - 1) & (lab[:, 0] <= b[2] + 1))
    again = next(iter(synth_video(cfg)))
    np.testing.assert_array_equal(again[0], frames[0][0])  # deterministic


def test_written_video_and_truth_round_trip(tmp_path: Path) -> None:
    cfg = SynthVideoConfig(
        people=2, frames=12, width=160, height=120, min_height=40, max_height=80, fps=24.0
    )
    video, truth = write_synth_video(cfg, tmp_path)
    cap = cv2.VideoCapture(str(video))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 12 and cap.get(cv2.CAP_PROP_FPS) == 24.0
    loaded = load_truth(truth)
    rendered = [t for _, t in synth_video(cfg)]
    assert [t.index for t in loaded] == list(range(12))
    for a, b in zip(loaded, rendered, strict=True):
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_allclose(a.instances.boxes, b.instances.boxes, atol=0.01)


def _frame(i: int, boxes: np.ndarray, ids: np.ndarray | None = None) -> Results:
    n = len(boxes)
    kp = np.zeros((n, 17, 3))
    kp[..., 0] = boxes[:, None, 0] + np.linspace(2, 20, 17)
    kp[..., 1] = boxes[:, None, 1] + np.linspace(2, 60, 17)
    kp[..., 2] = 0.9
    kp[:, 0, 2] = 0.1  # a low-confidence nose: kept, reported with its confidence
    return Results(
        Boxes(boxes, np.full(n, 0.9), np.zeros(n), (240, 320), ids),
        Keypoints(kp, (240, 320), COCO.keypoints, 0.5),
        {0: "person"},
        [COCO],
        "clip.mp4",
        frame=i,
        timestamp=i / 25,
    )


def test_tracking_pipeline_assigns_stable_ids_and_events_match_the_schema(tmp_path: Path) -> None:
    frames = [
        _frame(
            i,
            np.array([[10.0 + 3 * i, 20, 40 + 3 * i, 100], [200.0 - 3 * i, 30, 230 - 3 * i, 110]]),
        )
        for i in range(10)
    ]
    out = list(tracked(frames, Tracker(TrackerConfig(min_hits=1)), conf=0.25))
    assert [r.boxes.id.tolist() for r in out] == [[1, 2]] * 10
    schema = event_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    angles = {"left_elbow": np.array([90.0, np.nan])}
    with JsonlWriter(tmp_path / "e.jsonl") as w:
        for r in out:
            w.write(frame_events(r, angles))
    lines = (tmp_path / "e.jsonl").read_text().splitlines()
    assert len(lines) == 20
    for line in lines:
        e = json.loads(line)
        jsonschema.validate(e, schema)
        assert e["schema"] == SCHEMA_VERSION and e["keypoints"][0]["name"] == "nose"
        assert e["keypoints"][0]["confidence"] == 0.1
    last = json.loads(lines[-1])
    assert last["frame"] == 9 and last["timestamp"] == pytest.approx(0.36)
    assert json.loads(lines[1])["angles"] == {"left_elbow": None}  # not measurable: null
    bad = dict(last, track_id="1")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(ValueError, match="not tracked"):
        frame_events(_frame(0, np.array([[0.0, 0, 5, 5]])))


def still_clip(data: Path, folder: Path) -> tuple[Path, int]:
    """An 8-frame clip (10 frames/s) of the training image of `data` with the most people,
    and how many people it shows."""
    from posekit.data.formats import load_splits

    ds = load_splits(data)["train"]
    im = max(ds.images, key=lambda im: len(ds.annotations_by_image().get(im.id, [])))
    img = cv2.imread(str(ds.image_path(im)))
    h, w = img.shape[:2]
    video = folder / "clip.mp4"
    wr = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (w, h))
    for _ in range(8):
        wr.write(img)
    wr.release()
    return video, len(ds.annotations_by_image()[im.id])


@pytest.mark.slow
def test_cli_track_writes_video_and_events_with_one_id_per_person(  # type: ignore[no-untyped-def]
    overfit_run, four_people: Path, tmp_path: Path, capsys
) -> None:
    """A clip that shows one training image for 8 frames: the memorised people keep their ids."""
    video, people = still_clip(four_people, tmp_path)
    rc = main(
        [
            "track",
            "--model",
            str(overfit_run.best),
            "--source",
            str(video),
            "--imgsz",
            "192",
            "--min-hits",
            "1",
            "--save-jsonl",
            "events.jsonl",
            "--events-dir",
            str(tmp_path / "stream"),
            "--events-every",
            "3",
            "--angle",
            "left_shoulder,left_elbow,left_wrist",
            "--project",
            str(tmp_path / "runs"),
            "--name",
            "t",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    run = tmp_path / "runs" / "t"
    cap = cv2.VideoCapture(str(run / "clip.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 8 and cap.get(cv2.CAP_PROP_FPS) == 10.0
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    schema = event_schema()
    for e in events:
        jsonschema.validate(e, schema)
    by_frame: dict[int, set[int]] = {}
    for e in events:
        by_frame.setdefault(e["frame"], set()).add(e["track_id"])
    assert len(by_frame) == 8 and all(len(s) >= 1 for s in by_frame.values())
    assert len({e["track_id"] for e in events}) <= people  # no id changes on a still scene
    assert "left_elbow" in events[0]["angles"]
    assert "8 frames" in captured.out
    # the rolling directory holds the same events, 3 frames per file (3 + 3 + 2)
    files = sorted((tmp_path / "stream").iterdir())
    assert [f.name for f in files] == [f"events-0000000{i}.jsonl" for i in (1, 2, 3)]
    rolled = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    assert rolled == events
    assert sorted({e["frame"] for e in rolled}) == list(range(8))


def test_cli_track_refuses_still_images(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from posekit.engine.checkpoint import save_checkpoint
    from posekit.models import create

    ck = save_checkpoint(tmp_path / "m.pt", create("rtpose-n", "coco17"))
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    rc = main(["track", "--model", str(ck), "--source", str(tmp_path / "a.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "needs a video" in err


@pytest.mark.slow
def test_cli_track_lifts_every_track_to_3d(  # type: ignore[no-untyped-def]
    overfit_run, four_people: Path, tmp_path: Path, capsys
) -> None:
    """`track --lift`: every event carries the track's root-relative 3D (a random lifter
    here: the plumbing, not the accuracy, which test_liftpose and lift_synth measure)."""
    import torch

    from posekit.engine.checkpoint import save_checkpoint
    from posekit.models import create

    video, _ = still_clip(four_people, tmp_path)
    torch.manual_seed(0)
    lifter = save_checkpoint(
        tmp_path / "lift.pt", create("liftpose-27", COCO, width=1 / 16), epoch=1
    )
    args = ["track", "--model", str(overfit_run.best), "--source", str(video), "--imgsz", "192"]
    args += ["--min-hits", "1", "--lift", str(lifter), "--intrinsics", "300,300,95.5,71.5"]
    args += ["--save-jsonl", "events.jsonl", "--no-save", "--project", str(tmp_path / "runs")]
    assert main(args) == 0, capsys.readouterr().err
    lines = (tmp_path / "runs" / "exp" / "events.jsonl").read_text().splitlines()
    events = [json.loads(x) for x in lines]
    assert events and all(len(e["keypoints_3d"]) == 17 for e in events)
    for e in events:
        jsonschema.validate(e, event_schema())
        hips = [p for p in e["keypoints_3d"] if p["name"] in ("left_hip", "right_hip")]
        assert abs(hips[0]["x"] + hips[1]["x"]) < 1e-3  # root-relative: the hips' middle at 0
    assert main([*args[:-2], "--intrinsics", "300,0,1,1", "--project", str(tmp_path / "r2")]) == 2
    assert "--intrinsics" in capsys.readouterr().err
