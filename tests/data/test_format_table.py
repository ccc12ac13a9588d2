"""Formats as a table: each format of `FORMATS` is detected, read and (where it has a writer)
written from its one entry; the CLI help and the README's table name exactly these formats."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_fuzz_readers import (
    CVAT_SEED,
    DLC_CONFIG,
    DLC_CSV,
    YOLO_LABEL,
    YOLO_YAML,
    _dumps,
    _image,
    coco_seed,
    labelme_seed,
    labelstudio_seed,
)

from conftest import tiny_slp
from posekit.cli.main import cli
from posekit.data import convert, load_splits
from posekit.data.formats import FORMATS, NAMES, TARGETS, describe, detect_format, format_of

README = Path(__file__).parents[2] / "README.md"


def _coco(root: Path) -> Path:
    seed = coco_seed(root)
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.json").write_text(_dumps(seed))
    return root


def _posekit_yaml(root: Path) -> Path:
    _coco(root)
    (root / "data.yaml").write_text("path: .\nimages: images\ntrain: annotations/train.json\n")
    return root / "data.yaml"


def _yolo(root: Path) -> Path:
    _image(root / "images" / "train" / "a.jpg")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text(YOLO_LABEL)
    (root / "data.yaml").write_text(YOLO_YAML)
    return root / "data.yaml"


def _dlc(root: Path) -> Path:
    for i in range(2):
        _image(root / "labeled-data" / "v1" / f"img{i}.png", 120, 100)
    (root / "config.yaml").write_text(DLC_CONFIG)
    (root / "labeled-data" / "v1" / "CollectedData_me.csv").write_text(DLC_CSV)
    return root


def _labelme(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "a.json").write_text(_dumps(labelme_seed(root)))
    return root


def _labelstudio(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "export.json").write_text(_dumps(labelstudio_seed(root)))
    return root / "export.json"


def _cvat(root: Path) -> Path:
    _image(root / "images" / "a.jpg")
    (root / "annotations.xml").write_text(CVAT_SEED)
    return root / "annotations.xml"


#: one small valid example per entry of FORMATS, by entry name
EXAMPLES: dict[str, Callable[[Path], Path]] = {
    "posekit": _coco, "posekit-yaml": _posekit_yaml, "yolo": _yolo, "dlc": _dlc,
    "labelme": _labelme, "labelstudio": _labelstudio,
    "coco": lambda root: _coco(root) / "annotations" / "train.json", "cvat": _cvat,
    "sleap": tiny_slp,
}  # fmt: skip


def test_every_format_has_an_example_here() -> None:
    assert sorted(EXAMPLES) == sorted(f.name for f in FORMATS)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_each_format_is_detected_and_read_from_its_entry(fmt, tmp_path: Path) -> None:
    path = EXAMPLES[fmt.name](tmp_path / fmt.name)
    assert format_of(path) is fmt
    assert detect_format(path) == fmt.name.removesuffix("-yaml")
    splits = load_splits(path)
    assert splits and sum(len(ds.annotations) for ds in splits.values()) >= 1
    if "image_root" not in fmt.options:
        with pytest.raises(ValueError, match=f"--image-root is for .*; {path} is a"):
            load_splits(path, image_root=tmp_path)


@pytest.mark.parametrize("name", list(TARGETS))
def test_each_writer_writes_what_its_own_reader_reads_back(name: str, tmp_path: Path) -> None:
    src = _coco(tmp_path / "src")
    written, _ = convert(src, tmp_path / "out", to=name)
    assert detect_format(written) in {name, "posekit"}
    back = load_splits(written)
    assert [len(ds.annotations) for ds in back.values()] == [1]
    entries = {p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")}
    assert entries <= set(TARGETS[name].writes), entries


@pytest.mark.parametrize("name", ["posekit-yaml", "dlc"])
def test_detection_parses_a_yaml_file_once(name: str, tmp_path: Path, monkeypatch) -> None:
    """YOLO's, DeepLabCut's and posekit's detectors each ask what a YAML holds; one parse."""
    from posekit.data import formats

    path = EXAMPLES[name](tmp_path / name)
    yaml_path = path if path.is_file() else path / "config.yaml"
    parsed: list[Path] = []
    real = formats.load_yaml
    monkeypatch.setattr(formats, "load_yaml", lambda p: parsed.append(p) or real(p))
    assert format_of(yaml_path).name == name
    assert parsed == [yaml_path]


def test_an_unknown_file_lists_what_each_format_accepts(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match="unknown dataset format") as e:
        detect_format(path)
    for fmt in FORMATS:
        assert fmt.accepts in str(e.value)


@pytest.mark.parametrize("command", [["data", "check"], ["data", "convert"], ["val"]])
def test_the_help_names_every_format(command: list[str]) -> None:
    """Before: `data convert --help` named 4 of the 8 formats."""
    out = CliRunner().invoke(cli, [*command, "--help"], terminal_width=10_000).output
    flat = " ".join(out.split())
    assert describe() in flat
    assert len(NAMES) == 8


def test_the_readme_table_lists_exactly_the_formats() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Bring your own data") :]
    rows = re.findall(r"^\| ([^|]+) \| (yes|—) \| (yes|—) \|", section, flags=re.M)
    readme = {name.replace("`", "").strip(): write == "yes" for name, _, write in rows}
    titles: dict[str, bool] = {}
    for f in FORMATS:
        titles[f.title] = titles.get(f.title, False) or f.write is not None
    found = {t: next((w for n, w in readme.items() if n.startswith(t)), None) for t in titles}
    assert found == titles
    assert len(rows) == len(titles)
