"""Reading the YAML files of datasets (posekit and YOLO data YAMLs, DeepLabCut configs) with
one set of errors: each a `DatasetError` naming the file (and the line, where YAML says)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from posekit.data.problems import DatasetError
from posekit.utils.yaml_files import read_yaml


def load_yaml(path: Path) -> Any:
    """The YAML document in `path`, read safely and within bounds (`posekit.utils.yaml_files`)."""
    return read_yaml(path, DatasetError)
