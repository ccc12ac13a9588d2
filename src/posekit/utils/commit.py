"""Multi-file commits that are all-or-nothing: a command that changes several files (the split
files and data YAML of `data split`, the folders of `data convert`) writes everything into a
staging folder first, then calls `commit_staged`, which renames the staged entries over their
targets as one unit.

Every target that already exists is first moved aside into the staging folder (a rename, so
nothing is copied); if any rename fails, everything done so far is undone in reverse order and
the error is raised again, leaving the targets exactly as they were. All renames stay within
one file system (the staging folder is created beside the targets), so each is atomic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from posekit.utils.errors import UserError

T = TypeVar("T")
_ASIDE = ".posekit-previous"  # inside the stage: the old targets during a commit


_OWNER = ".posekit-owner"  # inside the stage: the process id of the command that made it


def staging_folder(beside: str | Path, what: str) -> Path:
    """A new folder inside `beside` for staging (`.posekit-<what>-XXXXXXXX`): made by
    `mkdtemp`, so it never is, nor follows, anything that was already there. It holds the
    maker's process id, so that the stages of a killed command are removed by the next one
    (`remove_abandoned`)."""
    remove_abandoned(Path(beside), what)
    stage = Path(tempfile.mkdtemp(prefix=f".posekit-{what}-", dir=beside))
    (stage / _OWNER).write_text(str(os.getpid()))
    return stage


def remove_abandoned(beside: Path, what: str) -> list[Path]:
    """Remove the `.posekit-<what>-*` stages in `beside` whose maker is no longer running
    (a command killed before it cleaned up). Only folders that hold a posekit owner file are
    touched: anything else with that name is left alone."""
    removed = []
    for stage in beside.glob(f".posekit-{what}-*"):
        owner = stage / _OWNER
        if stage.is_symlink() or not stage.is_dir() or owner.is_symlink() or not owner.is_file():
            continue
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            continue
        if pid == os.getpid() or _running(pid):
            continue
        shutil.rmtree(stage, ignore_errors=True)
        removed.append(stage)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def commit_staged(
    moves: Sequence[tuple[Path, Path]],
    stage: Path,
    *,
    remove: Sequence[Path] = (),
) -> None:
    """Rename each staged `(source, target)` over its target and take away every path in
    `remove`, as one unit (see the module docstring). `stage` holds the set-aside old targets
    until the commit is complete; it is the caller's to delete afterwards.

    Raises:
        UserError: a target is a folder where a file goes (the user's: never removed);
            nothing was changed.
        OSError: a rename failed; every completed step was undone first.
    """
    for source, target in [*moves, *((None, t) for t in remove)]:
        is_folder = target.is_dir() and not target.is_symlink()
        if is_folder and (source is None or not source.is_dir()):
            raise UserError(
                f"{target} is a folder where posekit writes a file; move it away and run "
                "again (nothing was changed)"
            )
    aside = stage / _ASIDE
    aside.mkdir()
    done: list[tuple[Path, Path]] = []  # (from, to) of every completed rename, in order
    try:
        for i, target in enumerate([t for _, t in moves] + list(remove)):
            if os.path.lexists(target):
                kept = aside / str(i)
                _step(target, kept)
                done.append((target, kept))
        for source, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            _step(source, target)
            done.append((source, target))
    except BaseException:
        for src, dst in reversed(done):  # undone with Path.replace itself, never `_step`
            dst.replace(src)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _step(source: Path, target: Path) -> None:
    """One rename of a commit (a test replaces it to fail at a chosen step)."""
    source.replace(target)


def write_staged(folder: str | Path, what: str, write: Callable[[Path], T]) -> T:
    """Run `write(stage)`, which writes a folder's entries into a fresh staging folder inside
    `folder`, then commit every entry it wrote over `folder`'s entries of the same names. A
    failure while writing leaves `folder` as it was, and so does one while committing. Paths
    in the result that point into the staging folder are the caller's to map (`rebase`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stage = staging_folder(folder, what)
    try:
        result = write(stage)
        moves = [(e, folder / e.name) for e in sorted(stage.iterdir())
                 if e.name not in (_ASIDE, _OWNER)]  # fmt: skip
        commit_staged(moves, stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return result


def rebase(path: Path, stage: Path, folder: Path) -> Path:
    """`path` inside `stage` as it is after the commit into `folder`."""
    return folder / path.relative_to(stage)
