"""The limbs of a schema for part affinity fields: every skeleton edge gets a field (two
channels, x and y), and the people are assembled along a spanning tree of the skeleton.

The tree is chosen once per schema, deterministically: the skeleton's edges in the schema's
order, each kept unless it would close a cycle (Kruskal's algorithm with the schema's order
as the priority, so the edges a schema lists first, usually the body's main chain, win). COCO's
19 edges give a 16-edge tree over the 17 keypoints: the face's triangle, the shoulder-hip
square and the ear-shoulder links lose one edge each. The grouping then visits the tree's
edges breadth-first from the keypoint with the most edges, so every limb joins a keypoint
that is already placed (or starts a new person) and no person ever needs merging.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posekit.schema import KeypointSchema
from posekit.utils.errors import UserError


@dataclass(frozen=True)
class Limbs:
    """The fields of a schema: `pairs` (L, 2) keypoint indices of each skeleton edge (field l
    points from pairs[l, 0] to pairs[l, 1]); `tree` the indices of the fields the grouping
    follows, in visiting order, and `tree_from` which end of each (0 or 1) is reached first;
    `flip` (L,) the field each one becomes in a mirrored image and `flip_sign` (L,) -1 where
    that field runs the other way round."""

    pairs: np.ndarray
    tree: np.ndarray
    tree_from: np.ndarray
    flip: np.ndarray
    flip_sign: np.ndarray

    @property
    def count(self) -> int:
        return len(self.pairs)


def schema_limbs(schema: KeypointSchema) -> Limbs:
    """The limbs of `schema`; a schema without a skeleton, or whose skeleton does not join all
    its keypoints, is refused (people could not be assembled)."""
    k = schema.num_keypoints
    edges = [(int(a), int(b)) for a, b in schema.skeleton if a != b]
    if not edges:
        raise UserError(f"pafpose needs a skeleton: schema {schema.name!r} has none (add "
                        "`skeleton:` to its YAML, pairs of keypoint names)")  # fmt: skip
    unique: dict[frozenset[int], tuple[int, int]] = {}
    for a, b in edges:
        unique.setdefault(frozenset((a, b)), (a, b))
    pairs = np.array(list(unique.values()), dtype=np.int64)
    parent = list(range(k))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    kept = []
    for e, (a, b) in enumerate(pairs):  # a handful of edges, once per schema
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            parent[ra] = rb
            kept.append(e)
    joined = {root(i) for i in range(k)}
    if len(joined) > 1:
        alone = [schema.keypoints[i] for i in range(k) if root(i) != root(0)]
        raise UserError(f"pafpose needs a skeleton that joins every keypoint; in schema "
                        f"{schema.name!r} these are not joined to {schema.keypoints[0]!r}: "
                        f"{', '.join(alone[:5])}")  # fmt: skip
    tree, tree_from = _breadth_first(pairs, kept, k)
    flip_idx = np.asarray(schema.flip_idx, dtype=np.int64)
    index = {(int(a), int(b)): e for e, (a, b) in enumerate(pairs)}
    flip, sign = np.zeros(len(pairs), np.int64), np.ones(len(pairs), np.int64)
    for e, (a, b) in enumerate(pairs):
        fa, fb = int(flip_idx[a]), int(flip_idx[b])
        if (fa, fb) in index:
            flip[e] = index[(fa, fb)]
        elif (fb, fa) in index:
            flip[e], sign[e] = index[(fb, fa)], -1
        else:
            raise UserError(f"schema {schema.name!r}: the mirror of skeleton edge "
                            f"{schema.keypoints[a]}-{schema.keypoints[b]} is not an edge "
                            "(the skeleton must be symmetric under its flip "
                            "permutation)")  # fmt: skip
    return Limbs(pairs, tree, tree_from, flip, sign)


def _breadth_first(pairs: np.ndarray, kept: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The tree's fields in breadth-first order from its busiest keypoint, and for each the
    end (0 or 1 of its pair) that the walk reaches first."""
    degree = np.bincount(pairs[kept].ravel(), minlength=k)
    start = int(np.argmax(degree))
    seen, order, ends, frontier = {start}, [], [], [start]
    while frontier:
        nxt = []
        for node in frontier:
            for e in kept:
                a, b = (int(v) for v in pairs[e])
                if e in order or node not in (a, b):
                    continue
                other = b if a == node else a
                if other not in seen:
                    seen.add(other)
                    order.append(e)
                    ends.append(0 if a == node else 1)
                    nxt.append(other)
        frontier = nxt
    return np.array(order, dtype=np.int64), np.array(ends, dtype=np.int64)
