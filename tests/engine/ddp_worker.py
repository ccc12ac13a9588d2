"""Run by `torchrun --nproc_per_node 2` in test_ddp: train one tiny epoch, then check that every
rank holds the same weights and report to a file (rank 0 only)."""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as torch_dist

from posekit.engine import distributed as dist
from posekit.engine.checkpoint import unwrap
from posekit.engine.config import TrainConfig
from posekit.engine.trainer import Trainer


def main() -> None:
    data, project, report = sys.argv[1:4]
    cfg = TrainConfig(
        data=data,
        epochs=1,
        imgsz=96,
        batch=4,
        workers=0,
        width=0.5,
        project=project,
        name="ddp",
        exist_ok=True,
        warmup_min_iters=1,
    )
    trainer = Trainer(cfg)
    result = trainer.fit()
    flat = torch.cat([p.detach().flatten() for p in unwrap(trainer.model).parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(dist.world_size())]
    torch_dist.all_gather(gathered, flat)
    if dist.is_main():
        same = all(torch.equal(gathered[0], g) for g in gathered[1:])
        rep = {
            "world_size": dist.world_size(),
            "same_weights": same,
            "save_dir": str(result.save_dir),
            "nonzero_update": bool(flat.abs().sum() > 0),
        }
        with open(report, "w") as f:
            json.dump(rep, f)
    del trainer, result  # the DDP model goes before the process group (see dist.cleanup)
    dist.cleanup()


if __name__ == "__main__":
    main()
