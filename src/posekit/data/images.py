"""The one image reader: every command that decodes an image file goes through `read_image`.

Two rules live here so that `data check`, training, validation, previews and prediction cannot
drift apart:

- **Decompression bombs are refused before decoding.** The size is read from the file's header
  and an image of more than `max_image_pixels()` pixels is refused (a 1 MB PNG can declare
  30000 x 30000 pixels, 2.7 GB once decoded). The default, 178,956,970 pixels (Pillow's limit),
  is far above any camera or video frame; the environment variable `POSEKIT_MAX_IMAGE_PIXELS`
  or the `max_pixels` argument raise it.
- **EXIF orientation is decided per image.** A JPEG may store its pixels in one order and ask
  viewers to rotate them. When a dataset records the image size (COCO `width` / `height`), the
  orientation whose size matches it is used, since annotation tools differ (browsers and most
  trainers apply the rotation, some converters do not). Without a recorded size the rotation is
  applied, as OpenCV, Ultralytics and Detectron2 do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posekit.data import image_headers
from posekit.utils.errors import UserError

#: Default cap on decoded pixels (Pillow's decompression-bomb limit: about 179 megapixels).
DEFAULT_MAX_PIXELS = 178_956_970
#: Environment variable that overrides the cap (a positive integer).
MAX_PIXELS_ENV = "POSEKIT_MAX_IMAGE_PIXELS"
#: EXIF orientations (5-8) that swap width and height.
_TRANSPOSING = frozenset({5, 6, 7, 8})


class ImageReadError(UserError):
    """An image file that cannot be used; `code` says why, as `data check` reports it:
    "image-missing", "image-unreadable", "image-decode" (empty, not an image, corrupt) or
    "image-too-large" (over the pixel cap)."""

    def __init__(self, message: str, code: str = "image-decode") -> None:
        super().__init__(message)
        self.code = code


def max_image_pixels() -> int:
    """The pixel cap in force: `POSEKIT_MAX_IMAGE_PIXELS` if set, else `DEFAULT_MAX_PIXELS`."""
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        raise ImageReadError(f"{MAX_PIXELS_ENV}={raw!r} is not a whole number", "config") from None
    if value <= 0:
        raise ImageReadError(f"{MAX_PIXELS_ENV}={raw!r} must be positive", "config")
    return value


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says: the stored size, the EXIF orientation (1 when absent), and
    the pixels its decoder allocates at once (0: width x height)."""

    width: int
    height: int
    orientation: int = 1
    decoded_pixels: int = 0

    @property
    def oriented_size(self) -> tuple[int, int]:
        """(width, height) once the EXIF orientation is applied."""
        if self.orientation in _TRANSPOSING:
            return self.height, self.width
        return self.width, self.height


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image and how it was read: `exif_applied` tells whether the EXIF orientation
    (`header.orientation`, 1 = none) was applied to the stored pixels."""

    image: np.ndarray  # (H, W, 3) uint8 BGR
    header: ImageHeader
    exif_applied: bool


def read_header(data: bytes | np.ndarray) -> ImageHeader | None:
    """The header of encoded image bytes, or None when it is not an image posekit reads
    (`posekit.data.image_headers`: malformed, cut short, or another format)."""
    buf = data.tobytes() if isinstance(data, np.ndarray) else data
    try:
        return _header_of(image_headers.header_of_bytes(buf))
    except image_headers.HeaderError:
        return None


def _header_of(h: image_headers.Header) -> ImageHeader:
    return ImageHeader(h.width, h.height, h.orientation, h.decoded_pixels)


def file_header(path: str | Path) -> ImageHeader:
    """The header of an image file, reading only its first bytes; raises `ImageReadError`."""
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise ImageReadError(f"{path}: not a file", "image-unreadable")
        raise ImageReadError(f"{path}: file not found", "image-missing")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file")
    try:
        with path.open("rb") as f:
            return _header_of(image_headers.read_header(f))
    except OSError as e:
        msg = f"{path}: cannot read ({e.strerror or e})"
        raise ImageReadError(msg, "image-unreadable") from None
    except image_headers.HeaderError as e:
        raise ImageReadError(f"{path}: {e}") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file as `read_image` without a recorded size reads it (EXIF
    orientation applied), from the header alone (what readers of formats that do not record
    sizes, YOLO and DeepLabCut, use); raises `ImageReadError`."""
    return file_header(path).oriented_size


