"""Model registry: a model is one module that registers its named sizes; `create` builds them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from posekit.schema import KeypointSchema, get_schema
from posekit.utils.errors import UserError

_Factory = Callable[..., nn.Module]


class _Registry:
    """Name -> factory. One instance per process, filled only by `@register_model` decorators
    at import of the model modules (no other mutation)."""

    def __init__(self) -> None:
        self._factories: dict[str, _Factory] = {}

    def register(self, name: str) -> Callable[[_Factory], _Factory]:
        def add(factory: _Factory) -> _Factory:
            if name in self._factories:
                raise ValueError(f"model {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return add

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> _Factory:
        if name not in self._factories:
            raise UserError(f"unknown model {name!r}; registered: {', '.join(self.names())}")
        return self._factories[name]


REGISTRY = _Registry()
register_model = REGISTRY.register


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
        overrides: config fields to change (e.g. `width=0.1` for a tiny test model).

    Example:
        >>> model = create("rtpose-n", "coco17")
    """
    if isinstance(schema, str):
        schemas = [get_schema(schema)]
    elif isinstance(schema, KeypointSchema):
        schemas = [schema]
    else:
        schemas = list(schema)
    return REGISTRY.get(name)(
        schemas=schemas, names=names or [s.name for s in schemas], **overrides
    )
