"""The model registry (timm's form): families by name, and the named sizes that `create` builds.

A family registers its network class once (`@register_family("rtpose")`) and its size table
once (`register_sizes(RTPose, SIZES)`); `create("rtpose-n", ...)` builds a size, and
checkpoints find their family by the name in their description. The registry is filled only
at import of the family modules; nothing else mutates it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from torch import nn

from posekit.schema import KeypointSchema, get_schema
from posekit.utils.download import Published
from posekit.utils.errors import UserError

if TYPE_CHECKING:
    from posekit.models.base import KeypointModel

_Factory = Callable[..., nn.Module]
C = TypeVar("C", bound=type)


@dataclass(frozen=True)
class FileReader:
    """A published file format that is not a state dict (e.g. a pickled foreign model): whether
    a path is one, and how to load it as a model of a registered family (with the one line that
    says what was loaded, and under which licence)."""

    name: str
    recognises: Callable[[Path], bool]
    #: (path, schema, **overrides) -> (model, summary); overrides are the format's own options
    load: Callable[..., tuple[KeypointModel, str]]
    #: a bare file name -> where its publisher serves it (None: not one of theirs)
    published: Callable[[str], Published | None] | None = None


class Registry:
    """Family name -> network class, model name -> factory, and the foreign file readers."""

    def __init__(self) -> None:
        self._families: dict[str, type[KeypointModel]] = {}
        self._factories: dict[str, _Factory] = {}
        self._readers: list[FileReader] = []

    def register_file_reader(self, reader: FileReader) -> None:
        """A file format `posekit.models.loading.load_any` tries before reading a state dict."""
        if any(r.name == reader.name for r in self._readers):
            raise ValueError(f"file reader {reader.name!r} is registered twice")
        self._readers.append(reader)

    def file_readers(self) -> list[FileReader]:
        return list(self._readers)

    def published_file(self, name: str) -> tuple[FileReader, Published] | None:
        """The reader whose publisher serves a file called `name`, and where, if any does."""
        for reader in self._readers:
            found = reader.published(name) if reader.published else None
            if found is not None:
                return reader, found
        return None

    def register_family(self, name: str) -> Callable[[C], C]:
        """Class decorator: the network class of family `name` (sets its `family`)."""

        def add(cls: C) -> C:
            if name in self._families:
                raise ValueError(f"model family {name!r} is registered twice")
            cls.family = name  # type: ignore[attr-defined]
            self._families[name] = cls  # type: ignore[assignment]
            return cls

        return add

    def register_model(self, name: str) -> Callable[[_Factory], _Factory]:
        """Function decorator: `factory(schemas=..., names=..., **overrides)` builds `name`."""

        def add(factory: _Factory) -> _Factory:
            if name in self._factories:
                raise ValueError(f"model {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return add

    def family(self, name: str) -> type[KeypointModel]:
        if name not in self._families:
            known = ", ".join(self.family_names())
            raise UserError(f"unknown model family {name!r}; registered: {known}")
        return self._families[name]

    def family_names(self) -> list[str]:
        return sorted(self._families)

    def factory(self, name: str) -> _Factory:
        if name not in self._factories:
            raise UserError(f"unknown model {name!r}; registered: {', '.join(self.names())}")
        return self._factories[name]

    def names(self) -> list[str]:
        return sorted(self._factories)


REGISTRY = Registry()
register_family = REGISTRY.register_family
register_model = REGISTRY.register_model


def register_sizes(network: type[KeypointModel], sizes: dict[str, Any]) -> None:
    """Register `{family}-{size}` for each config of the size table `sizes`.

    The factory takes any config field as an override, and the generic `width` / `depth`
    multipliers, which mean the same in every family: relative to the size (`width=0.5`
    halves its channels, `depth=0.5` its blocks), applied by the family's `scale_config`.
    `imgsz` is ignored by families whose input size is another field (crops: `input_size`).
    """
    family = network.family
    for size, base in sizes.items():

        def build(
            schemas: list[KeypointSchema], names: list[str], _base: Any = base, **overrides: Any
        ) -> KeypointModel:
            own = {f.name for f in fields(_base)}
            if "imgsz" not in own:
                overrides.pop("imgsz", None)
            width, depth = overrides.pop("width", None), overrides.pop("depth", None)
            cfg = _base
            if width or depth:
                cfg = network.scale_config(cfg, float(width or 1.0), float(depth or 1.0))
            return network(replace(cfg, **overrides), schemas, names)

        build.__name__ = f"{family}_{size}"
        build.__doc__ = f"{family}-{size}: {base}"
        register_model(f"{family}-{size}")(build)


def list_models() -> list[str]:
    """Registered model names, e.g. ['rtpose-l', 'rtpose-m', 'rtpose-n', ...]."""
    return REGISTRY.names()


def create(
    name: str,
    schema: KeypointSchema | str | list[KeypointSchema] = "coco17",
    names: list[str] | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model for one schema per class.

    Args:
        name: a registered name such as "rtpose-n".
        schema: a `KeypointSchema`, a preset name ("coco17") or one schema per class.
        names: class names (default: the schemas' names).
        overrides: config fields to change, and the multipliers `width` / `depth` (relative
            to the size: `width=0.5` halves its channels, e.g. for a tiny test model).

    Example:
        >>> model = create("rtpose-n", "coco17", width=0.5)
    """
    if isinstance(schema, str):
        schemas = [get_schema(schema)]
    elif isinstance(schema, KeypointSchema):
        schemas = [schema]
    else:
        schemas = list(schema)
    return REGISTRY.factory(name)(
        schemas=schemas, names=names or [s.name for s in schemas], **overrides
    )
