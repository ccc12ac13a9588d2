"""Output folders: commands overwrite or delete only what they created."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
from pathlib import Path

import pytest

from posekit.utils.outputs import MANIFEST, OutputExistsError, claim_output, read_manifest
from posekit.utils.runs import LOCK, claim_run_dir, lock_run_dir, next_run_dir, unlock_run_dir


def test_claim_empty_or_absent_folder(tmp_path: Path) -> None:
    out = claim_output(tmp_path / "new", "data convert", source="x")
    assert read_manifest(out)["command"] == "data convert"
    (tmp_path / "empty").mkdir()
    claim_output(tmp_path / "empty", "data convert")


def test_foreign_folder_is_refused_and_untouched(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(OutputExistsError, match=r"--force.*nothing there is deleted"):
        claim_output(tmp_path, "data synth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_another_commands_output_is_refused(tmp_path: Path) -> None:
    claim_output(tmp_path / "d", "data synth")
    (tmp_path / "d" / "images").mkdir()
    with pytest.raises(OutputExistsError, match="output of `posekit data synth`"):
        claim_output(tmp_path / "d", "data convert")


def test_rerun_replaces_only_its_own_files(tmp_path: Path) -> None:
    (tmp_path / "theirs.txt").write_text("keep")
    claim_output(tmp_path, "demo", force=True)  # forced: what is there is remembered
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.jpg").write_text("ours")
    claim_output(tmp_path, "demo")  # a rerun: our earlier files go, theirs stay
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "theirs.txt"]
    assert json.loads((tmp_path / MANIFEST).read_text())["kept"] == ["theirs.txt"]


def test_writes_never_land_on_foreign_entries_even_forced(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="already holds data"):
        claim_output(tmp_path, "demo", force=True, writes=("data", "train"))
    assert not (tmp_path / MANIFEST).exists()


def test_a_file_is_not_an_output_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputExistsError, match="not a folder"):
        claim_output(tmp_path / "f", "data convert")


def _claim(args: tuple[str, mp.synchronize.Barrier]) -> str:
    project, barrier = args
    barrier.wait()
    return str(next_run_dir(project, "exp"))


def test_concurrent_runs_get_distinct_folders(tmp_path: Path) -> None:
    """Four processes ask for runs/exp at the same moment: each gets its own folder."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(4)
        with ctx.Pool(4) as pool:
            got = pool.map(_claim, [(str(tmp_path), barrier)] * 4)
    assert sorted(Path(g).name for g in got) == ["exp", "exp2", "exp3", "exp4"]


def test_run_lock_keeps_a_second_writer_out(tmp_path: Path) -> None:
    import socket

    run = claim_run_dir(tmp_path, "exp", exist_ok=True)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (run / LOCK).write_text(f"{socket.gethostname()} {sleeper.pid}")  # a live writer
        with pytest.raises(OutputExistsError, match="another training run"):
            claim_run_dir(tmp_path, "exp", exist_ok=True)
    finally:
        sleeper.kill()
        sleeper.wait()
    # its writer is gone: the folder is taken over
    assert claim_run_dir(tmp_path, "exp", exist_ok=True) == run
    unlock_run_dir(run)
    assert not (run / LOCK).exists()
    lock_run_dir(run)
    assert (run / LOCK).exists()


def test_exist_ok_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        claim_run_dir(tmp_path, "exp", exist_ok=True)
    assert not (tmp_path / "exp" / LOCK).exists()
