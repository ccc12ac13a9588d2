"""A camera rig from whichever calibration file the user has, chosen by its name."""

from __future__ import annotations

from pathlib import Path

from posekit.threed.cameras import CameraRig
from posekit.threed.easymocap import read_easymocap
from posekit.threed.qualisys import read_qca
from posekit.utils.errors import UserError

#: what each calibration file is read as, by the end of its name
READERS = {
    ".toml": CameraRig.read_toml,
    ".qca.txt": read_qca,
    "intri.yml": read_easymocap,
}


def read_rig(path: str | Path) -> CameraRig:
    """Anipose's / Pose2Sim's `calibration.toml`, a Qualisys `.qca.txt` export, or EasyMocap's
    `intri.yml` (with `extri.yml` beside it; or the folder of both)."""
    if Path(path).is_dir():
        return read_easymocap(path)
    name = Path(path).name.lower()
    for ending, reader in READERS.items():
        if name.endswith(ending):
            return reader(path)
    raise UserError(f"{path}: not a calibration file posekit reads ({', '.join(READERS)})")
