"""Output folders that commands own: nothing is overwritten or deleted that posekit did not make.

A command that writes a folder (`data synth`, `data convert`, `data split --out`, `data preview`,
`demo`) first claims it with `claim_output`, which leaves a small manifest there
(`.posekit-output.json`: which command, when, from what). Claiming

- an absent or empty folder succeeds;
- a folder the same command wrote before succeeds, and what that earlier run wrote is removed
  first, so a rerun starts fresh (it never mixes two runs' files);
- any other non-empty folder is refused with `OutputExistsError`, unless `force=True`. A forced
  claim writes into the folder and remembers what was already there: those entries are never
  deleted by a later rerun.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from posekit import __version__
from posekit.utils.errors import UserError
from posekit.utils.paths import write_text_replacing

MANIFEST = ".posekit-output.json"
#: posekit's own files in an output folder, never counted as content (the run lock of
#: `posekit.utils.runs` included).
_BOOKKEEPING = frozenset({MANIFEST, ".posekit-run.lock"})


class OutputExistsError(UserError):
    """The output folder holds something that this command did not write."""


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of an output folder, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("command"), str) else None


def claim_output(
    folder: str | Path,
    command: str,
    *,
    source: str | None = None,
    force: bool = False,
    writes: Iterable[str] = (),
    keep_earlier: bool = False,
) -> Path:
    """Make `folder` the output of `command` (e.g. "data convert"); see the module docstring.

    Args:
        folder: the output folder (created when absent).
        command: the posekit command that writes it.
        source: what it is made from, for the record.
        force: write into a non-empty folder that is not this command's output.
        writes: top-level names the command writes whole (and may later remove); even with
            `force`, one that is already there and not this command's is refused.
        keep_earlier: leave an earlier run's output in place for now (a command that stages
            its output and commits it at once replaces it then, and calls `remove_earlier`
            after), so a failed rerun leaves the earlier output whole.

    Raises:
        OutputExistsError: the folder is a file, or non-empty and not this command's output
            (without `force`).

    Example:
        >>> claim_output("data/people-yolo", "data convert", source="data/people")  # doctest: +SKIP
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"{folder} exists and is not a folder")
    present = sorted(p.name for p in folder.iterdir() if p.name not in _BOOKKEEPING) \
        if folder.is_dir() else []  # fmt: skip
    manifest = read_manifest(folder) if folder.is_dir() else None
    ours = manifest is not None and manifest["command"] == command
    if present and not ours and not force:
        whose = (f"the output of `posekit {manifest['command']}`" if manifest is not None
                 else "files posekit did not write")  # fmt: skip
        raise OutputExistsError(
            f"{folder} is not empty and holds {whose} ({_listing(present)}); `posekit "
            f"{command}` only writes into an empty folder or its own earlier output: choose "
            "another folder, or pass --force to write into it (nothing there is deleted)"
        )
    if ours:
        assert manifest is not None
        kept = [str(n) for n in manifest.get("kept", [])]
        if not keep_earlier:  # what our earlier run wrote goes; what predates it stays
            remove_earlier(folder, kept)
    else:
        kept = present
    clash = sorted(set(writes) & set(kept))
    if clash:
        raise OutputExistsError(
            f"{folder} already holds {_listing(clash)}, which `posekit {command}` would write "
            "but did not make: choose another folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    record = {"command": command, "source": source, "posekit": __version__,
              "written": time.strftime("%Y-%m-%d %H:%M:%S"), "kept": kept}  # fmt: skip
    # a link planted at the manifest's name is replaced, never written through
    write_text_replacing(folder / MANIFEST, json.dumps(record, indent=1))
    return folder


def remove_earlier(folder: str | Path, keep: Iterable[str]) -> None:
    """Remove every entry of an output folder except posekit's bookkeeping and `keep` (what
    predates the output, and what the current run has just committed)."""
    keep = set(keep) | _BOOKKEEPING
    for entry in Path(folder).iterdir():
        if entry.name not in keep:
            _remove(entry)


def kept_entries(folder: str | Path) -> list[str]:
    """The entries an output folder held before posekit first claimed it (from its
    manifest): never removed by a rerun."""
    manifest = read_manifest(folder)
    return [str(n) for n in manifest.get("kept", [])] if manifest else []


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _listing(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
