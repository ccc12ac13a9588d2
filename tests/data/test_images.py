"""The one image reader: EXIF orientation decided per image, decompression bombs refused."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from posekit.data import ImageReadError, check_dataset, load_dataset, read_image
from posekit.data.images import MAX_PIXELS_ENV, decode_image, image_size

PIL = pytest.importorskip("PIL.Image")

# stored 64 wide x 48 high; orientation 6 asks viewers to turn it 90 degrees clockwise (48x64)
STORED_W, STORED_H = 64, 48


def orientation6_jpeg(path: Path) -> np.ndarray:
    """A JPEG whose stored pixels have a bright block top-left and EXIF orientation 6."""
    rgb = np.zeros((STORED_H, STORED_W, 3), np.uint8)
    rgb[:16, :24] = 255  # top-left block of the stored pixels
    exif = PIL.Exif()
    exif[0x0112] = 6
    PIL.fromarray(rgb).save(path, quality=95, exif=exif.tobytes())
    return rgb


def bomb_png(path: Path, width: int = 30000, height: int = 30000) -> None:
    """A tiny PNG whose header declares `width` x `height` pixels (no real pixel data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    idat = zlib.compress(b"\x00" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))  # fmt: skip


def test_exif_orientation_applied_without_a_recorded_size(tmp_path: Path) -> None:
    f = tmp_path / "o6.jpg"
    orientation6_jpeg(f)
    img = read_image(f)
    assert img.shape == (STORED_W, STORED_H, 3)  # turned: 64 high, 48 wide
    # turning clockwise puts the stored top-left block at the top-right
    assert img[:20, -12:].mean() > 200 and img[:20, :12].mean() < 50
    assert image_size(f) == (STORED_H, STORED_W)


@pytest.mark.parametrize(
    ("recorded", "shape"),
    [((STORED_H, STORED_W), (STORED_W, STORED_H, 3)), ((STORED_W, STORED_H), (48, 64, 3))],
    ids=["annotated-rotated", "annotated-as-stored"],
)
def test_exif_orientation_follows_the_recorded_size(
    tmp_path: Path, recorded: tuple[int, int], shape: tuple[int, int, int]
) -> None:
    """check, training samples and previews read the orientation whose size the dataset
    records, and check says which way it read each tagged image."""
    from posekit.models.samples import AugmentConfig, KeypointSamples
    from posekit.viz.preview import draw_ground_truth

    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    orientation6_jpeg(root / "images" / "o6.jpg")
    w, h = recorded
    coco = {
        "images": [{"id": 1, "file_name": "o6.jpg", "width": w, "height": h}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                         "keypoints": [5, 5, 2], "bbox": [1, 1, 10, 10], "area": 100}],
        "categories": [{"id": 1, "name": "dot", "keypoints": ["dot"]}],
    }  # fmt: skip
    (root / "annotations").mkdir()
    (root / "annotations" / "train.json").write_text(json.dumps(coco))

    (result,) = check_dataset(root)
    assert result.problems == []
    (note,) = result.notes
    assert "orientation 6" in note
    rotated = recorded == (STORED_H, STORED_W)
    assert ("as EXIF asks" in note) == rotated and ("ignoring EXIF" in note) == (not rotated)

    ds = load_dataset(root)
    samples = KeypointSamples(ds, 64, AugmentConfig.off(), rect=False)
    assert samples.load(0).shape == shape
    assert draw_ground_truth(ds, 1).shape == shape


def test_size_mismatch_in_either_orientation_is_a_problem(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    orientation6_jpeg(root / "images" / "o6.jpg")
    coco = {
        "images": [{"id": 1, "file_name": "o6.jpg", "width": 50, "height": 50}],
        "annotations": [],
        "categories": [{"id": 1, "name": "dot", "keypoints": ["dot"]}],
    }
    (root / "annotations").mkdir()
    (root / "annotations" / "train.json").write_text(json.dumps(coco))
    (result,) = check_dataset(root)
    assert [p.code for p in result.problems] == ["image-size"]


def test_prediction_applies_the_exif_rotation(tmp_path: Path) -> None:
    from posekit.predict.sources import read_frame

    f = tmp_path / "o6.jpg"
    orientation6_jpeg(f)
    assert read_frame(str(f)).image.shape == (STORED_W, STORED_H, 3)


def test_decompression_bomb_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "bomb.png"
    bomb_png(f)
    assert f.stat().st_size < 2000

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(cv2, "imdecode", no_decode)
    with pytest.raises(ImageReadError, match=r"30000x30000 pixels is over the limit"):
        read_image(f)
    # the limit is configurable: raised, the (fake) pixels reach the decoder
    monkeypatch.setenv(MAX_PIXELS_ENV, str(30000 * 30000))
    with pytest.raises(AssertionError, match="decoded"):
        read_image(f)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ImageReadError, match="not a whole number"):
        read_image(f)


