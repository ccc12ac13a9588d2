"""ONNX files opened safely: their external data stays beside them.

An ONNX file may keep tensors in other files, named by each tensor's `location`. A hostile file
can name `/etc/shadow`, `../../home/me/.ssh/id_rsa` or a link in its folder that leads out, and
a runtime that follows the name reads that file into a weight (recent ONNX Runtime versions
refuse absolute paths and `..`, older ones and other tools do not). `checked_model` reads the
graph without any external data and refuses a location that is not a file inside the model's
own folder, before anything else opens the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from posekit.utils.errors import UserError
from posekit.utils.extras import require
from posekit.utils.paths import escapes
from posekit.utils.serialization import UnsafeFileError


def _graph_tensors(graph: Any) -> Iterator[Any]:
    """Every tensor a graph holds: initialisers, sparse ones, node attributes, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _attribute_tensors(node.attribute)


def _attribute_tensors(attributes: Any) -> Iterator[Any]:
    for attr in attributes:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g)
        for g in attr.graphs:
            yield from _graph_tensors(g)


def external_locations(model: Any) -> list[tuple[str, str]]:
    """(tensor name, location) of every tensor whose data lies in another file."""
    onnx = require("onnx", "onnx", "reading .onnx files")
    tensors = list(_graph_tensors(model.graph))
    for fn in model.functions:
        for node in fn.node:
            tensors += _attribute_tensors(node.attribute)
    out = []
    for t in tensors:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = next((e.value for e in t.external_data if e.key == "location"), "")
            out.append((t.name, loc))
    return out


def checked_model(path: str | Path) -> Any:
    """The `ModelProto` of an ONNX file, read without its external data, after checking that
    every external data location is a file inside the file's folder (links followed).

    Raises:
        UnsafeFileError: a location is absolute, climbs out with `..`, or leads out through a
            link; the message names the tensor.
        ValueError: not a readable ONNX file (truncated, not protobuf).
    """
    onnx = require("onnx", "onnx", "reading .onnx files")
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and onnx's own: one line for the user
        raise UserError(f"{path}: not a readable ONNX file ({e})") from None
    folder = path.resolve().parent
    for name, loc in external_locations(model):
        why = escapes(loc)
        if why is None and not (folder / loc).resolve().is_relative_to(folder):
            why = "leads out of the model's folder through a link"
        if why is not None:
            raise UnsafeFileError(f"{path}: refused: tensor {name!r} keeps its data at "
                                  f"{loc!r}, which {why} (external data must be a file "
                                  "beside the model)")  # fmt: skip
    return model
