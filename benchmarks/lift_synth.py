"""2D-to-3D lifting: a liftpose network trained here on synthetic motion, measured on held-out
synthetic clips and on a real recording no one here made, in one run.

1. `posekit data motion`'s generator: BODY_25B people walking, squatting, falling and standing,
   filmed by random cameras with a detector's noise (1 % of the height), gross errors and
   misses (5 %); a held-out split of other people, motions and cameras.
2. Train liftpose-N (default liftpose-81 at a quarter of its width) with posekit's trainer for
   `--minutes`.
3. Held-out MPJPE, P-MPJPE, N-MPJPE and velocity error (mm, root-relative) from the detected
   2D and from the exact 2D; parameters; milliseconds per frame on this CPU, lifting a whole
   clip and live (one window per frame, as `track --lift`).
4. Pose2Sim's demo (PyPI `pose2sim` 0.8.4; `make reference` unpacks it): each of its four
   cameras' OpenPose BODY_25B 2D lifted alone, compared with the four-camera triangulation
   (posekit's default) in that camera's frame, root-relative: MPJPE and P-MPJPE in mm per
   camera, from OpenPose's 2D (keypoints under 0.3 confidence missing, as triangulation
   treats them) and from the triangulation reprojected into that camera (the lifting error
   without the detector's). The only 3D reference the demo has is the triangulation itself
   (a median reprojection error of 7 px), so these figures bound the lifting error from above.

    python benchmarks/lift_synth.py [--minutes 6] [--model liftpose-81] [--width 0.25]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from posekit import Model
from posekit.data.sequences import load_sequence_splits
from posekit.eval.pose3d import pose3d_metrics
from posekit.models.lift_codec import root_relative, root_weights
from posekit.schema import get_schema
from posekit.threed import read_qca
from posekit.threed.lifting import Lifter
from posekit.threed.motion_dataset import MotionDataConfig, write_motion_dataset
from posekit.threed.reconstruct import TriangulationConfig, reconstruct
from posekit.threed.views import read_view

CACHE = Path.home() / ".cache" / "posekit-test"
#: OpenPose keypoints below this confidence are missing (triangulation's default threshold)
MIN_CONFIDENCE = 0.3
BODY25B = get_schema("body25b")


def train(args: argparse.Namespace, work: Path) -> tuple[Path, Path]:
    data = work / "motion"
    cfg = MotionDataConfig(clips=args.clips, frames=120, val=0.1, seed=0)
    start = time.perf_counter()
    write_motion_dataset(data, BODY25B, cfg)
    seconds = time.perf_counter() - start
    print(
        f"data: {args.clips} clips x 120 frames of BODY_25B motion, {cfg.val:.0%} held out, "
        f"made in {seconds:.0f} s"
    )
    start = time.perf_counter()
    settings = {
        "epochs": 1000,
        "time_limit": args.minutes,
        "width": args.width,
        "batch": args.batch,
        "workers": 0,
        "val_period": 5,
    }
    result = Model(args.model).train(data=str(data), project=str(work / "runs"), **settings)
    minutes = (time.perf_counter() - start) / 60
    print(
        f"trained {args.model} (width {args.width}, batch {args.batch}): "
        f"{result.epochs_run} epochs in {minutes:.1f} min"
    )
    return data, result.best


def held_out(data: Path, weights: Path) -> None:
    model = Model(weights)
    params = sum(p.numel() for p in model.net.parameters())
    print(
        f"{model.net.config.name}: receptive field {model.net.receptive_field} frames, "
        f"{params / 1e6:.2f} M parameters"
    )
    ds = load_sequence_splits(data)["val"]
    for exact in (False, True):
        result = model.val_lifting(ds, exact_2d=exact)
        print(f"  held-out, {'exact' if exact else 'detected'} 2D: {result.summary()}")
    lifter = Lifter(model.net, "cpu")
    clip, cam = ds.keypoints2d[0], ds.intrinsics[0]
    lifter.lift(clip, cam)  # warm-up
    start = time.perf_counter()
    for _ in range(5):
        lifter.lift(clip, cam)
    whole = (time.perf_counter() - start) / 5 / len(clip) * 1000
    window = torch.zeros(1, model.net.receptive_field, BODY25B.num_keypoints, 3)
    with torch.inference_mode():
        lifter.net(window)
        start = time.perf_counter()
        for _ in range(50):
            lifter.net(window)
    live = (time.perf_counter() - start) / 50 * 1000
    print(
        f"  speed on this CPU ({torch.get_num_threads()} threads): {whole:.3f} ms per frame "
        f"lifting a {len(clip)}-frame clip, {live:.2f} ms per frame live (one window)"
    )


def pose2sim(root: Path, weights: Path) -> None:
    trial = root / "S01_Demo_SingleTrial"
    if not trial.is_dir():
        print(f"Pose2Sim demo: not found at {root} (run `make reference`)")
        return
    rig = read_qca(trial / "calibration" / "Calib.qca.txt")
    folders = {f"cam_{i:02d}": trial / "pose" / f"cam{i:02d}_json" for i in range(1, 5)}
    views = [read_view(name, folder, BODY25B) for name, folder in folders.items()]
    rec = reconstruct(rig, views, BODY25B, TriangulationConfig())
    person = rec.people[0]
    metres = {"mm": 1e-3, "m": 1.0}[rec.unit]
    weights_root = root_weights(BODY25B)
    lifter = Lifter(weights, "cpu")
    print("Pose2Sim demo, single trial: each camera lifted alone vs the 4-camera triangulation")
    for c, (camera, view) in enumerate(zip(rig.cameras, views, strict=True)):
        rows = np.searchsorted(view.frames, rec.frames)
        source = person.sources[:, c]
        k2 = np.full((len(rec.frames), BODY25B.num_keypoints, 3), np.nan)
        seen = source >= 0
        k2[seen] = view.keypoints[rows[seen], source[seen]]
        k2[k2[..., 2] < MIN_CONFIDENCE] = np.nan  # as triangulation leaves them out
        # the lens's distortion undone: pinhole pixels for the network (focal 1, centre 0)
        k2[..., :2] = camera.undistort(k2[..., :2])
        in_camera = person.points @ camera.rotation_matrix.T + camera.translation
        truth = root_relative(in_camera * metres, weights_root)
        # the triangulation seen by this camera: the lifting error without OpenPose's
        rays = in_camera[..., :2] / in_camera[..., 2:]
        projected = np.concatenate([rays, np.ones_like(rays[..., :1])], -1)
        line = []
        for label, inputs in (("OpenPose 2D", k2), ("the 3D reprojected", projected)):
            lifted = lifter.lift(inputs, (1.0, 1.0, 0.0, 0.0))
            m = pose3d_metrics(lifted * 1000, truth * 1000)
            line.append(f"from {label}: MPJPE {m.mpjpe:5.1f} mm, P-MPJPE {m.p_mpjpe:5.1f} mm")
        print(f"  {camera.name}: " + "; ".join(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--model", default="liftpose-81")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--clips", type=int, default=3000)
    parser.add_argument("--pose2sim", type=Path, default=CACHE / "pose2sim-0.8.4" / "Pose2Sim")
    parser.add_argument("--weights", type=Path, default=None, help="skip training: this lifter")
    parser.add_argument("--keep", type=Path, default=None, help="copy the trained lifter here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.weights is None:
            data, weights = train(args, work)
            if args.keep is not None:
                shutil.copyfile(weights, args.keep)
        else:
            data, weights = work / "motion", args.weights
            write_motion_dataset(data, BODY25B, MotionDataConfig(clips=args.clips, seed=0))
        held_out(data, weights)
        pose2sim(args.pose2sim, weights)


if __name__ == "__main__":
    main()
