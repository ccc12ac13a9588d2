"""Reading the YAML files of datasets (posekit and YOLO data YAMLs, DeepLabCut configs) with
one set of errors: each a `DatasetError` naming the file (and the line, where YAML says)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from posekit.data.problems import DatasetError


def load_yaml(path: Path) -> Any:
    """The YAML document in `path`, read safely (no Python objects are built)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DatasetError(f"{path}{line}: invalid YAML: {problem}") from None
    except RecursionError:
        raise DatasetError(f"{path}: YAML nested too deeply to be a dataset file") from None
