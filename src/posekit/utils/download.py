"""Fetching a published file the user named but does not have: into a cache folder, with a
progress bar, checked, and put in place atomically.

posekit downloads only when asked for a published file by name (`Model("yolo11n-pose.pt")`
with no such file on disk); the file is then read by the same safe loader as any other, so a
tampered download can fail but never run code. Offline, the error is one line naming the URL
and where to put the file by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from posekit.utils.errors import UserError

log = logging.getLogger("posekit")

#: Largest file posekit downloads (the biggest published pose models are ~120 MB).
MAX_DOWNLOAD_BYTES = 4 << 30
#: Bytes read per step.
CHUNK = 1 << 20
#: Seconds without data after which a download is abandoned.
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Published:
    """Where a published file comes from: its URL, and its SHA-256 and size when pinned."""

    url: str
    sha256: str | None = None
    size: int | None = None


def cache_folder() -> Path:
    """Where downloads are kept: `$POSEKIT_CACHE`, else `~/.cache/posekit`."""
    given = os.environ.get("POSEKIT_CACHE")
    return Path(given).expanduser() if given else Path.home() / ".cache" / "posekit"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _mismatch(path: Path, file: Published, digest: str | None = None) -> str | None:
    """Why the file at `path` (of SHA-256 `digest`, when known) is not the pinned one, or None
    when it is (or nothing is pinned)."""
    size = path.stat().st_size
    if file.size is not None and size != file.size:
        return f"{size} bytes where {file.size} were published"
    found = digest or (sha256_of(path) if file.sha256 is not None else None)
    if file.sha256 is not None and found != file.sha256.lower():
        return f"SHA-256 {found} where {file.sha256} was published"
    return None


def fetch(file: Published, dest: Path, *, show_progress: bool = True) -> Path:
    """`dest` (under the cache folder), downloaded from `file.url` unless it is already there
    and matches what was pinned. The bytes go to a new unique file beside `dest` (created
    exclusively, so nothing planted there is written through) and are renamed onto `dest`
    only when complete and matching; every failure is one line and leaves nothing behind."""
    if dest.is_file() and not dest.is_symlink() and _mismatch(dest, file) is None:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, part_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    part = Path(part_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _download(file.url, out, dest, show_progress)
        if (why := _mismatch(part, file, digest)) is not None:
            raise UserError(
                f"{file.url}: the download is not the published file ({why}); nothing was kept"
            )
        part.replace(dest)
    finally:
        part.unlink(missing_ok=True)
    log.info(
        "downloaded %s to %s (%d bytes, SHA-256 %s)", file.url, dest, dest.stat().st_size, digest
    )
    return dest


def _download(url: str, out: object, dest: Path, show_progress: bool) -> str:
    """Stream `url` into the open file `out`, checking the length the server declared; the
    SHA-256 of what was written (hashed as it streams: the file is not read again)."""
    from posekit.utils.progress import download_bar

    hint = f"put the file at {dest} by hand, or pass its path"
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        raise UserError(
            f"cannot download {url}: the server answered {e.code} {e.reason}; {hint}"
        ) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(f"cannot download {url} ({reason}; offline?): {hint}") from None
    with response:
        declared = response.headers.get("Content-Length")
        total = int(declared) if declared and declared.isdigit() else None
        if total is not None and total > MAX_DOWNLOAD_BYTES:
            raise UserError(
                f"{url} declares {total} bytes, more than the {MAX_DOWNLOAD_BYTES} "
                f"posekit downloads; {hint}"
            )
        received, digest = 0, hashlib.sha256()
        with download_bar(f"downloading {dest.name}", total, enabled=show_progress) as advance:
            while True:
                try:
                    block = response.read(CHUNK)
                except (http.client.IncompleteRead, OSError) as e:
                    raise UserError(
                        f"{url}: the download broke off after {received} bytes "
                        f"({type(e).__name__}); nothing was kept"
                    ) from None
                if not block:
                    break
                received += len(block)
                if received > (total or MAX_DOWNLOAD_BYTES):
                    raise UserError(
                        f"{url} sent more than the {total or MAX_DOWNLOAD_BYTES} "
                        "bytes it declared; nothing was kept"
                    )
                out.write(block)  # type: ignore[attr-defined]
                digest.update(block)
                advance(len(block))
        if total is not None and received != total:
            raise UserError(
                f"{url}: the download stopped at {received} of {total} bytes; nothing was kept"
            )
    return digest.hexdigest()
