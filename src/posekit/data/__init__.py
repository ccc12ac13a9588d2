"""Keypoint datasets: the readers and writers of every format (`posekit.data.formats`), checks,
conversion, splits and synthetic data."""

from posekit.data.check import check_dataset, check_image, check_images
from posekit.data.coco import read_coco, write_coco
from posekit.data.convert import convert
from posekit.data.dataset import (
    Annotation,
    Category,
    DatasetStats,
    ImageInfo,
    KeypointDataset,
    bbox_from_keypoints,
)
from posekit.data.dlc import read_dlc
from posekit.data.formats import FORMATS, DatasetFormat, detect_format, load_dataset, load_splits
from posekit.data.images import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    image_size,
    max_image_pixels,
    read_image,
)
from posekit.data.layout import DataSpec, resolve_posekit, write_posekit
from posekit.data.problems import DatasetError, LoadReport, Problem
from posekit.data.split import split_dataset, split_on_disk
from posekit.data.yolo import read_yolo, write_yolo

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FORMATS",
    "Annotation",
    "Category",
    "DataSpec",
    "DatasetError",
    "DatasetFormat",
    "DatasetStats",
    "ImageInfo",
    "ImageReadError",
    "KeypointDataset",
    "LoadReport",
    "Problem",
    "bbox_from_keypoints",
    "check_dataset",
    "check_image",
    "check_images",
    "convert",
    "detect_format",
    "image_size",
    "load_dataset",
    "load_splits",
    "max_image_pixels",
    "read_coco",
    "read_dlc",
    "read_image",
    "read_yolo",
    "resolve_posekit",
    "split_dataset",
    "split_on_disk",
    "write_coco",
    "write_posekit",
    "write_yolo",
]