def apply_exif(header: ImageHeader, size: tuple[int, int] | None) -> bool:
    """Whether to apply the EXIF orientation: to match a recorded (width, height) when only
    one reading does, otherwise yes (OpenCV's, Ultralytics' and Detectron2's convention)."""
    if header.orientation == 1 or size is None:
        return True
    size = (int(size[0]), int(size[1]))
    return not (size == (header.width, header.height) and size != header.oriented_size)


def decode_image(
    data: bytes | np.ndarray,
    name: str,
    *,
    size: tuple[int, int] | None = None,
    max_pixels: int | None = None,
) -> DecodedImage:
    """Decode encoded image bytes (see `read_image`); `name` is used in error messages."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    header = require_header(buf, name)
    check_pixels(header.width, header.height, name, max_pixels, header.decoded_pixels)
    exif = apply_exif(header, size)
    flags = cv2.IMREAD_COLOR if exif else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(buf, flags)
    if image is None:
        raise ImageReadError(f"{name}: cannot be decoded (corrupt or not an image)")
    return DecodedImage(image, header, exif and header.orientation != 1)


def check_pixels(
    width: int, height: int, name: str, max_pixels: int | None = None, decoded: int = 0
) -> None:
    """`ImageReadError` ("image-too-large") when a declared width x height, or the `decoded`
    pixels the decoder allocates at once (a TIFF tile), is over the pixel cap (`max_pixels`,
    default `max_image_pixels()`): called before anything is decoded."""
    cap = max_pixels if max_pixels is not None else max_image_pixels()
    if width * height > cap:
        raise ImageReadError(
            f"{name}: {width}x{height} pixels is over the limit of {cap:,} "
            f"(set {MAX_PIXELS_ENV} to read larger images)",
            "image-too-large",
        )
    if decoded > cap:
        raise ImageReadError(
            f"{name}: decoding it takes {decoded:,} pixels at once (a {width}x{height} image "
            f"stored in larger tiles), over the limit of {cap:,}",
            "image-too-large",
        )


def read_image(
    path: str | Path, *, size: tuple[int, int] | None = None, max_pixels: int | None = None
) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 BGR pixels.

    Args:
        path: the image file.
        size: the (width, height) a dataset records for it, if any: picks the EXIF reading
            that matches it (see the module docstring).
        max_pixels: refuse images with more pixels (default: `max_image_pixels()`).

    Raises:
        ImageReadError: missing, empty, unreadable, undecodable, or over the pixel cap.

    Example:
        >>> img = read_image("data/people/images/000001.jpg", size=(640, 480))  # doctest: +SKIP
    """
    path = Path(path)
    return decode_image(read_bytes(path), str(path), size=size, max_pixels=max_pixels).image


def read_bytes(path: Path) -> np.ndarray:
    """The bytes of a file as a uint8 array; `ImageReadError` when it cannot be read."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found", "image-missing") from None
    except (IsADirectoryError, PermissionError, OSError) as e:
        raise ImageReadError(
            f"{path}: cannot read ({e.strerror or e})", "image-unreadable"
        ) from None
    return data


def require_header(buf: np.ndarray, name: str) -> ImageHeader:
    """The header of encoded bytes; `ImageReadError` for an empty or unknown file."""
    if buf.size == 0:
        raise ImageReadError(f"{name}: empty file")
    try:
        return _header_of(image_headers.header_of_bytes(buf.tobytes()))
    except image_headers.HeaderError as e:
        raise ImageReadError(f"{name}: {e}") from None
