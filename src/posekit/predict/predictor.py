"""The prediction pipeline: frames -> letterbox -> forward -> family decoder -> `Results`.

Each step is a plain function; `Predictor` only chains them, for any registered family (the
network's own `decode` turns its outputs into detections). Reading and letterboxing run in a
background thread (`prefetch`) so that, on video, decoding overlaps with the network.
Validation runs this same pipeline (`posekit.engine.validate`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from posekit.data.transforms import PAD_VALUE, Letterbox
from posekit.models.base import KeypointModel, input_pixels
from posekit.models.fuse import fused_for_inference
from posekit.ops.instances import INSTANCE_FIELDS, Instances
from posekit.predict.backends import Backend, TorchBackend
from posekit.predict.results import Boxes, Keypoints, Results, _slot_names
from posekit.predict.sources import Frame, iter_frames, prefetch
from posekit.predict.topdown import Detector, predict_boxes, whole_image_boxes
from posekit.schema import KeypointSchema
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError

#: Inputs are letterboxed to a multiple of this (every family's `input_stride` divides it).
MAX_STRIDE = 32

ErrorHandler = Callable[[str, str], None]  # (path, message)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictConfig:
    """Settings of one prediction run (documented defaults, the same in Python and the CLI)."""

    conf: float = ranged(0.25, 0, 1)  # minimum detection confidence
    # keypoints below this are kept, but not `visible` (drawn hidden)
    kpt_conf: float = ranged(0.5, 0, 1)
    iou: float = ranged(0.65, 0, 1)  # NMS overlap (class-aware)
    # drop a detection whose keypoints match a better one's (OKS; 1: off)
    oks_nms: float = ranged(0.9, 0, 1)
    imgsz: int = ranged(640, 32, 8192)  # longest side of the network input (a multiple of 32)
    max_det: int = ranged(300, 1, 100_000)  # detections kept per image (boxes of a detector too)
    batch: int = ranged(1, 1, 4096)  # images per network pass
    # top-down models: crops per network pass (a detector's boxes are run this many at a time)
    crop_batch: int = ranged(64, 1, 4096)
    rect: bool = True  # pad to a multiple of 32 instead of a square (less work, same scale)
    vid_stride: int = ranged(1, 1, 100_000)  # predict every n-th video frame
    flip: bool = True  # top-down models: average with the mirrored crop (if the model says so)
    half: bool = False  # fp16 network on CUDA (`Model.predict` turns it on there by default)

    def __post_init__(self) -> None:
        check_ranges(self, "predict")
        if self.imgsz % MAX_STRIDE:
            raise UserError(f"imgsz must be a positive multiple of {MAX_STRIDE}, got {self.imgsz}")


@dataclass
class Prepared:
    """A batch ready for the network: frames, their input tensor and letterbox mappings."""

    frames: list[Frame]
    tensor: torch.Tensor | None  # (B, 3, H, W) uint8 RGB
    letterboxes: list[Letterbox]
    failed: list[Frame] = field(default_factory=list)
    ms: float = 0.0


def letterboxes_for(images: list[np.ndarray], imgsz: int, rect: bool) -> list[Letterbox]:
    """The letterbox of each image of a batch. With `rect`, the batch is padded to a multiple
    of 32 when every image gets the same shape that way (always true for one image or a
    video), else to a square."""
    boxes = [
        Letterbox.fit(im.shape[1], im.shape[0], imgsz, MAX_STRIDE if rect else None)
        for im in images
    ]
    if len({lb.shape for lb in boxes}) > 1:
        boxes = [Letterbox.fit(im.shape[1], im.shape[0], imgsz) for im in images]
    return boxes


def _best_detections(
    boxes: Any, scores: Any, classes: Any, max_det: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A detector's answer for one image as arrays: its boxes of this model's classes (class
    index < `num_classes`: a COCO detector's class 0, person, for a one-class pose model), the
    `max_det` best-scoring kept (in score order); boxes, scores and classes of different
    lengths are an error."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    k = np.asarray(classes, dtype=np.int64).reshape(-1)
    if not len(b) == len(s) == len(k):
        raise ValueError(f"the detector returned {len(b)} boxes, {len(s)} scores and "
                         f"{len(k)} classes for one image")  # fmt: skip
    own = k < num_classes
    b, s, k = b[own], s[own], k[own]
    if len(b) > max_det:
        keep = np.argsort(-s, kind="stable")[:max_det]
        b, s, k = b[keep], s[keep], k[keep]
    return b, s, k


def letterbox_batch(
    images: list[np.ndarray], imgsz: int, rect: bool, shrink: str = "area"
) -> tuple[torch.Tensor, list[Letterbox]]:
    """(B, 3, H, W) uint8 RGB tensor of letterboxed images (OpenCV, on the CPU) and their
    mappings (see `letterboxes_for`); `shrink` is `Letterbox.apply`'s."""
    boxes = letterboxes_for(images, imgsz, rect)
    arr = np.stack([lb.apply(im, shrink) for lb, im in zip(boxes, images, strict=True)])
    tensor = torch.from_numpy(np.ascontiguousarray(arr[..., ::-1].transpose(0, 3, 1, 2)))
    return tensor, boxes


