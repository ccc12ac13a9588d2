"""Run folders (`runs/train/exp`, `exp2`, ...) claimed so that two runs never share one.

Without `exist_ok`, the folder is created with an atomic `mkdir`: of two runs started at once,
exactly one gets `exp` and the other moves on to `exp2`. With `exist_ok` (reuse `project/name`),
and when resuming, a lock file holding the writer's process id keeps a second run out while the
first is alive; a lock left by a process that died is taken over.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from posekit.utils.outputs import OutputExistsError, claim_output

LOCK = ".posekit-run.lock"


def next_run_dir(project: str | Path, name: str, exist_ok: bool = False) -> Path:
    """Create and return `project/name`, or `name2`, `name3` ... when it exists (with
    `exist_ok`, `project/name` whether or not it exists). Creation is an atomic `mkdir`, so of
    two processes asking at once each gets its own folder."""
    base = Path(project)
    base.mkdir(parents=True, exist_ok=True)
    if exist_ok:
        (base / name).mkdir(exist_ok=True)
        return base / name
    n = 1
    while True:
        folder = base / (name if n == 1 else f"{name}{n}")
        try:
            folder.mkdir()  # atomic: only one process can create it
            return folder
        except FileExistsError:
            n += 1


def claim_run_dir(project: str | Path, name: str, *, exist_ok: bool = False) -> Path:
    """A training run folder from `next_run_dir`, locked for this process and marked as a
    training run; with `exist_ok`, an earlier run's files there are replaced, and a folder
    that is not a posekit training run is refused.

    Example:
        >>> run = claim_run_dir("runs/train", "exp")  # doctest: +SKIP
    """
    folder = next_run_dir(project, name, exist_ok)
    lock_run_dir(folder)
    try:
        claim_output(folder, "train")
    except OutputExistsError:
        unlock_run_dir(folder)
        raise
    return folder


def lock_run_dir(folder: Path) -> None:
    """Take the folder's run lock, or raise `OutputExistsError` naming the live holder."""
    lock = folder / LOCK
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(lock)
            if holder == me:
                return
            if _alive(holder):
                raise OutputExistsError(
                    f"{folder}: another training run ({holder}) is writing there; wait for it "
                    "or choose another --name"
                ) from None
            lock.unlink(missing_ok=True)  # its writer died: take the folder over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return
    raise OutputExistsError(f"{folder}: could not take the run lock")


def unlock_run_dir(folder: Path) -> None:
    """Release this process's run lock (a lock held by another process is left alone)."""
    lock = folder / LOCK
    if _read(lock) == f"{socket.gethostname()} {os.getpid()}":
        lock.unlink(missing_ok=True)


def _read(lock: Path) -> str:
    try:
        return lock.read_text().strip()
    except OSError:
        return ""


def _alive(holder: str) -> bool:
    """Whether the process named in a lock still runs (a lock from another host counts as
    alive: its process cannot be checked from here)."""
    host, _, pid = holder.rpartition(" ")
    if host != socket.gethostname():
        return bool(holder)
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
