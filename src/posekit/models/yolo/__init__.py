"""The yolo family: Ultralytics' YOLOv8, YOLO11 and YOLO26 pose and detect networks, built from
the architecture description their files carry (`model`), with Ultralytics' post-processing
(`decode`) and the loader of their published `.pt` files (`ultralytics_file`).
"""

from posekit.models.registry import REGISTRY, FileReader
from posekit.models.yolo import ultralytics_file
from posekit.models.yolo.model import YOLO, YOLOConfig, config_for, published_architectures

REGISTRY.register_file_reader(
    FileReader(
        "ultralytics",
        ultralytics_file.recognises,
        ultralytics_file.load,
        published=ultralytics_file.published,
    )
)

__all__ = ["YOLO", "YOLOConfig", "config_for", "published_architectures"]