def letterbox_on_device(
    images: list[np.ndarray], boxes: list[Letterbox], device: torch.device
) -> torch.Tensor:
    """(B, 3, H, W) float RGB in 0..1 of letterboxed images, resized on `device` (the GPU
    path: only the uint8 frames cross the bus). Same geometry as `letterbox_batch`; bilinear
    resampling, antialiased when shrinking (OpenCV's area filter on the CPU path), so pixel
    values differ from it by rounding. Images of one size (a video) are resized together."""
    h, w = boxes[0].shape
    out = torch.full((len(images), 3, h, w), PAD_VALUE / 255, device=device)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(im.shape, []).append(i)
    for idx in groups.values():  # one group per distinct image size
        lb = boxes[idx[0]]
        raw = torch.from_numpy(np.stack([images[i] for i in idx])).to(device, non_blocking=True)
        x = raw.permute(0, 3, 1, 2).flip(1).float().div_(255)  # BGR -> RGB
        if (lb.new_h, lb.new_w) != tuple(x.shape[-2:]):
            x = torch.nn.functional.interpolate(x, size=(lb.new_h, lb.new_w), mode="bilinear",
                                                align_corners=False,
                                                antialias=lb.scale_x < 1)  # fmt: skip
        rows = torch.as_tensor(idx, device=device)
        out[rows, :, lb.pad_y : lb.pad_y + lb.new_h, lb.pad_x : lb.pad_x + lb.new_w] = x
    return out


def prepare(
    frames: list[Frame], imgsz: int, rect: bool, on_device: bool = False, shrink: str = "area"
) -> Prepared:
    """A batch ready for the network: letterboxed on the CPU here (run on the prefetch
    thread), or, `on_device`, only the geometry (the pixels are resized on the device)."""
    t0 = time.perf_counter()
    good = [f for f in frames if f.image is not None]
    failed = [f for f in frames if f.image is None]
    if not good:
        return Prepared([], None, [], failed)
    images: list[np.ndarray] = [f.image for f in good]  # type: ignore[misc]
    if on_device:
        return Prepared(good, None, letterboxes_for(images, imgsz, rect), failed)
    tensor, boxes = letterbox_batch(images, imgsz, rect, shrink)
    return Prepared(good, tensor, boxes, failed, (time.perf_counter() - t0) * 1000)


def frame_results(
    frame: Frame,
    found: Instances,
    *,
    schemas: list[KeypointSchema],
    names: dict[int, str],
    kpt_conf: float,
    category_ids: list[int] | None,
    speed: dict[str, float],
) -> Results:
    """The one place a frame's `Results` is built, from its detections in image pixels
    (NumPy `Instances`, keypoints x, y, confidence), whatever the input mode that found
    them."""
    h, w = frame.image.shape[:2]  # type: ignore[union-attr]
    kp = found.keypoints
    return Results(
        Boxes(found.boxes, found.scores, found.classes, (h, w)),
        Keypoints(kp, (h, w), _slot_names(schemas, kp.shape[1]), kpt_conf),
        names,
        schemas,
        frame.path,
        frame.image,
        speed=speed,
        frame=frame.index if frame.video else None,
        timestamp=frame.timestamp,
        category_ids=category_ids,
    )


def letterboxed_to_image(det: Instances, lb: Letterbox, shape: tuple[int, ...]) -> Instances:
    """One image's detections (network input pixels) mapped back to the original image
    through the exact inverse of its letterbox, as NumPy arrays."""
    h, w = shape[:2]
    boxes = lb.to_original(det.boxes.cpu().double().numpy().reshape(-1, 2, 2)).reshape(-1, 4)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    kp = det.keypoints.cpu().double().numpy()
    kp[..., :2] = lb.to_original(kp[..., :2])
    return Instances(
        boxes=boxes,
        keypoints=kp,
        classes=det.classes.cpu().numpy(),
        scores=det.scores.cpu().numpy(),
    )


