"""Layers point one way: schema/ops/utils -> data -> models -> engine/predict/eval/track/viz
-> export -> model.py -> serve -> cli. An import of a higher layer from a lower one (at module
level, inside a function, or for type checking alike) fails here, naming the file and line."""

from __future__ import annotations

import ast
from pathlib import Path

import posekit

ROOT = Path(posekit.__file__).parent
#: each top-level package or module of posekit and its layer (lower imports nothing higher)
LAYERS = {
    "schema": 0, "ops": 0, "utils": 0,
    "data": 1,
    "models": 2,
    "engine": 3, "predict": 3, "eval": 3, "track": 3, "viz": 3, "analytics": 3,
    "export": 4, "actions": 4, "threed": 4,
    "model": 5,
    "serve": 6,
    "cli": 7,
    "__init__": 8, "__main__": 8,
}  # fmt: skip


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(n, m) for n, m in out if m.startswith("posekit.")]


def test_every_module_has_a_layer() -> None:
    tops = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in ROOT.rglob("*.py")}
    assert tops <= set(LAYERS), sorted(tops - set(LAYERS))


def test_no_module_imports_a_higher_layer() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        top = path.relative_to(ROOT).parts[0].removesuffix(".py")
        for line, module in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = module.split(".")[1]
            if LAYERS.get(target, -1) > LAYERS[top]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not upward, "\n".join(upward)


def test_the_check_sees_an_upward_import() -> None:
    tree = ast.parse("def f():\n    from posekit.model import Model\n")
    assert _imports(tree) == [(2, "posekit.model")] and LAYERS["model"] > LAYERS["models"]
