"""Keyword settings checked against the settings dataclass that defines them, so that every
API that takes `**settings` accepts exactly the dataclass's field names (and the CLI, which
derives its options from the same fields, cannot drift from it)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from posekit.utils.errors import UserError

C = TypeVar("C")


def check_setting_names(config_class: type, settings: dict[str, Any], what: str) -> None:
    """Refuse a name that is not a field of `config_class`, listing the valid ones (`what`
    names the settings in the message: "prediction", "export")."""
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UserError(f"unknown {what} setting {', '.join(map(repr, unknown))}; the "
                        f"settings are {', '.join(sorted(known))}")  # fmt: skip


def config_from_settings(config_class: type[C], settings: dict[str, Any], what: str) -> C:
    """`config_class(**settings)` after `check_setting_names`."""
    check_setting_names(config_class, settings, what)
    return config_class(**settings)
