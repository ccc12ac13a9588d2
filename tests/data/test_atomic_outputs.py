"""Output folders under failure and hostility: every multi-file commit is all-or-nothing (a
failure injected at each step leaves everything as it was), planted links are replaced and
never followed, pre-existing entries are never deleted, and copies never widen permissions."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

import posekit.utils.commit as commit_module
from cli_output import error_lines
from conftest import tiny_slp
from posekit.cli.main import main
from posekit.data import load_splits
from posekit.data.convert import convert
from posekit.data.layout import place_image
from posekit.data.split import split_on_disk
from posekit.data.synth import SynthConfig, generate
from posekit.utils.outputs import MANIFEST, OutputExistsError, claim_output


@pytest.fixture
def arms(tmp_path: Path) -> Path:
    return generate(SynthConfig("arm", images=12, imgsz=128, seed=2), tmp_path / "arms", val=0.25)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under `folder` (links by their target, files by content)."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + str(p.readlink())
        elif p.is_file():
            out[rel] = p.read_bytes()
        else:
            out[rel] = "dir"
    return out


def count_steps(monkeypatch: pytest.MonkeyPatch, run) -> int:  # type: ignore[no-untyped-def]
    """How many renames a successful `run()` commits."""
    calls = []
    real = commit_module._step
    monkeypatch.setattr(commit_module, "_step", lambda a, b: (calls.append(a), real(a, b)))
    run()
    monkeypatch.setattr(commit_module, "_step", real)
    return len(calls)


def fail_at(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    """Make the k-th rename of the next commit fail (as a full disk would)."""
    real = commit_module._step
    seen = {"n": 0}

    def step(a: Path, b: Path) -> None:
        seen["n"] += 1
        if seen["n"] == k:
            raise OSError(28, "No space left on device", str(b))
        real(a, b)

    monkeypatch.setattr(commit_module, "_step", step)


def test_split_in_place_fails_at_every_step_and_changes_nothing(
    arms: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported loss: a failure at the third rename dropped images from every split. Here
    the commit fails at each of its renames in turn; each time the dataset is as it was and the
    error is one line with exit 2."""
    before = snapshot(arms)
    args = ["data", "split", str(arms), "--val", "0.5", "--test", "0.2", "--seed", "4"]
    n = count_steps(monkeypatch, lambda: main(args))
    assert n >= 6  # the old files set aside, the new ones and the data YAML put in place
    committed = snapshot(arms)
    assert committed != before
    (arms / "annotations" / "test.json").unlink()  # back to the train/val layout
    for name in ("train", "val"):
        (arms / "annotations" / f"{name}.json").write_bytes(before[f"annotations/{name}.json"])
    (arms / "data.yaml").write_bytes(before["data.yaml"])
    assert snapshot(arms) == before
    for k in range(1, n + 1):
        fail_at(monkeypatch, k)
        capsys.readouterr()
        assert main(args) == 2, k
        err = capsys.readouterr().err.strip()
        assert len(error_lines(err)) == 1 and "nothing was changed" in err, err
        assert snapshot(arms) == before, f"step {k} left a change"
    total = sum(len(ds.images) for ds in load_splits(arms).values())
    assert total == 12


