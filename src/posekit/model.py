"""`posekit.Model`: one object to create, train, evaluate and (later) run a keypoint model."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from posekit.engine.checkpoint import load_model
from posekit.engine.config import TrainConfig
from posekit.engine.dataset import AugmentConfig
from posekit.eval import EvalConfig, KeypointMetrics
from posekit.models import RTPose, create, list_models, summarize_model
from posekit.models.summary import ModelSummary
from posekit.schema import KeypointSchema


class Model:
    """A registered architecture to train (`Model("rtpose-n")`) or a trained checkpoint
    (`Model("runs/train/exp/weights/best.pt")`).

    Example:
        >>> model = Model("rtpose-n")
        >>> result = model.train(data="data/people", epochs=10, imgsz=320)  # doctest: +SKIP
        >>> Model(result.best).val(data="data/people")                        # doctest: +SKIP
    """

    def __init__(self, source: str | Path = "rtpose-n", schema: KeypointSchema | str = "coco17"):
        self.source = str(source)
        self.checkpoint: dict[str, Any] | None = None
        if self.source.endswith(".pt"):
            self.net, self.checkpoint = load_model(self.source)
        elif self.source in list_models():
            self.net = create(self.source, schema)
        else:
            raise ValueError(f"{self.source!r} is neither a checkpoint (.pt) nor a registered "
                             f"model ({', '.join(list_models())})")  # fmt: skip

    @property
    def schemas(self) -> list[KeypointSchema]:
        return self.net.schemas

    @property
    def names(self) -> list[str]:
        return self.net.names

    def info(self, imgsz: int | None = None) -> ModelSummary:
        """Parameters and GFLOPs at `imgsz` (default: the model's own input size)."""
        return summarize_model(self.net, imgsz or self.net.config.imgsz)

    def train(self, *, resume: str | Path | None = None, **options: Any) -> Any:
        """Train on `data=` (a posekit dataset); options are `TrainConfig` fields, and
        augmentation fields (`degrees=`, `flip=`, ...) may be given directly.

        Returns a `TrainResult` (run folder, best/last checkpoints, final metrics).
        """
        from posekit.engine.trainer import Trainer

        aug_fields = {f.name for f in fields(AugmentConfig)}
        aug = {k: options.pop(k) for k in list(options) if k in aug_fields}
        cfg = TrainConfig.from_dict({"model": self.source, **options})
        if aug:
            cfg = replace(cfg, augment=replace(cfg.augment, **aug))
        result = Trainer(cfg, resume=resume).fit()
        if result.best.is_file():
            self.net, self.checkpoint = load_model(result.best)
        return result

    def val(
        self,
        data: str | Path,
        *,
        split: str = "val",
        imgsz: int | None = None,
        batch: int = 8,
        config: EvalConfig | None = None,
        device: str = "auto",
    ) -> KeypointMetrics:
        """Evaluate on a dataset split: COCO AP/AR, PCK, EPE (see `posekit.eval.evaluate`)."""
        from posekit.data.layout import load_dataset
        from posekit.engine.trainer import select_device
        from posekit.engine.validate import evaluate_model

        ds = load_dataset(data, split, repair=False)  # the annotations as pycocotools sees them
        net: RTPose = self.net
        return evaluate_model(net, ds, imgsz=imgsz or net.config.imgsz, batch=batch,
                              device=select_device(device),
                              config=config or EvalConfig())  # fmt: skip
