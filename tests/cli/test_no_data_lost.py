"""Commands refuse to overwrite what they did not create; split keeps every entry and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import posekit.data.split as split_module
from cli_output import error_lines
from posekit.cli.main import main
from posekit.data import load_splits
from posekit.data.synth import SynthConfig, generate


def _one_error_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture
def arms(tmp_path: Path) -> Path:
    return generate(SynthConfig("arm", images=8, imgsz=128, seed=1), tmp_path / "arms", val=0.25)


def test_demo_into_a_folder_with_data_is_refused(tmp_path: Path, capsys) -> None:
    """The reported loss: `posekit demo --out .` deleted ./data with whatever it held."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "thesis.json").write_text("{}")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    _one_error_line(capsys, "--force")
    assert main(["demo", "--out", str(tmp_path), "--force"]) == 2  # data/ is never the demo's
    _one_error_line(capsys, "already holds data")
    assert (tmp_path / "data" / "thesis.json").read_text() == "{}"


def test_convert_into_an_existing_dataset_is_refused(arms: Path, tmp_path: Path, capsys) -> None:
    """The reported mix-up: B's annotations replaced while B's images stayed."""
    other = generate(SynthConfig("person", images=4, imgsz=128, seed=2), tmp_path / "people")
    before = (other / "annotations" / "train.json").read_text()
    assert main(["data", "convert", str(arms), str(other)]) == 2
    _one_error_line(capsys, "output of `posekit data synth`", "--force")
    assert (other / "annotations" / "train.json").read_text() == before


def test_synth_onto_a_dataset_is_refused(make_dataset, valid_coco, capsys) -> None:
    """A dataset the user made (not an earlier `data synth` output) is never regenerated."""
    root = make_dataset(valid_coco)
    before = (root / "annotations" / "train.json").read_text()
    assert main(["data", "synth", "--kind", "person", "--images", "2", "--out", str(root)]) == 2
    _one_error_line(capsys, "not empty", "files posekit did not write")
    assert (root / "annotations" / "train.json").read_text() == before
    assert sorted(p.name for p in (root / "images").iterdir()) == ["a.png", "b.png"]


def test_rerun_into_own_output_replaces_it(arms: Path, tmp_path: Path) -> None:
    out = tmp_path / "yolo"
    assert main(["data", "convert", str(arms), str(out), "--to", "yolo"]) == 0
    (out / "labels" / "val").rename(out / "labels" / "stale")  # something of the earlier run
    assert main(["data", "convert", str(arms), str(out), "--to", "yolo"]) == 0
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["train", "val"]
    regen = ["data", "synth", "--kind", "arm", "--images", "4", "--imgsz", "128", "--out"]
    assert main([*regen, str(arms)]) == 0  # synth's own output: regenerated
    assert len(list((arms / "images").iterdir())) == 4


def test_force_writes_and_keeps_what_was_there(arms: Path, tmp_path: Path) -> None:
    out = tmp_path / "mixed"
    out.mkdir()
    (out / "README.txt").write_text("mine")
    assert main(["data", "convert", str(arms), str(out), "--force"]) == 0
    assert main(["data", "convert", str(arms), str(out)]) == 0  # now ours: a rerun works
    assert (out / "README.txt").read_text() == "mine"
    assert len(load_splits(out)["train"].images) == 6


def test_split_out_refuses_a_foreign_folder(arms: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "x").write_text("x")
    assert main(["data", "split", str(arms), "--out", str(tmp_path / "s")]) == 2
    _one_error_line(capsys, "--force")


def _with_extras(arms: Path) -> None:
    """Add what posekit does not read itself: top-level keys, extra fields, and an annotation
    the loader skips (keypoints of the wrong length)."""
    for name in ("train", "val"):
        f = arms / "annotations" / f"{name}.json"
        obj = json.loads(f.read_text())
        obj["licenses"] = [{"id": 1, "name": "CC-BY"}]
        obj["images"][0]["license"] = 1
        obj["annotations"][0]["track_id"] = 7
        if name == "train":
            bad = dict(obj["annotations"][0], id=9999, keypoints=[1, 2, 2])
            obj["annotations"].append(bad)
        f.write_text(json.dumps(obj))


def test_split_in_place_keeps_every_annotation_and_key(arms: Path) -> None:
    _with_extras(arms)
    before = {s: json.loads((arms / "annotations" / f"{s}.json").read_text())
              for s in ("train", "val")}  # fmt: skip
    assert main(["data", "split", str(arms), "--val", "0.5", "--seed", "3"]) == 0
    after = {s: json.loads((arms / "annotations" / f"{s}.json").read_text())
             for s in ("train", "val")}  # fmt: skip
    key = json.dumps
    anns = lambda objs: sorted(key(a, sort_keys=True) for o in objs for a in o["annotations"])  # noqa: E731
    assert anns(before.values()) == anns(after.values())  # the skipped one included
    assert all(o["licenses"] == [{"id": 1, "name": "CC-BY"}] for o in after.values())
    licensed = [im for o in after.values() for im in o["images"] if "license" in im]
    assert len(licensed) == 2
    assert len(after["val"]["images"]) == 4


def test_split_refuses_when_the_loader_skipped_images(arms: Path, capsys) -> None:
    f = arms / "annotations" / "train.json"
    obj = json.loads(f.read_text())
    del obj["images"][0]["width"]
    f.write_text(json.dumps(obj))
    before = f.read_text()
    assert main(["data", "split", str(arms), "--val", "0.5"]) == 2
    _one_error_line(capsys, "skipped", "nothing was changed")
    assert f.read_text() == before


def test_split_that_fails_half_way_changes_nothing(arms: Path, monkeypatch) -> None:
    """The second file's write fails: the first is not renamed into place either."""
    files = {s: arms / "annotations" / f"{s}.json" for s in ("train", "val")}
    before = {s: f.read_text() for s, f in files.items()}
    calls = {"n": 0}
    real = split_module._dumps

    def failing(obj):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(obj)

    monkeypatch.setattr(split_module, "_dumps", failing)
    with pytest.raises(OSError, match="disk full"):
        split_module.split_on_disk(arms, val=0.5, seed=5)
    assert {s: f.read_text() for s, f in files.items()} == before
    assert sorted(p.name for p in (arms / "annotations").iterdir()) == ["train.json", "val.json"]