def test_convert_fails_at_every_step_and_leaves_the_earlier_output_whole(
    arms: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst = tmp_path / "yolo"
    convert(arms, dst, to="yolo")
    earlier = snapshot(dst)
    n = count_steps(monkeypatch, lambda: convert(arms, dst, to="yolo"))
    assert n >= 3
    earlier.pop(MANIFEST)
    for k in range(1, n + 1):
        fail_at(monkeypatch, k)
        with pytest.raises(OSError, match="No space left"):
            convert(arms, dst, to="yolo")
        now = snapshot(dst)
        now.pop(MANIFEST)
        assert now == earlier, f"step {k} left a change"


def test_convert_failing_while_writing_writes_nothing(
    arms: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure on the fifth image (say, a full disk) leaves no half output behind."""
    import posekit.data.layout as layout

    real, seen = layout.place_image, {"n": 0}

    def place(src: Path, dst: Path, *, link: bool = True) -> None:
        seen["n"] += 1
        if seen["n"] == 5:
            raise OSError(28, "No space left on device", str(dst))
        real(src, dst, link=link)

    monkeypatch.setattr(layout, "place_image", place)
    dst = tmp_path / "out"
    with pytest.raises(OSError):
        convert(arms, dst)
    assert sorted(p.name for p in dst.iterdir()) == [MANIFEST]


def test_split_into_a_folder_fails_at_every_step_and_leaves_the_earlier_output_whole(
    arms: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "resplit"
    split_on_disk(arms, out, val=0.5, seed=1)
    earlier = snapshot(out)
    earlier.pop(MANIFEST)
    n = count_steps(monkeypatch, lambda: split_on_disk(arms, out, val=0.25, seed=2))
    assert n >= 3
    split_on_disk(arms, out, val=0.5, seed=1)  # back to the first output
    for k in range(1, n + 1):
        fail_at(monkeypatch, k)
        with pytest.raises(OSError, match="No space left"):
            split_on_disk(arms, out, val=0.25, seed=2)
        now = snapshot(out)
        now.pop(MANIFEST)
        assert now == earlier, f"step {k} left a change"


def test_split_into_a_folder_failing_while_writing_writes_nothing(
    arms: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import posekit.data.split as split_module

    real, seen = split_module.place_image, {"n": 0}

    def place(src: Path, dst: Path, *, link: bool = True) -> None:
        seen["n"] += 1
        if seen["n"] == 5:
            raise OSError(28, "No space left on device", str(dst))
        real(src, dst, link=link)

    monkeypatch.setattr(split_module, "place_image", place)
    out = tmp_path / "out"
    with pytest.raises(OSError):
        split_on_disk(arms, out)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST]


def test_a_forced_split_never_replaces_an_entry_it_did_not_make(arms: Path, tmp_path: Path) -> None:
    out = tmp_path / "theirs"
    (out / "images").mkdir(parents=True)
    (out / "images" / "keep.jpg").write_bytes(b"theirs")
    with pytest.raises(OutputExistsError, match="did not make"):
        split_on_disk(arms, out, force=True)
    assert (out / "images" / "keep.jpg").read_bytes() == b"theirs"


def test_a_users_folder_where_split_writes_a_file_is_an_error_not_deleted(
    arms: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In place, `annotations/test.json/` (the user's folder) is where `--test` writes its
    file: one line naming it, exit 2, and the folder, its files and the dataset untouched."""
    theirs = arms / "annotations" / "test.json"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    before = snapshot(arms)
    assert main(["data", "split", str(arms), "--val", "0.2", "--test", "0.2"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{theirs} is a folder where posekit writes a file" in err and "\n" not in err
    assert snapshot(arms) == before


def test_convert_never_deletes_nor_follows_a_planted_frames_folder(tmp_path: Path) -> None:
    """SLEAP frames are extracted into a folder convert makes for itself: a `.posekit-frames`
    folder or link already in the output is neither deleted nor written through."""
    slp = tiny_slp(tmp_path / "proj")
    dst = tmp_path / "out"
    dst.mkdir()
    mine = dst / ".posekit-frames"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    outside = tmp_path / "outside"
    outside.mkdir()
    (dst / ".posekit-frames-link").symlink_to(outside)
    assert main(["data", "convert", str(slp), str(dst), "--force"]) == 0
    assert (mine / "notes.txt").read_text() == "mine"
    assert not any(outside.iterdir())
    assert len(list((dst / "images").rglob("*.jpg"))) == 2
    assert sorted(p.name for p in dst.iterdir() if p.name.startswith(".posekit-")) == [
        ".posekit-frames", ".posekit-frames-link", MANIFEST]  # fmt: skip


def test_a_link_planted_at_the_manifest_is_replaced_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "victim.txt"
    outside.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).symlink_to(outside)
    (out / f"{MANIFEST}.posekit-tmp").symlink_to(outside)  # the old fixed temporary name
    claim_output(out, "data convert", force=True)
    assert outside.read_text() == "precious"
    assert not (out / MANIFEST).is_symlink()
    assert json.loads((out / MANIFEST).read_text())["command"] == "data convert"


def test_a_copied_image_is_never_more_readable_than_its_source(tmp_path: Path) -> None:
    """An image reached through a link to a file only its owner may read stays so in the
    output (it was copied as 0644)."""
    private = tmp_path / "private.jpg"
    private.write_bytes(b"\xff\xd8 not really a jpeg")
    private.chmod(0o600)
    link = tmp_path / "ds" / "a.jpg"
    link.parent.mkdir()
    link.symlink_to(private)
    for linked in (True, False):
        dst = tmp_path / f"out-{linked}" / "a.jpg"
        place_image(link, dst, link=linked)
        assert not dst.is_symlink() and dst.read_bytes() == private.read_bytes()
        assert stat.S_IMODE(dst.stat().st_mode) & 0o077 == 0, oct(dst.stat().st_mode)
    planted = tmp_path / "out-planted" / "a.jpg"
    planted.parent.mkdir()
    victim = tmp_path / "victim.jpg"
    victim.write_bytes(b"victim")
    planted.symlink_to(victim)
    place_image(link, planted, link=False)
    assert victim.read_bytes() == b"victim" and not planted.is_symlink()


def test_an_image_entry_with_a_video_key_is_checked_like_any_other(
    valid_coco, make_dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """A `video` key (PoseTrack-like files carry one) once made `data check` skip the image (a
    zero-byte file reported clean) and convert skip its missing-file check (half an output)."""
    for im in valid_coco["images"]:
        im["video"] = "clip01"
    root = make_dataset(valid_coco)
    first = root / "images" / valid_coco["images"][0]["file_name"]
    first.write_bytes(b"")
    assert main(["data", "check", str(root)]) == 1
    assert "clean" not in capsys.readouterr().out
    first.unlink()
    assert main(["data", "convert", str(root), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "image files are missing" in err and not (tmp_path / "out").exists()


def test_a_killed_commands_stage_is_removed_by_the_next_one(tmp_path: Path) -> None:
    """A stage whose maker is gone (a killed export) is removed when the next command of its
    kind stages beside it; a running maker's stage and a folder posekit did not make stay."""
    import subprocess
    import sys

    from posekit.utils.commit import staging_folder

    code = "import os; print(os.getpid())"
    dead = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    abandoned = tmp_path / ".posekit-export-abandoned"
    abandoned.mkdir()
    (abandoned / ".posekit-owner").write_text(dead.stdout.strip())
    (abandoned / "m.onnx").write_bytes(b"half")
    theirs = tmp_path / ".posekit-export-theirs"
    theirs.mkdir()
    live = staging_folder(tmp_path, "export")
    again = staging_folder(tmp_path, "export")
    assert not abandoned.exists() and theirs.is_dir() and live.is_dir() and again.is_dir()
