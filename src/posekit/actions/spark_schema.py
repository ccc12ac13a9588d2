"""Spark schemas generated from the JSON Schema files, so that the event format has one source of
truth (`track/event.schema.json`, `actions/action.schema.json`) and the Spark job cannot drift
from what `posekit track` writes."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

from posekit.track.events import event_schema
from posekit.utils.extras import require


def action_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one `posekit.action/1` event."""
    text = resources.files("posekit.actions").joinpath("action.schema.json").read_text()
    return json.loads(text)


def _types(spec: dict[str, Any]) -> tuple[str, bool]:
    """(JSON type, nullable) of a property; `const` and `enum` of strings are strings."""
    kind = spec.get("type")
    if kind is None and ("const" in spec or "enum" in spec):
        values = [spec["const"]] if "const" in spec else spec["enum"]
        if all(isinstance(v, str) for v in values):
            return "string", False
    if isinstance(kind, list):
        rest = [k for k in kind if k != "null"]
        if len(rest) != 1:
            raise ValueError(f"no Spark type for a union of {kind}")
        return rest[0], "null" in kind
    if not isinstance(kind, str):
        raise ValueError(f"no Spark type for {spec}")
    return kind, False


def spark_type(spec: dict[str, Any]) -> Any:
    """The Spark SQL type of a JSON Schema node (objects with `properties` become structs,
    with `additionalProperties` maps, arrays arrays)."""
    T = require("pyspark.sql.types", "spark", "The Spark schema of posekit events")
    kind, _ = _types(spec)
    if kind == "string":
        return T.StringType()
    if kind == "integer":
        return T.LongType()
    if kind == "number":
        return T.DoubleType()
    if kind == "boolean":
        return T.BooleanType()
    if kind == "array":
        return T.ArrayType(spark_type(spec["items"]), containsNull=True)
    if kind == "object" and "properties" in spec:
        return struct_type(spec)
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        return T.MapType(T.StringType(), spark_type(spec["additionalProperties"]), True)
    raise ValueError(f"no Spark type for {spec}")


def struct_type(spec: dict[str, Any]) -> Any:
    """A StructType with one field per property, in the file's order. Every field is nullable
    in Spark: a missing or mistyped value must reach the dead-letter check as null rather than
    fail the parse (the JSON Schema's `required` is enforced there)."""
    T = require("pyspark.sql.types", "spark", "The Spark schema of posekit events")
    return T.StructType(
        [
            T.StructField(name, spark_type(p), nullable=True)
            for name, p in spec["properties"].items()
        ]
    )


def event_struct() -> Any:
    """The Spark schema of one `posekit.track/1` event."""
    return struct_type(event_schema())


def any_event_struct() -> Any:
    """The Spark schema that parses both `posekit.track/1` events and `posekit.track3d/1`
    ones (`posekit triangulate`'s): the 2D event's fields, the 3D event's `person_id` and
    `unit`, and `z` in each keypoint."""
    from posekit.threed.outputs import track3d_schema

    spec = copy.deepcopy(event_schema())
    three = track3d_schema()["properties"]
    spec["properties"] |= {name: three[name] for name in ("person_id", "unit")}
    spec["properties"]["keypoints"]["items"]["properties"]["z"] = {"type": ["number", "null"]}
    return struct_type(spec)


def action_struct() -> Any:
    """The Spark schema of one `posekit.action/1` event."""
    return struct_type(action_schema())
