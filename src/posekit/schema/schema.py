"""`KeypointSchema`: what the keypoints of one kind of object are called and how they relate.

A schema holds the ordered keypoint names, the skeleton edges (0-based), the horizontal-flip
permutation and the OKS sigmas. It is immutable and validated on construction, and it is saved
inside datasets (COCO categories), checkpoints and exported models so that every artefact is
self-describing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from posekit.utils.errors import UserError, quoted

#: Default OKS sigma for keypoints of custom schemas. Custom landmarks are usually point-like
#: features (tips, corners, a snout) that annotators place more consistently than COCO's large
#: joints (hips 0.107, knees 0.087) but less so than eyes (0.025). 0.05 sits between the two and
#: means OKS = 0.5 for an error of about 12 % of sqrt(box area); override it per keypoint.
DEFAULT_SIGMA = 0.05

Color = tuple[int, int, int]


class SchemaError(UserError):
    """A keypoint schema is inconsistent (names, skeleton, flip permutation or sigmas)."""


@dataclass(frozen=True)
class KeypointSchema:
    """Keypoint definition of one object category.

    Build it with `KeypointSchema.create` (which derives the flip permutation from names) or
    take a preset with `posekit.schema.get_schema("coco17")`.

    Example:
        >>> s = KeypointSchema.create("arm", ["base", "tip_left", "tip_right"], [(0, 1), (0, 2)])
        >>> s.flip_idx
        (0, 2, 1)
    """

    name: str
    keypoints: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    flip_idx: tuple[int, ...] = ()
    sigmas: tuple[float, ...] = ()
    edge_colors: tuple[Color, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        if k == 0:
            raise SchemaError(f"schema {self.name!r}: no keypoints")
        dupes = sorted(n for n, c in Counter(self.keypoints).items() if c > 1)
        if dupes:
            raise SchemaError(
                f"schema {quoted(self.name)}: duplicate keypoint names {quoted(dupes)}"
            )
        for a, b in self.skeleton:
            if not (0 <= a < k and 0 <= b < k):
                raise SchemaError(
                    f"schema {self.name!r}: skeleton edge ({a}, {b}) out of range for {k} keypoints"
                )
        if len(self.flip_idx) != k:
            raise SchemaError(
                f"schema {self.name!r}: flip_idx has {len(self.flip_idx)} entries, expected {k}"
            )
        validate_flip_idx(self.flip_idx, self.keypoints, where=f"schema {self.name!r}")
        if len(self.sigmas) != k:
            raise SchemaError(f"schema {self.name!r}: {len(self.sigmas)} sigmas for {k} keypoints")
        bad = [(n, s) for n, s in zip(self.keypoints, self.sigmas, strict=True) if not s > 0]
        if bad or not np.all(np.isfinite(self.sigmas)):
            raise SchemaError(f"schema {self.name!r}: sigmas must be positive and finite: {bad}")
        if self.edge_colors is not None and len(self.edge_colors) != len(self.skeleton):
            raise SchemaError(
                f"schema {self.name!r}: {len(self.edge_colors)} edge colours for "
                f"{len(self.skeleton)} skeleton edges"
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        name: str,
        keypoints: Sequence[str],
        skeleton: Iterable[Sequence[int | str]] = (),
        *,
        flip_idx: Sequence[int] | None = None,
        flip_pairs: Iterable[Sequence[int | str]] | None = None,
        sigmas: Sequence[float] | Mapping[str, float] | None = None,
        default_sigma: float = DEFAULT_SIGMA,
        edge_colors: Sequence[Sequence[int]] | None = None,
    ) -> KeypointSchema:
        """Build a schema, deriving what is not given.

        Args:
            name: category name, e.g. "person".
            keypoints: ordered keypoint names.
            skeleton: edges as 0-based index pairs or name pairs.
            flip_idx: full flip permutation (index i becomes flip_idx[i] after a horizontal flip).
            flip_pairs: explicit (a, b) pairs that override pairs derived from the names.
            sigmas: per-keypoint OKS sigmas, as a list or a {name: sigma} mapping (missing names
                get `default_sigma`).
            default_sigma: sigma for keypoints without an explicit one (see `DEFAULT_SIGMA`).
            edge_colors: optional BGR colour per skeleton edge.
        """
        where = f"schema {quoted(name)}"
        if isinstance(keypoints, str | bytes) or not isinstance(keypoints, Sequence):
            raise SchemaError(f"{where}: 'keypoints' must be a list of names")
        bad = [n for n in keypoints if not isinstance(n, str) or not n][:1]
        if bad:
            raise SchemaError(
                f"{where}: keypoint names must be non-empty text, got {quoted(bad[0])}"
            )
        names = tuple(keypoints)
        index = {n: i for i, n in enumerate(names)}
        try:  # every value a schema holds is a plain number: anything else is named here
            edges = tuple(_edge(e, index, where) for e in skeleton)
            twice = next((e for e, n in Counter(map(frozenset, edges)).items() if n > 1), None)
            if twice is not None:
                a, b = sorted(twice) * (2 if len(twice) == 1 else 1)
                raise SchemaError(f"{where}: skeleton edge ({a}, {b}) is listed more than once")
            if flip_idx is not None:
                if flip_pairs is not None:
                    raise SchemaError(f"{where}: give flip_idx or flip_pairs, not both")
                flip = tuple(int(i) for i in flip_idx)
            else:
                flip = derive_flip_idx(names)
                if flip_pairs is not None:
                    flip = _apply_pairs(flip, flip_pairs, index, where)
            if sigmas is None:
                sig = (float(default_sigma),) * len(names)
            elif isinstance(sigmas, Mapping):
                unknown = sorted(set(sigmas) - set(names))
                if unknown:
                    raise SchemaError(f"{where}: sigmas given for unknown keypoints {unknown}")
                sig = tuple(float(sigmas.get(n, default_sigma)) for n in names)
            else:
                sig = tuple(float(s) for s in sigmas)
            colors = None
            if edge_colors is not None:
                colors = tuple(tuple(int(c) for c in col) for col in edge_colors)
        except SchemaError:
            raise
        except (TypeError, ValueError, OverflowError) as e:
            raise SchemaError(f"{where}: an edge, flip index, sigma or colour is not a number "
                              f"({type(e).__name__}: {str(e)[:100]})") from None  # fmt: skip
        return cls(name, names, edges, flip, sig, colors)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, name: str | None = None) -> KeypointSchema:
        """Build from a plain mapping (a YAML file or a saved checkpoint's `to_dict`)."""
        if "keypoints" not in d:
            raise SchemaError("schema mapping has no 'keypoints' list")
        return cls.create(
            name or d.get("name", "object"),
            d["keypoints"],
            d.get("skeleton", ()),
            flip_idx=d.get("flip_idx"),
            flip_pairs=d.get("flip_pairs"),
            sigmas=d.get("sigmas"),
            default_sigma=d.get("default_sigma", DEFAULT_SIGMA),
            edge_colors=d.get("edge_colors"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable form; `from_dict(to_dict())` gives an equal schema."""
        d: dict[str, Any] = {
            "name": self.name,
            "keypoints": list(self.keypoints),
            "skeleton": [list(e) for e in self.skeleton],
            "flip_idx": list(self.flip_idx),
            "sigmas": list(self.sigmas),
        }
        if self.edge_colors is not None:
            d["edge_colors"] = [list(c) for c in self.edge_colors]
        return d

    # ------------------------------------------------------------------ views
    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def index(self, keypoint: str) -> int:
        """Index of a keypoint by name (KeyError naming the known keypoints otherwise)."""
        try:
            return self.keypoints.index(keypoint)
        except ValueError:
            raise KeyError(
                f"{keypoint!r} is not a keypoint of {self.name!r}: {list(self.keypoints)}"
            ) from None

    @property
    def sigmas_array(self) -> np.ndarray:
        return np.asarray(self.sigmas, dtype=np.float64)

    @property
    def flip_array(self) -> np.ndarray:
        return np.asarray(self.flip_idx, dtype=np.int64)

    def sides(self) -> tuple[str, ...]:
        """'left', 'right' or 'center' per keypoint, for colouring limbs by side.

        Names decide first; a flip pair whose names carry no side gets left for its first member.
        """
        out = []
        for i, n in enumerate(self.keypoints):
            side = _name_side(n)
            if side is None:
                j = self.flip_idx[i]
                side = "center" if j == i else ("left" if i < j else "right")
            out.append(side)
        return tuple(out)

    def edge_sides(self) -> tuple[str, ...]:
        """Side of each skeleton edge: left/right when an endpoint is, else center."""
        sides = self.sides()
        out = []
        for a, b in self.skeleton:
            pair = {sides[a], sides[b]}
            out.append(
                "left"
                if "left" in pair and "right" not in pair
                else "right"
                if "right" in pair and "left" not in pair
                else "center"
            )
        return tuple(out)

    def flipped_pairs(self) -> list[tuple[int, int]]:
        """The (i, j) pairs with i < j that swap under a horizontal flip."""
        return [(i, j) for i, j in enumerate(self.flip_idx) if i < j]


# ---------------------------------------------------------------------- flip permutation
_SEP = r"[_\-\s.]"
_SWAP = {"left": "right", "right": "left", "l": "r", "r": "l"}


def _mirror_candidates(name: str) -> list[str]:
    """Names that `name` could be the mirror image of, by the usual left/right spellings."""
    low = name.lower()
    out = []
    # token swap: left_eye, eye_left, l_eye, eye_l, hand-left-tip, ...
    tokens = re.split(f"({_SEP})", low)
    swapped = [_SWAP.get(t, t) for t in tokens]
    if swapped != tokens:
        out.append("".join(swapped))
    # glued prefix/suffix: leftear / rightear, earleft / earright
    for a, b in (("left", "right"), ("right", "left")):
        if low.startswith(a) and len(low) > len(a):
            out.append(b + low[len(a) :])
        if low.endswith(a) and len(low) > len(a):
            out.append(low[: -len(a)] + b)
    return out


def _name_side(name: str) -> str | None:
    low = name.lower()
    tokens = set(re.split(_SEP, low))
    if "left" in tokens or "l" in tokens or low.startswith("left") or low.endswith("left"):
        return "left"
    if "right" in tokens or "r" in tokens or low.startswith("right") or low.endswith("right"):
        return "right"
    return None


def derive_flip_idx(names: Sequence[str]) -> tuple[int, ...]:
    """Flip permutation from left/right naming (`left_*`, `*_right`, `l_*`, `leftear`, ...).

    Keypoints without a mirrored partner map to themselves. A pair is only formed when both
    names point at each other, so ambiguous names never create a non-bijective permutation.
    """
    lower = {n.lower(): i for i, n in enumerate(names)}
    flip = list(range(len(names)))
    for i, n in enumerate(names):
        for cand in _mirror_candidates(n):
            j = lower.get(cand)
            if j is not None and j != i:
                back = [lower.get(c) for c in _mirror_candidates(names[j])]
                if i in back:
                    flip[i] = j
                    break
    return tuple(flip)


def validate_flip_idx(flip: Sequence[int], names: Sequence[str], *, where: str) -> None:
    """Raise `SchemaError` naming the offending pair unless `flip` is a valid flip permutation.

    Valid means: every entry in range, a bijection, and an involution (flipping twice is the
    identity), so that swapping i -> flip[i] is consistent with swapping flip[i] -> i.
    """
    k = len(names)

    def label(i: int) -> str:
        return f"{i} ({names[i]})" if 0 <= i < k else str(i)

    for i, j in enumerate(flip):
        if not 0 <= j < k:
            raise SchemaError(
                f"{where}: flip pair {label(i)} -> {j} is out of range for {k} keypoints"
            )
    seen: dict[int, int] = {}
    for i, j in enumerate(flip):
        if j in seen:
            raise SchemaError(
                f"{where}: flip permutation is not a bijection: {label(seen[j])} and "
                f"{label(i)} both map to {label(j)}"
            )
        seen[j] = i
    for i, j in enumerate(flip):
        if flip[j] != i:
            raise SchemaError(
                f"{where}: flip pair {label(i)} -> {label(j)} is not mutual "
                f"({label(j)} maps to {label(flip[j])})"
            )


def _to_index(ref: int | str, index: Mapping[str, int], where: str, what: str) -> int:
    if isinstance(ref, str) and ref in index:
        return index[ref]
    if isinstance(ref, int | np.integer) and not isinstance(ref, bool):
        return int(ref)
    raise SchemaError(f"{where}: {what} refers to unknown keypoint {quoted(ref)}")


def _edge(e: Sequence[int | str], index: Mapping[str, int], where: str) -> tuple[int, int]:
    if len(e) != 2:
        raise SchemaError(f"{where}: skeleton edge {quoted(e)} must have two ends")
    a = _to_index(e[0], index, where, f"skeleton edge {quoted(e)}")
    b = _to_index(e[1], index, where, f"skeleton edge {quoted(e)}")
    return a, b


def _apply_pairs(
    flip: tuple[int, ...],
    pairs: Iterable[Sequence[int | str]],
    index: Mapping[str, int],
    where: str,
) -> tuple[int, ...]:
    """Override derived flip pairs with explicit ones; old partners become self-mapped."""
    out = list(flip)
    k = len(out)
    for p in pairs:
        if len(p) != 2:
            raise SchemaError(f"{where}: flip pair {quoted(p)} must have two ends")
        a = _to_index(p[0], index, where, f"flip pair {quoted(p)}")
        b = _to_index(p[1], index, where, f"flip pair {quoted(p)}")
        if not (0 <= a < k and 0 <= b < k):
            raise SchemaError(f"{where}: flip pair {quoted(p)} is out of range for {k} keypoints")
        for x in (a, b):
            old = out[x]
            if old != x:
                out[old] = old
        out[a], out[b] = b, a
    return tuple(out)