def fitted_to(config: PredictConfig, backend: Backend, net: KeypointModel) -> PredictConfig:
    """`config` for a graph with a fixed input size (a `--static` export): whole images are
    letterboxed to that square; another `imgsz` is explained, not a runtime stack."""
    fixed = backend.fixed_shape
    if fixed is None or not net.input_mode.dynamic_size:
        return config
    h, w = fixed
    if h != w or config.imgsz != h:
        raise UserError(f"this model takes {w}x{h} inputs only (exported with --static); "
                         f"predict with imgsz={h}, or export again without --static")  # fmt: skip
    return replace(config, rect=False)


def detections_to_cpu(dets: list[Instances]) -> list[Instances]:
    """A batch's detections on the CPU in one transfer per field (not one per image)."""
    if not dets or dets[0].boxes.device.type == "cpu":
        return dets
    counts = [len(d) for d in dets]
    parts = [torch.cat([getattr(d, f) for d in dets]).cpu().split(counts)
             for f in INSTANCE_FIELDS]  # fmt: skip
    return [Instances(*p) for p in zip(*parts, strict=True)]


class Predictor:
    """Runs a network of any registered family over any source.

    The family's input mode (`posekit.models.input_mode`) picks the pipeline once, here:
    whole letterboxed images, or crops around boxes (given, detected or the whole frame).
    Both end in image-pixel detections, made into `Results` by `frame_results`.

    Example:
        >>> p = Predictor(net, PredictConfig(conf=0.3, batch=8))       # doctest: +SKIP
        >>> for r in p.stream("video.mp4"): print(r.frame, len(r))     # doctest: +SKIP
    """

    def __init__(
        self,
        net: KeypointModel,
        config: PredictConfig | None = None,
        *,
        device: torch.device | None = None,
        category_ids: list[int] | None = None,
        fuse: bool = True,
        detector: Detector | None = None,
        backend: Backend | None = None,
    ) -> None:
        """`net` supplies the decoder and settings, and runs the network unless `backend` is
        given (an `OnnxBackend`, whose `net` may then be weightless)."""
        config = config or PredictConfig(imgsz=net.config.imgsz)
        self.device = device or torch.device("cpu")
        if config.half and self.device.type != "cuda" and backend is None:
            raise UserError("half precision is for CUDA devices (fp16 is slow on CPUs)")
        self.mode = net.input_mode
        if detector is not None and not self.mode.takes_boxes:
            raise UserError(
                "this model reads each whole frame as one subject (single-subject mode): it "
                "takes no detector" if net.single_subject else
                "this model finds instances itself: it takes no detector"
            )  # fmt: skip
        if backend is None:
            # BatchNorm folded into the convolutions (on a copy: `net` stays trainable),
            # unless the caller passes an already folded network; channels-last inside
            run = fused_for_inference(net) if fuse else net.eval()
            backend = TorchBackend(run, self.device, half=config.half)
            net = backend.net
        self.net, self.backend = net, backend
        self.config = fitted_to(config, backend, net)
        #: resize on the device (CUDA): only uint8 frames cross the bus (set False to use
        #: OpenCV on the CPU there too)
        self.letterbox_on_device = self.device.type == "cuda" and isinstance(backend, TorchBackend)
        self.category_ids = category_ids
        self.names = dict(enumerate(net.names))
        self.detector = detector
        self._pipeline = self._crop_pipeline if self.mode.per_instance else self._image_pipeline

    def stream(
        self,
        source: Any,
        *,
        boxes: Iterable[np.ndarray] | None = None,
        on_error: ErrorHandler | None = None,
    ) -> Iterator[Results]:
        """One `Results` per frame, lazily. An unreadable image raises `SourceError`, or is
        passed to `on_error(path, message)` and skipped when a handler is given. `boxes`
        (models that take boxes): one xyxy array, or (boxes, scores, classes), per frame."""
        frames = iter_frames(source, vid_stride=self.config.vid_stride)
        return self.stream_frames(frames, boxes=boxes, on_error=on_error)

    def stream_frames(
        self,
        frames: Iterator[Frame],
        *,
        boxes: Iterable[np.ndarray] | None = None,
        on_error: ErrorHandler | None = None,
    ) -> Iterator[Results]:
        """`stream` over frames the caller reads itself (validation reads dataset images
        with their recorded sizes)."""
        if boxes is not None and not self.mode.takes_boxes:
            raise UserError(f"boxes= is for models that read crops around boxes; this model "
                             f"reads {self.mode.name} inputs")  # fmt: skip
        for found, speed in self._pipeline(frames, boxes, self._skipper(on_error)):
            for frame, instances in found:
                yield frame_results(frame, instances, schemas=self.net.schemas,
                                    names=self.names, kpt_conf=self.config.kpt_conf,
                                    category_ids=self.category_ids, speed=speed)  # fmt: skip

    @staticmethod
    def _skipper(on_error: ErrorHandler | None) -> Callable[[Frame], None]:
        """What to do with an unreadable frame: raise, or tell `on_error` and go on."""
        from posekit.predict.sources import SourceError

        def skip(f: Frame) -> None:
            if on_error is None:
                raise SourceError(f"{f.path}: {f.error}")
            on_error(f.path, f.error or "unreadable")

        return skip

    # ------------------------------------------------------------------ whole images
    def _image_pipeline(
        self, frames: Iterator[Frame], boxes: Any, skip: Callable[[Frame], None]
    ) -> Iterator[tuple[list[tuple[Frame, Instances]], dict[str, float]]]:
        """Batches letterboxed on the prefetch thread, the network, the family's decoder and
        the letterboxes' inverse."""
        from posekit.predict.sources import batched

        c = self.config
        on_device = self.letterbox_on_device
        shrink = self.net.letterbox_interpolation
        batches = (prepare(b, c.imgsz, c.rect, on_device, shrink) for b in batched(frames, c.batch))
        for p in prefetch(batches, depth=2):
            for f in p.failed:
                skip(f)
            if p.frames:
                yield self._run_letterboxed(p)

    def _run_letterboxed(
        self, p: Prepared
    ) -> tuple[list[tuple[Frame, Instances]], dict[str, float]]:
        n = len(p.frames)
        cuda = self.device.type == "cuda"
        t0 = time.perf_counter()
        with torch.inference_mode():
            if p.tensor is None:  # letterboxed on the device
                images: list[np.ndarray] = [f.image for f in p.frames]  # type: ignore[misc]
                x = letterbox_on_device(images, p.letterboxes, self.device)
                if cuda:
                    torch.cuda.synchronize(self.device)
                p.ms = (time.perf_counter() - t0) * 1000
                t0 = time.perf_counter()
            else:
                # converted here, not on the prefetch thread: a torch op there competes with
                # the network for torch's thread pool (measured: 26 instead of 40 frames/s on
                # 2 cores)
                x = p.tensor.to(self.device).float().div_(255)
            out = self.backend(x)
            if cuda:
                torch.cuda.synchronize(self.device)
            t1 = time.perf_counter()
            c = self.config
            dets = self.net.decode(out, conf=c.conf, iou=c.iou, max_det=c.max_det,
                                   oks_nms=c.oks_nms)  # fmt: skip
            dets = detections_to_cpu(dets)
        found = [(f, letterboxed_to_image(d, lb, f.image.shape))  # type: ignore[union-attr]
                 for d, lb, f in zip(dets, p.letterboxes, p.frames, strict=True)]  # fmt: skip
        speed = {
            "preprocess": p.ms / n,
            "inference": (t1 - t0) * 1000 / n,
            "postprocess": (time.perf_counter() - t1) * 1000 / n,
        }
        return found, speed

    # ------------------------------------------------------------------ crops
    def _crop_pipeline(
        self,
        frames: Iterator[Frame],
        boxes: Iterable[np.ndarray] | None,
        skip: Callable[[Frame], None],
    ) -> Iterator[tuple[list[tuple[Frame, Instances]], dict[str, float]]]:
        """Boxes per frame (given, detected or whole), crops of a whole batch at once, the
        network (with the flip test), decoding, and the crops' exact inverse."""
        from posekit.predict.sources import batched

        given = iter(boxes) if boxes is not None else None
        if given is None and self.detector is None and self.mode.whole_image_by_default:
            log.info("no boxes and no detector: each whole image is one instance")
        for batch in prefetch(batched(frames, self.config.batch), depth=2):
            good, per_frame = [], []
            for f in batch:
                b = next(given, None) if given is not None else None
                if f.image is None:
                    skip(f)
                    continue
                if given is not None and b is None:
                    raise UserError("boxes= has fewer entries than there are images")
                good.append(f)
                if b is not None:  # the max_det best, as a detector's
                    n = len(self.net.schemas)
                    per_frame.append(_best_detections(*_given_boxes(b), self.config.max_det, n))
            if not good:
                continue
            if given is None:
                images: list[np.ndarray] = [f.image for f in good]  # type: ignore[misc]
                found = (self.detector(images) if self.detector is not None
                         else [(b, np.ones(1), np.zeros(1, np.int64))
                               for b in whole_image_boxes(images)])  # fmt: skip
                n = len(self.net.schemas)
                per_frame = [_best_detections(b, s, k, self.config.max_det, n) for b, s, k in found]
            yield self._run_crops(good, per_frame)

    def _run_crops(
        self, frames: list[Frame], per_frame: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    ) -> tuple[list[tuple[Frame, Instances]], dict[str, float]]:
        c, cfg = self.config, self.net.config
        n_classes = len(self.net.schemas)
        boxes = [b for b, _, _ in per_frame]
        # a detector's class indices are this model's classes when it has that many
        classes = [np.where(k < n_classes, k, 0) for _, _, k in per_frame]
        cls = np.concatenate(classes) if classes else np.zeros(0, np.int64)
        with torch.inference_mode():
            kp, kconf, prep, infer = predict_boxes(
                self.net, [f.image for f in frames], boxes, cls, chunk=crop_chunk(c, self.net),
                device=self.device, flip=c.flip and cfg.flip_test, forward=self.backend,
            )  # fmt: skip
        data = np.concatenate([kp, kconf[..., None]], -1)
        # instance confidence: the box's score times the mean keypoint confidence
        conf = kconf.mean(-1) if len(kconf) else np.zeros(0)
        found, start = [], 0
        for f, (b, s, _), k in zip(frames, per_frame, classes, strict=True):
            end = start + len(b)
            if not self.mode.takes_boxes:  # a whole frame read as one subject: box the subject
                b = keypoint_extent(data[start:end], c.kpt_conf, b)
            inst = Instances(boxes=b, keypoints=data[start:end], classes=k,
                             scores=s * conf[start:end])  # fmt: skip
            found.append((f, inst))
            start = end
        n = max(1, len(frames))
        return found, {"preprocess": prep * 1000 / n, "inference": infer * 1000 / n,
                       "postprocess": 0.0}  # fmt: skip

    def __call__(self, source: Any, *, on_error: ErrorHandler | None = None) -> list[Results]:
        return list(self.stream(source, on_error=on_error))


