"""The server's settings, defined once: `posekit serve`'s options derive from these fields."""

from __future__ import annotations

from dataclasses import dataclass

from posekit.utils.bounds import check_ranges, ranged

#: the prediction settings a request may set (form fields and WebSocket settings), by their
#: `PredictConfig` names; ranges and help come from `PredictConfig`
REQUEST_SETTINGS = ("conf", "kpt_conf", "iou", "oks_nms", "imgsz", "max_det", "flip")

#: the environment variable that supplies the token when `--token` is not given
TOKEN_ENV = "POSEKIT_TOKEN"


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one server (the model's own are `PredictConfig`'s, per request)."""

    host: str = "127.0.0.1"  # the address to bind (127.0.0.1: this machine only)
    port: int = ranged(8000, 0, 65535)  # the TCP port (0: any free one)
    device: str = "auto"  # where the network runs: auto, cpu, cuda, cuda:1, mps
    max_batch: int = ranged(16, 1, 4096)  # images per network pass, from all clients together
    # how long the first waiting image waits for others to share its network pass (only while
    # requests arrive closer together than this: a lone client is never held)
    max_wait_ms: float = ranged(5.0, 0, 10_000)
    # require `Authorization: Bearer TOKEN` on every route but /healthz (or set POSEKIT_TOKEN)
    token: str | None = None
    max_upload_mb: float = ranged(20.0, 0.001, 100_000)  # a larger request body is refused (413)
    # images waiting for the network beyond which new requests are refused (503, Retry-After)
    queue_size: int = ranged(256, 1, 1_000_000)
    decode_threads: int = ranged(2, 1, 256)  # threads that decode and encode images
    # an image declaring more pixels is refused before it is decoded (413)
    max_pixels: int = ranged(40_000_000, 1, 10**12)
    max_images: int = ranged(64, 1, 100_000)  # images in one /v1/predict/batch request
    # the largest imgsz a request may ask for (the model's own is always allowed)
    max_imgsz: int = ranged(1280, 32, 8192)
    # boxes given with one image to a top-down model (each is a network crop)
    max_boxes: int = ranged(64, 1, 100_000)
    # seconds a connection may take to send a request's headers, and to send the next part
    # of its body; a slower client is disconnected
    header_timeout: float = ranged(10.0, 0.1, 3600)
    body_timeout: float = ranged(30.0, 0.1, 3600)
    # connections open at once (lowered to the file descriptor limit); more are closed at once
    max_connections: int = ranged(1000, 1, 1_000_000)

    def __post_init__(self) -> None:
        check_ranges(self, "serve")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