def test_bomb_is_reported_by_check_and_predict(tmp_path: Path) -> None:
    from posekit.predict.sources import read_frame

    f = tmp_path / "bomb.png"
    bomb_png(f)
    frame = read_frame(str(f))
    assert frame.image is None and "over the limit" in frame.error


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "empty file"), (b"not an image at all", "not an image"), (None, "file not found")],
)
def test_unreadable_files_raise_one_clear_error(
    tmp_path: Path, content: bytes | None, match: str
) -> None:
    f = tmp_path / "x.png"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(ImageReadError, match=match):
        read_image(f)


def _tiff(width: int, height: int, tile: tuple[int, int] | None) -> bytes:
    """A little-endian TIFF header and first directory (no pixel data: it is refused or read
    from the header alone)."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 1)]
    if tile is not None:
        tags += [(322, 4, tile[0]), (323, 4, tile[1])]
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:  # one value each, stored in the entry (padded to 4 bytes)
        stored = struct.pack("<I", value) if kind == 4 else struct.pack("<HH", value, 0)
        ifd += struct.pack("<HHI", tag, kind, 1) + stored
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 4


MALFORMED = {
    "a.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 30,
    "b.jpg": b"\xff\xd8" + b"\0" * 70,
    "c.tif": b"II*\x00" + struct.pack("<I", 8) + b"\0" * 60,
    "d.webp": b"RIFF" + struct.pack("<I", 100) + b"WEBPXXXX" + b"\0" * 60,
    "e.bmp": b"BM" + b"\0" * 10,
    "h.ppm": b"P6 x" + b"\0" * 60,
}
FOREIGN = {
    "f.jp2": b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\0" * 60,
    "g.svg": b"<svg></svg>" + b" " * 60,
    "i.gif": b"GIF89a" + struct.pack("<HH", 16, 16) + b"\0" * 60,
}


@pytest.mark.parametrize("name", sorted(MALFORMED) + sorted(FOREIGN))
def test_a_malformed_or_foreign_header_is_an_image_error(tmp_path: Path, name: str) -> None:
    data = {**MALFORMED, **FOREIGN}[name]
    says = "not an image of a format posekit reads" if name in FOREIGN else "malformed"
    with pytest.raises(ImageReadError, match=says):
        decode_image(data, name)
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageReadError, match=says):
        image_size(path)


def test_the_cap_holds_for_what_the_decoder_reads(tmp_path: Path) -> None:
    """A PNM comment ended by '\\r' (OpenCV ends it there: 12000 x 12000, not 16 x 16), and a
    16 x 16 TIFF stored in one 16384 x 16368 tile (inflated whole before cropping)."""
    pnm = b"P4\n#\r12000 12000\n16 16\n" + b"\0" * 64
    with pytest.raises(ImageReadError, match="12000x12000 pixels is over the limit of 40,000,000"):
        decode_image(pnm, "x.pbm", max_pixels=40_000_000)
    tiled = _tiff(16, 16, (16384, 16368))
    with pytest.raises(ImageReadError, match="268,173,312 pixels at once"):
        decode_image(tiled, "x.tif")
    (tmp_path / "x.tif").write_bytes(tiled)
    with pytest.raises(ImageReadError, match="at once"):
        read_image(tmp_path / "x.tif")


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp", ".tif", ".ppm", ".pgm", ".pbm"])
def test_every_supported_format_decodes_to_its_header_size(ext: str) -> None:
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(
        ext, image if ext in (".jpg", ".png", ".bmp", ".webp", ".tif", ".ppm") else image[..., 0]
    )
    assert ok
    decoded = decode_image(buf.tobytes(), f"x{ext}")
    assert decoded.image.shape == (20, 30, 3)
    assert (decoded.header.width, decoded.header.height) == (30, 20)
