"""Paths that stay inside their folder: the guard on every path a dataset file names and on
every file a command writes.

A dataset file is input like any other: a COCO `file_name` of `../../home/me/.bashrc` or
`/etc/passwd` must neither be read as an image of the dataset nor decide where a converter
writes. The check is lexical (the joined path is normalised, symbolic links are not followed),
so a dataset whose image folder is itself a link to another disk still works.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from posekit.utils.errors import UserError


class PathEscapeError(UserError):
    """A relative path that is absolute or climbs out of the folder it must stay in."""


def escapes(relative: str) -> str | None:
    """Why `relative` would leave the folder it is joined to, or None when it stays inside:
    it is empty, absolute (a POSIX or a Windows drive path), or its `..` parts climb out."""
    if not relative or "\x00" in relative:
        return "is empty or holds a NUL byte"
    if PurePosixPath(relative).is_absolute() or PureWindowsPath(relative).is_absolute() \
            or PureWindowsPath(relative).drive:  # fmt: skip
        return "is an absolute path"
    depth = 0
    for part in relative.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return "climbs out of its folder with '..'"
        elif part not in ("", "."):
            depth += 1
    return None


def join_inside(root: str | Path, relative: str) -> Path:
    """`root / relative`, normalised, when it stays inside `root`; else `PathEscapeError`.

    Example:
        >>> join_inside("out/images", "a/b.jpg").as_posix()
        'out/images/a/b.jpg'
    """
    why = escapes(relative)
    if why is not None:
        raise PathEscapeError(f"{relative!r} {why} (it must stay inside {root})")
    return Path(os.path.normpath(Path(root) / relative))


def write_text_replacing(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) as `write_bytes_replacing` does."""
    return write_bytes_replacing(path, text.encode("utf-8"))


def write_bytes_replacing(path: str | Path, data: bytes) -> Path:
    """Write `data` to a new temporary file beside `path`, then rename it over `path`: a
    reader never sees half a file, and a link already at `path` (or at any name beside it) is
    replaced, not followed out of the folder. The file gets the usual mode (0666 less the
    umask), as `open` would give it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".posekit-tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        tmp.chmod(0o666 & ~_umask())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process's umask, read without changing it (`os.umask` sets it, for every thread
    at once); 0o022 where the kernel does not say."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022
