"""Options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import click

from posekit.utils.field_docs import field_comments

#: --force on every command that writes a folder (see posekit.utils.outputs).
force_option = click.option(
    "--force",
    is_flag=True,
    help="Write into a non-empty folder that is not this command's own output (nothing "
    "already there is deleted).",
)

#: --image-root for commands that read a COCO file.
image_root_option = click.option(
    "--image-root",
    default=None,
    type=click.Path(path_type=Path, file_okay=False),
    help="The folder a COCO file's file_names are relative to (default: images/ beside an "
    "annotations/ folder, else the file's folder).",
)

#: --video-dir for commands that read a SLEAP project.
video_dir_option = click.option(
    "--video-dir",
    default=None,
    type=click.Path(path_type=Path, file_okay=False),
    help="SLEAP .slp: where to look for videos not found at their stored path or next to the file.",
)

#: --detector for commands that run a top-down model.
detector_option = click.option(
    "--detector",
    default=None,
    type=click.Path(path_type=Path),
    help="Top-down models: the detector checkpoint that finds the instances (default: each "
    "whole image is one instance).",
)

#: --schema for commands that load a model file.
schema_option = click.option(
    "--schema",
    default=None,
    help="The keypoints of a model file that does not name them (an ONNX file without "
    "posekit's metadata, a transformers folder): a preset name or a schema YAML.",
)

#: --half/--no-half for commands that run a model.
half_option = click.option(
    "--half/--no-half",
    default=None,
    help="fp16 network (default: on for CUDA devices, off elsewhere).",
)

#: --flip/--no-flip for commands that run a top-down model.
flip_option = click.option(
    "--flip/--no-flip",
    default=True,
    show_default=True,
    help="Top-down models: average with the mirrored crop (the flip test).",
)

#: --angle for commands that measure joint angles.
angle_option = click.option(
    "--angle",
    "angles",
    multiple=True,
    help="Joint angle to report: a,b,c (at b) or name=a,b,c; repeatable.",
)


def parse_angles(values: tuple[str, ...]) -> dict[str, list[str]]:
    """`--angle a,b,c` (named after b) or `--angle name=a,b,c`."""
    out = {}
    for v in values:
        name, _, spec = v.rpartition("=")
        parts = [p.strip() for p in spec.split(",")]
        if len(parts) != 3 or not all(parts):
            raise click.BadParameter(f"{v!r}: give three keypoints, e.g. hip,knee,ankle")
        out[name or parts[1]] = parts
    return out


def parse_pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """NAME=VALUE options (`--view cam1=a.mp4`) as a mapping, in order; a repeated name or
    a malformed value is one line."""
    out: dict[str, str] = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name or not value:
            raise click.BadParameter(f"{v!r}: expected CAMERA=VALUE", param_hint=what)
        if name in out:
            raise click.BadParameter(f"camera {name!r} given twice", param_hint=what)
        out[name] = value
    return out


def camera_option(
    flag: str, dest: str, *, metavar: str = "CAMERA=PATH", required: bool = False, help: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A repeatable `--flag CAMERA=VALUE` option that hands the command a {camera: value}
    mapping (`parse_pairs`), for the commands that take one value per camera."""
    return click.option(
        flag,
        dest,
        multiple=True,
        required=required,
        metavar=metavar,
        callback=lambda _ctx, _param, values: parse_pairs(values, flag),
        help=help,
    )


def setting_option(
    config: type, name: str, *, default: Any = MISSING, **kw: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--name` for the field `name` of a settings dataclass: its range (declared with
    `posekit.utils.bounds.ranged`) becomes the click type and its default the option's, so
    a value outside the range is refused at the command line in one line (exit 2) and the
    CLI never restates either. `default` overrides the dataclass's (None: "the model's")."""
    f = next((f for f in fields(config) if f.name == name), None)
    if f is None or "range" not in f.metadata:
        raise TypeError(f"{config.__name__}.{name} is not a field with a declared range")
    low, high = f.metadata["range"]
    whole = "int" in {t.strip() for t in str(f.type).split("|")}  # "int", "int | None"
    kind = click.IntRange(int(low), int(high)) if whole else click.FloatRange(low, high)
    value = f.default if default is MISSING else default
    kw.setdefault("help", field_comments(config).get(name))
    return click.option(f"--{name.replace('_', '-')}", type=kind, default=value,
                        show_default=value is not None, **kw)  # fmt: skip


def remaining_settings(
    config: type, *, exclude: Iterable[str] = (), prefix: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Options for every field of `config` that a command does not define itself
    (`exclude`): ranged numbers through `setting_option`, booleans as `--x/--no-x`, strings,
    and tuples of numbers as `--x A B C`, each with the dataclass's default. Fields of other
    kinds (nested configs, dicts) are left to the command. So that every setting can be given
    on the command line without being retyped here."""
    skip = set(exclude)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(fields(config)):
            if f.name in skip or f.default is MISSING:
                continue
            flag = f"--{prefix}{f.name.replace('_', '-')}"
            help_text = field_comments(config).get(f.name, f"{config.__name__}.{f.name}.")
            if "range" in f.metadata and isinstance(f.default, tuple):
                low, high = f.metadata["range"]
                fn = click.option(flag, f.name, type=click.FloatRange(low, high),
                                  nargs=len(f.default), default=f.default, show_default=True,
                                  help=help_text)(fn)  # fmt: skip
            elif "range" in f.metadata:
                fn = setting_option(config, f.name, help=help_text)(fn)
            elif isinstance(f.default, bool):
                name = f.name.replace("_", "-")
                fn = click.option(f"--{prefix}{name}/--no-{prefix}{name}", f.name,
                                  default=f.default, show_default=True,
                                  help=help_text)(fn)  # fmt: skip
            elif isinstance(f.default, str):
                fn = click.option(flag, f.name, default=f.default, show_default=True,
                                  help=help_text)(fn)  # fmt: skip
        return fn

    return decorate
