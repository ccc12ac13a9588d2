"""What an encoded image will decode to, read from its header the way the decoder reads it.

The pixel cap (`posekit.data.images`) is only as good as this reading: where a header reader
and OpenCV disagree, a file can declare 16x16 to the check and 12000x12000 to the decoder. So
only formats whose size is read here as the decoder reads it are accepted:

- JPEG, PNG, BMP, WebP: the size fields the decoders use (via `imagesize`).
- TIFF: the first image's width and height, and its tile size (libtiff inflates one whole tile
  before cropping, so a 16x16 image with a 16384x16384 tile costs a gigabyte): the larger of
  the two counts.
- PNM (PBM, PGM, PPM): parsed here with OpenCV's rules (a `#` comment ends at `\\n` or `\\r`).

Every other format (JPEG 2000, SVG, GIF, EXR, ...) is refused by name; a header that is cut
short or malformed is a `HeaderError`, never another exception.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from typing import IO

import imagesize

#: Formats read, by the file extension a user would know them by.
SUPPORTED = "JPEG, PNG, BMP, WebP, TIFF, PNM"
#: Most TIFF directory entries read.
MAX_TIFF_ENTRIES = 4096


class HeaderError(ValueError):
    """The header is malformed, cut short, or of a format posekit does not decode."""


@dataclass(frozen=True)
class Header:
    """Width and height as stored, EXIF orientation (1..8), and the pixels the decoder
    allocates at once (at least width x height)."""

    width: int
    height: int
    orientation: int = 1
    decoded_pixels: int = 0

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise HeaderError(f"the header declares a size of {self.width}x{self.height}")


def sniff(head: bytes) -> str | None:
    """The format of encoded bytes from their first bytes, or None when not a known one."""
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if re.match(rb"P[1-6][ \t\r\n]", head):
        return "pnm"
    return None


def read_header(stream: IO[bytes]) -> Header:
    """The header of the image in `stream` (seekable, at its start); `HeaderError` otherwise."""
    head = stream.read(16)
    stream.seek(0)
    kind = sniff(head)
    if kind is None:
        raise HeaderError(f"not an image of a format posekit reads ({SUPPORTED})")
    try:
        if kind == "pnm":
            return _pnm(stream)
        # the stored size (the orientation is returned apart, and applied by the reader)
        info = imagesize.get_info(
            stream, exif_rotation=False, dpi=False, colors=False, channels=False
        )
        orientation = info.rotation if 1 <= info.rotation <= 8 else 1
        header = Header(int(info.width), int(info.height), orientation)
        if kind == "tiff":
            stream.seek(0)
            tile = _tiff_tile_pixels(stream)
            return Header(header.width, header.height, orientation, tile)
        return header
    except HeaderError:
        raise
    except (ValueError, struct.error, IndexError, EOFError, OverflowError) as e:
        why = str(e)[:80] or type(e).__name__
        raise HeaderError(f"malformed {kind.upper()} header ({why})") from None


def header_of_bytes(data: bytes) -> Header:
    """`read_header` of encoded bytes in memory (an upload, a file read whole)."""
    return read_header(io.BytesIO(data))


def _pnm(stream: IO[bytes]) -> Header:
    """P1..P6: magic, width, height (and a maximum value), separated by whitespace; a `#`
    comment runs to the next `\n` or `\r` (as OpenCV reads it)."""
    data = stream.read(4096)
    numbers: list[int] = []
    i = 2
    while len(numbers) < 2:
        while i < len(data):  # whitespace and comments
            if data[i] == ord("#"):
                while i < len(data) and data[i] not in b"\n\r":
                    i += 1
            elif data[i] in b" \t\r\n\v\f":
                i += 1
            else:
                break
        start = i
        while i < len(data) and data[i] in b"0123456789":
            i += 1
        if not 0 < i - start <= 9:
            raise HeaderError("malformed PNM header (no width and height)")
        numbers.append(int(data[start:i]))
    return Header(numbers[0], numbers[1])


def _tiff_tile_pixels(stream: IO[bytes]) -> int:
    """The pixels of the first image's tile (0 when it is striped, not tiled)."""
    order = "<" if stream.read(2) == b"II" else ">"
    magic = struct.unpack(order + "H", stream.read(2))[0]
    big = magic == 43
    if big:
        stream.read(4)  # offset size and padding
        offset = struct.unpack(order + "Q", stream.read(8))[0]
    else:
        offset = struct.unpack(order + "I", stream.read(4))[0]
    stream.seek(offset)
    count = struct.unpack(order + ("Q" if big else "H"), stream.read(8 if big else 2))[0]
    if count > MAX_TIFF_ENTRIES:
        raise HeaderError(f"malformed TIFF header ({count} directory entries)")
    entry = 20 if big else 12
    table = stream.read(count * entry)
    if len(table) < count * entry:
        raise HeaderError("malformed TIFF header (directory cut short)")
    values = {}
    for k in range(count):
        e = table[k * entry : (k + 1) * entry]
        tag, kind = struct.unpack(order + "HH", e[:4])
        if tag in (322, 323):  # TileWidth, TileLength: SHORT (3) or LONG (4), one value
            field = e[12:] if big else e[8:]
            fmt, size = ("H", 2) if kind == 3 else ("I", 4)
            values[tag] = struct.unpack(order + fmt, field[:size])[0]
    return int(values.get(322, 0)) * int(values.get(323, 0))
