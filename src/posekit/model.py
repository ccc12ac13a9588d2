"""`posekit.Model`: one object to create, train, evaluate and run a keypoint model."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from posekit.data.dataset import KeypointDataset
from posekit.data.formats import validation_split
from posekit.data.sequences import PoseSequences, check_schema_matches, load_sequence_splits
from posekit.engine.config import TrainConfig
from posekit.eval import EvalConfig, KeypointMetrics
from posekit.eval.pose3d import LiftMetrics
from posekit.models import KeypointModel, create, list_models, summarize_model
from posekit.models.fuse import fused_for_inference
from posekit.models.samples import AugmentConfig
from posekit.models.summary import ModelSummary
from posekit.predict.backends import Backend
from posekit.predict.predictor import PredictConfig
from posekit.predict.results import Results
from posekit.schema import KeypointSchema, get_schema
from posekit.track import OneEuroConfig, Tracker, TrackerConfig
from posekit.utils.errors import UserError
from posekit.utils.settings import check_setting_names, config_from_settings

if TYPE_CHECKING:
    from posekit.export import ExportResult

log = logging.getLogger(__name__)


def as_detector(detector: Any) -> Any:
    """A detector callable (`images -> [(boxes, scores, classes), ...]`) from a checkpoint
    path, a `Model`, or a callable (returned as it is); None stays None."""
    if detector is None or (callable(detector) and not isinstance(detector, Model)):
        return detector
    det = detector if isinstance(detector, Model) else Model(detector)
    if not det.net.input_mode.finds_instances:
        raise UserError("a detector must find instances itself (e.g. an rtpose checkpoint)")

    def detect(images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return [(r.boxes.xyxy, r.boxes.conf, r.boxes.cls) for r in det.predict(images)]

    return detect


def _is_json(detector: Any) -> bool:
    return isinstance(detector, str | Path) and str(detector).endswith(".json")


def boxes_for_validation(detector: Any, ds: Any) -> tuple[Any, Any]:
    """(detections per image id, detector callable) for validating a top-down model: a COCO
    detection-results JSON gives the first, a checkpoint / `Model` / callable the second;
    neither (None) means the ground-truth boxes."""
    if _is_json(detector):
        from posekit.eval.detections import read_detections

        return read_detections(detector, ds), None
    return None, as_detector(detector)


class Model:
    """A registered architecture to train (`Model("rtpose-n")`) or a trained checkpoint
    (`Model("runs/train/exp/weights/best.pt")`).

    Example:
        >>> model = Model("rtpose-n")
        >>> result = model.train(data="data/people", epochs=10, imgsz=320)  # doctest: +SKIP
        >>> Model(result.best).val(data="data/people")                        # doctest: +SKIP
        >>> r = Model(result.best)("street.jpg", conf=0.25)[0]                # doctest: +SKIP
        >>> r.keypoints.xy, r.boxes.conf                                      # doctest: +SKIP
    """

    def __init__(
        self,
        source: str | Path = "rtpose-n",
        schema: KeypointSchema | str | None = None,
        *,
        detector: Any = None,
        **overrides: Any,
    ) -> None:
        """Args:
        source: a registered name ("rtpose-n", "vitpose-b" ...), a posekit checkpoint, a
            transformers folder or `.safetensors` file, a published `.pth` (official
            ViTPose or MMPose), or an Ultralytics `.pt` (a published name such as
            "yolo11n-pose.pt" that is not on disk is downloaded once into the cache); the one
            line that says what was loaded is logged.
        schema: the keypoints of a new model (default COCO-17), or of a file that does
            not name them.
        detector: for top-down models, what finds the instances: a detector checkpoint
            or `Model`, or any callable `images -> [(boxes, scores, classes), ...]`; a COCO
            detection-results JSON (boxes by dataset image id) serves `val` only.
        overrides: architecture fields a weights file cannot hold (e.g. `num_heads=`,
            `layer_norm_eps=` for a ViTPose `.pth`), when the defaults do not fit it.
        """
        self.checkpoint: dict[str, Any] | None = None
        #: an exported ONNX file this model runs through ONNX Runtime (`net` is weightless)
        self.onnx: Path | None = None
        self._onnx_category_ids: list[int] | None = None
        self._sessions: dict[str, Any] = {}  # ONNX Runtime backends by device
        self._tracker: Tracker | None = None  # kept between `track(persist=True)` calls
        # (net, parameter version, folded copy) of the last `inference_net`
        self._inference: tuple[KeypointModel, int, KeypointModel] | None = None
        self._half: tuple[KeypointModel, KeypointModel] | None = None  # (fp32 net, fp16 copy)
        from posekit.models.loading import local_source

        self.source = local_source(str(source))
        if self.source in list_models():
            self.net = create(self.source, schema or "coco17")
        elif Path(self.source).exists():
            from posekit.models.loading import load_any

            given = get_schema(schema) if isinstance(schema, str) else schema
            if Path(self.source).suffix == ".onnx" and Path(self.source).is_file():
                from posekit.export.metadata import load_onnx

                loaded = load_onnx(self.source, given)
            else:
                loaded = load_any(self.source, schema=given, **overrides)
            self.net, self.checkpoint = loaded.model, loaded.checkpoint
            self.onnx, self._onnx_category_ids = loaded.onnx, loaded.category_ids
            log.info(loaded.summary)
        elif self.source.endswith((".pt", ".pth", ".safetensors", ".onnx")):
            raise FileNotFoundError(f"{self.source}: model file not found")
        else:
            raise UserError(
                f"{self.source!r} is neither a model file or folder nor a registered "
                f"model ({', '.join(list_models())})"
            )
        # a detection-results JSON names dataset image ids: it serves `val`, not `predict`
        self.detections_file = detector if _is_json(detector) else None
        self.detector = None if self.detections_file else as_detector(detector)

    @property
    def inference_net(self) -> KeypointModel:
        """The network prediction runs: an eval-mode copy of `net` with BatchNorm folded into
        the convolutions (same outputs to float rounding, faster). It is rebuilt when `net`
        is replaced or any of its tensors changes in place."""
        self._needs_weights("run by PyTorch")
        version = sum(t._version for t in (*self.net.parameters(), *self.net.buffers()))
        cached = self._inference
        if cached is None or cached[0] is not self.net or cached[1] != version:
            self._inference = cached = (self.net, version, fused_for_inference(self.net))
        return cached[2]

    @property
    def category_ids(self) -> list[int] | None:
        """Dataset category id of each class (from the checkpoint or the ONNX metadata), for
        COCO results."""
        if self.checkpoint is None:
            return self._onnx_category_ids
        return self.checkpoint.get("category_ids")

    def runner(
        self, device: torch.device, *, half: bool = False
    ) -> tuple[KeypointModel, Backend | None]:
        """(network, backend) that `Predictor` takes for a run on `device`: the folded
        PyTorch copy (no backend: it runs itself; with `half`, an fp16 copy of it, kept beside
        the fp32 one so that runs of either precision never convert the other), or the
        weightless network of an `.onnx` model and its ONNX Runtime session (kept between
        calls)."""
        if self.onnx is None:
            net = self.inference_net
            if not half:
                return net, None
            if self._half is None or self._half[0] is not net:
                self._half = (net, copy.deepcopy(net).half())
            return self._half[1], None
        key = str(device)
        if key not in self._sessions:
            from posekit.predict.backends import OnnxBackend

            self._sessions[key] = OnnxBackend(self.onnx, self.net, device)
        return self.net, self._sessions[key]

    def needs_images(self, what: str) -> None:
        """A one-line `UserError` when this is a lifting network (it reads 2D keypoints, so
        it cannot `what`, e.g. "predict on images")."""
        if self.net.input_kind != "images":
            raise UserError(
                f"{self.source} is a lifting network ({self.net.family}): it reads "
                f"2D keypoints, so it cannot {what}; give it to a detector's track "
                "(`posekit track --lift`, `Model.track(..., lift=)`) or call Model.lift"
            )

    def _needs_weights(self, what: str) -> None:
        if self.onnx is not None:
            raise UserError(f"{self.onnx} is an ONNX export: it cannot be {what}; use the "
                             "checkpoint it was exported from")  # fmt: skip

    def predict(
        self,
        source: Any,
        *,
        stream: bool = False,
        device: str = "auto",
        on_error: Callable[[str, str], None] | None = None,
        boxes: Any = None,
        **settings: Any,
    ) -> list[Results] | Iterator[Results]:
        """Detect instances and their keypoints.

        Args:
            source: an image path, folder, glob, list of paths, BGR array, PIL image, video
                file, camera index or stream URL.
            stream: yield one `Results` per frame lazily instead of returning a list (use it
                for videos and streams).
            on_error: called with (path, message) for an unreadable image, which is then
                skipped; without it an unreadable image raises `SourceError`.
            boxes: top-down models: the instances' xyxy boxes, one (N, 4) array per image
                (or one array for a single image). Each gets exactly one result, in order,
                never filtered by `conf`. Without boxes the model's detector finds them, or
                each whole image is one instance.
            settings: any field of `posekit.predict.PredictConfig`, whose defaults and ranges
                are documented there (`conf`, `kpt_conf`, `iou`, `oks_nms`, `imgsz`, `batch`,
                `max_det`, `crop_batch`, `rect`, `vid_stride`, `flip`, `half`); `imgsz`
                defaults to the model's own, `half` to on for CUDA devices (PyTorch models).
                An unknown name is an error listing the valid ones.

        Example:
            >>> for r in Model("best.pt")("clip.mp4", stream=True):  # doctest: +SKIP
            ...     print(r.frame, r.keypoints.xy.shape)
        """
        from posekit.predict import Predictor
        from posekit.utils.device import select_device

        self.needs_images("predict on images")
        dev = select_device(device)
        cfg = self.predict_config(dev, **settings)
        net, backend = self.runner(dev, half=cfg.half and self.onnx is None)
        predictor = Predictor(
            net,
            cfg,
            device=dev,
            category_ids=self.category_ids,
            fuse=False,  # already folded, and cached between calls
            detector=self.detector,
            backend=backend,
        )
        if boxes is None and self.detections_file is not None:
            raise UserError(
                f"{self.detections_file} gives boxes by dataset image id: use it with val "
                "(Model.val / posekit val --detector), or pass boxes= or a detector checkpoint"
            )
        if boxes is not None and isinstance(boxes, np.ndarray) and boxes.ndim == 2:
            boxes = [boxes]  # one image's boxes
        results = predictor.stream(source, boxes=boxes, on_error=on_error)
        return results if stream else list(results)

    __call__ = predict

    def predict_config(self, device: torch.device, **settings: Any) -> PredictConfig:
        """The `PredictConfig` of `settings` (its field names) for this model on `device`:
        `imgsz` defaults to the model's, `half` to on for CUDA (PyTorch models only), and
        the family's `predict_defaults` replace PredictConfig's (e.g. a YOLO file's iou)."""
        check_setting_names(PredictConfig, settings, "prediction")
        for name, value in self.net.predict_defaults.items():
            if settings.get(name) is None:
                settings[name] = value
        # None is "the default" for every field
        settings = {k: v for k, v in settings.items() if v is not None or k in {"half", "imgsz"}}
        if settings.get("half") is None:
            settings["half"] = device.type == "cuda" and self.onnx is None
        if settings.get("imgsz") is None:
            settings["imgsz"] = self.net.config.imgsz
        return PredictConfig(**settings)

    def track(
        self,
        source: Any,
        *,
        stream: bool = False,
        persist: bool = False,
        tracker: TrackerConfig | dict[str, Any] | None = None,
        smooth: OneEuroConfig | bool = False,
        lift: str | Path | Model | None = None,
        lift_intrinsics: Any = None,
        **predict_options: Any,
    ) -> list[Results] | Iterator[Results]:
        """Predict on a video or stream and track: every `Results` gains `boxes.id`.

        Args:
            persist: keep the tracker (and its ids) from the previous call, e.g. when a
                stream is fed one frame per call.
            tracker: `TrackerConfig` or a dict of its fields (defaults documented there).
            smooth: One Euro smoothing of the keypoints per track (`True` for the defaults, or
                a `OneEuroConfig`).
            lift: a lifting network (checkpoint or `Model`, e.g. a trained liftpose-81):
                every `Results` gains `keypoints3d`, each track's root-relative 3D in metres
                in the camera's frame, lifted live from its frames so far
                (`posekit.threed.lifting.LiveLifting`); the events get `keypoints_3d`.
            lift_intrinsics: the camera's fx, fy, cx, cy (OpenCV's pixels) for `lift`
                (default: guessed from the frame size, said in one log line).
            predict_options: as for `predict` (imgsz, batch, iou, device, ...).

        Example:
            >>> for r in Model("best.pt").track("clip.mp4", stream=True):  # doctest: +SKIP
            ...     print(r.frame, r.boxes.id)
        """
        from posekit.track import TrackSmoother
        from posekit.track.pipeline import tracked

        cfg = (tracker if isinstance(tracker, TrackerConfig)
               else config_from_settings(TrackerConfig, tracker or {}, "tracker"))  # fmt: skip
        if not persist or self._tracker is None or self._tracker.config != cfg:
            self._tracker = Tracker(cfg, sigmas=np.array(self.schemas[0].sigmas))
        smoother = None
        if smooth:
            one_euro = smooth if isinstance(smooth, OneEuroConfig) else OneEuroConfig()
            kpt_conf = predict_options.get("kpt_conf", PredictConfig.kpt_conf)
            smoother = TrackSmoother(one_euro, kpt_conf=kpt_conf)
        # low-scored detections go to the tracker too (its second association)
        conf = predict_options.pop("conf", PredictConfig.conf)
        low = min(conf, cfg.low_thresh)
        results = self.predict(source, stream=True, conf=low, **predict_options)
        out = tracked(results, self._tracker, smoother=smoother, conf=conf)
        if lift is not None:
            from posekit.threed.lifting import Lifter

            lifter = Lifter(
                lift.net if isinstance(lift, Model) else lift, predict_options.get("device", "auto")
            )
            out = map(lifter.live(lift_intrinsics), out)
        return out if stream else list(out)

    def lift(self, keypoints2d: np.ndarray, intrinsics: Any) -> np.ndarray:
        """Lifting networks: (T, K, 3) root-relative 3D (metres, the camera's frame) of one
        subject's clip of (T, K, 3) pixels (OpenCV's convention: the top-left pixel's centre
        is 0, 0) and confidences, given the camera's fx, fy, cx, cy.

        Example:
            >>> Model("lift.pt").lift(clip2d, (1000, 1000, 639.5, 359.5))  # doctest: +SKIP
        """
        from posekit.threed.lifting import Lifter

        return Lifter(self.net).lift(keypoints2d, intrinsics)

    @property
    def schemas(self) -> list[KeypointSchema]:
        return self.net.schemas

    @property
    def names(self) -> list[str]:
        return self.net.names

    def info(self, imgsz: int | None = None) -> ModelSummary:
        """Parameters and GFLOPs at `imgsz` (default: the model's own input size)."""
        self.needs_images("be summarised at an image size")
        return summarize_model(self.net, imgsz or self.net.config.imgsz)

    def train(self, *, resume: str | Path | None = None, **options: Any) -> Any:
        """Train on `data=` (a posekit dataset); options are `TrainConfig` fields, and
        augmentation fields (`degrees=`, `flip=`, ...) may be given directly.

        Returns a `TrainResult` (run folder, best/last checkpoints, final metrics).
        """
        from posekit.engine.trainer import Trainer

        self._needs_weights("trained")
        aug_fields = {f.name for f in fields(AugmentConfig)}
        aug = {k: options.pop(k) for k in list(options) if k in aug_fields}
        cfg = TrainConfig.from_dict({"model": self.source, **options})
        if aug:
            cfg = replace(cfg, augment=replace(cfg.augment, **aug))
        result = Trainer(cfg, resume=resume).fit()
        if result.best.is_file():
            from posekit.engine.checkpoint import load_model

            self.net, self.checkpoint = load_model(result.best)
            self.source = str(result.best)  # what it is now: `export()` writes beside it
        return result

    def val(
        self,
        data: str | Path | KeypointDataset,
        *,
        split: str = "val",
        config: EvalConfig | None = None,
        device: str = "auto",
        detector: Any = None,
        **settings: Any,
    ) -> KeypointMetrics | LiftMetrics:
        """Evaluate on a dataset split: COCO AP/AR, PCK, EPE (see `posekit.eval.evaluate`);
        for a lifting network, MPJPE and the other 3D errors on a sequence dataset
        (`val_lifting`).

        `data` is a dataset (folder, data YAML, COCO file ...; a dataset with one split is
        evaluated on it whatever `split` says) or a loaded `KeypointDataset`. Predictions come
        from the pipeline `predict` runs, with `predict`'s settings (`settings`: any
        `PredictConfig` field, the same fp16 and flip defaults) except COCO's validation ones,
        `conf=0.001`, `max_det=100` and `batch=8` unless given; so the figures equal `posekit
        val --pred` on `predict(..., conf=0.001, max_det=100)`'s COCO results. `posekit val
        --model` is this method."""
        from posekit.engine.validate import VAL_CONF, VAL_MAX_DET, evaluate_model
        from posekit.utils.device import select_device

        if self.net.input_kind == "keypoints":
            return self.val_lifting(data, split=split, device=device, **settings)
        ds = data if isinstance(data, KeypointDataset) else validation_split(data, split)
        given = detector if detector is not None else self.detections_file or self.detector
        detections, find = boxes_for_validation(given, ds)
        dev = select_device(device)
        run = self.predict_config(dev, **{"conf": VAL_CONF, "max_det": VAL_MAX_DET, "batch": 8,
                                          **settings})  # fmt: skip
        net, backend = self.runner(dev, half=run.half and self.onnx is None)
        return evaluate_model(
            net,
            ds,
            run,
            device=dev,
            config=config or EvalConfig(),
            fuse=False,  # `inference_net` is already the folded copy
            detections=detections,
            detector=find,
            backend=backend,
        )

    def val_lifting(
        self,
        data: str | Path | PoseSequences,
        *,
        split: str = "val",
        device: str = "auto",
        exact_2d: bool = False,
    ) -> LiftMetrics:
        """A lifting network on a sequence dataset's split (a dataset with one split is
        evaluated on it): MPJPE, P-MPJPE, N-MPJPE, velocity error and MPJPE per joint in
        millimetres, root-relative; `exact_2d` lifts the truth's exact projections instead
        of the detected 2D (the lifting error alone)."""
        from posekit.engine.lifting import evaluate_lifting
        from posekit.utils.device import select_device

        if isinstance(data, PoseSequences):
            ds = data
        else:
            splits = load_sequence_splits(data)
            if split not in splits and len(splits) > 1:
                raise UserError(f"{data}: no split {split!r} (has {', '.join(splits)})")
            ds = splits.get(split) or next(iter(splits.values()))
        check_schema_matches(ds, self.schemas[0], str(self.source))
        dev = select_device(device)
        return evaluate_lifting(self.net.to(dev), ds, dev, exact_2d=exact_2d)

    def export(
        self,
        format: str = "onnx",
        *,
        out: str | Path | None = None,
        check_source: Any = None,
        force: bool = False,
        **settings: Any,
    ) -> ExportResult:
        """Export for deployment (ONNX; see `posekit.export.onnx` for what the graph takes
        and returns) and check the file against this model.

        Args:
            out: the file (default: beside the checkpoint, `.onnx` suffix; for a registered
                name, `<name>.onnx` here). A file there that is not a posekit export is
                refused unless `force`.
            settings: `posekit.export.ExportConfig`'s fields (an unknown name is an error
                listing the valid ones), among them
            imgsz: input size of whole-image models (default: the model's own); `static`
                fixes it (and the batch, to `batch`); by default batch and size are dynamic.
            half: fp16 inside the graph (needs `device="cuda"`).
            check: run the file with ONNX Runtime and this model on the same images
                (`check_source`, default rendered scenes) and fail when their decoded
                keypoints or scores differ beyond tolerance (`result.check` has the figures).
        """
        from posekit.export import ExportConfig, export_model

        self._needs_weights("exported again")
        config = config_from_settings(ExportConfig, settings, "export")
        return export_model(self.net, config, source=self.source,
                            category_ids=self.category_ids, format=format, out=out,
                            check_source=check_source, force=force)  # fmt: skip