#: Crop pixels in one network pass (64 crops of 256 x 192): larger crops run fewer at once.
CROP_PIXELS_PER_PASS = 64 * 256 * 192


def crop_chunk(config: PredictConfig, net: KeypointModel) -> int:
    """Crops per network pass: `crop_batch`, fewer for crops larger than 256 x 192, so that a
    pass holds about as much memory whatever the crop size."""
    return max(1, min(config.crop_batch, CROP_PIXELS_PER_PASS // input_pixels(net)))


def keypoint_extent(kp: np.ndarray, kpt_conf: float, fallback: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy boxes around each instance's keypoints of confidence >= `kpt_conf` (all of
    them where none is): the box of a subject found in a whole frame, which the tracker's IoU
    and the fall rule's body height read (the frame itself would say nothing); `fallback`
    where an instance has no keypoints."""
    if not len(kp) or not kp.shape[1]:
        return fallback
    sure = kp[..., 2] >= kpt_conf
    sure |= ~sure.any(1, keepdims=True)
    xy = kp[..., :2]
    lo = np.where(sure[..., None], xy, np.inf).min(1)
    hi = np.where(sure[..., None], xy, -np.inf).max(1)
    return np.concatenate([lo, hi], 1).astype(fallback.dtype)


def _given_boxes(b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A caller's boxes for one frame: an xyxy array, or (boxes, scores, classes); scores
    default to 1 and classes to 0."""
    bb, ss, kk = b if isinstance(b, tuple) else (b, None, None)
    bb = np.asarray(bb, dtype=np.float64).reshape(-1, 4)
    scores = np.ones(len(bb)) if ss is None else np.asarray(ss, float)
    classes = np.zeros(len(bb), dtype=np.int64) if kk is None else np.asarray(kk, dtype=np.int64)
    return bb, scores, classes
