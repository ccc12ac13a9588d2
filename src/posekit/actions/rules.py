"""Action rules: what to recognise in a track's keypoints, read from a YAML file.

```yaml
rules:
  - name: squat
    kind: repetitions
    angle: [left_hip, left_knee, left_ankle]
    low: 100
    high: 160
  - {name: fall, kind: fall, drop: 0.35}
  - {name: at-the-door, kind: dwell, zone: [[0, 0], [200, 0], [200, 480], [0, 480]], seconds: 3}
  - {name: arm-out, kind: envelope, keypoints: [wrist], box: [100, 50, 540, 430]}
  - {name: running, kind: speed, keypoint: box_center, threshold: 400}
```

Coordinates are pixels of the original frame (as in the events), times are seconds of the
events' timestamps. A point is a keypoint name or `box_center`. Every rule may name a `class`
(only tracks of that class, or of a list of classes) and a `kpt_conf` (keypoints below it
count as missing). Each kind is a dataclass whose fields are the YAML keys; an unknown key, a
missing one, a value of another type or out of range is an error naming the file, the rule
and the key.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from posekit.predict.predictor import PredictConfig
from posekit.utils.errors import UserError, quoted

#: the point that stands for the whole object: the centre of its box
BOX_CENTER = "box_center"

#: metadata of a field that a rule must give (its default is only a placeholder)
REQUIRED = {"required": True}


@dataclass(frozen=True)
class Rule:
    """Fields every rule has."""

    kind: ClassVar[str]
    name: str = field(default="", metadata=REQUIRED)
    # only tracks of this class, or of any of these classes
    class_name: str | tuple[str, ...] | None = field(default=None, metadata={"key": "class"})
    kpt_conf: float = PredictConfig.kpt_conf  # keypoints below this confidence are missing

    def applies_to(self, class_name: str) -> bool:
        """Whether the rule reads tracks of `class_name`."""
        if self.class_name is None:
            return True
        if isinstance(self.class_name, str):
            return class_name == self.class_name
        return class_name in self.class_name

    def points(self) -> tuple[str, ...]:
        """The keypoints (or `box_center`) the rule reads."""
        raise NotImplementedError

    def horizon(self) -> float:
        """Seconds of a track's past the rule looks back over (kept in the state)."""
        return 0.0

    def check(self) -> None:
        if not 0 <= self.kpt_conf <= 1:
            raise ValueError("'kpt_conf' must be in [0, 1]")


@dataclass(frozen=True)
class Repetitions(Rule):
    """Counts a movement with hysteresis on a joint angle (degrees at the middle keypoint, as
    `posekit.analytics.joint_angle`): one repetition is a fall below `low` followed by a rise
    above `high` (`posekit.analytics.RepetitionCounter`'s rule)."""

    kind: ClassVar[str] = "repetitions"
    angle: tuple[str, str, str] = field(default=("", "", ""), metadata=REQUIRED)
    low: float = field(default=math.nan, metadata=REQUIRED)
    high: float = field(default=math.nan, metadata=REQUIRED)

    def points(self) -> tuple[str, ...]:
        return tuple(self.angle)

    def check(self) -> None:
        super().check()
        if len(self.angle) != 3 or not all(isinstance(a, str) and a for a in self.angle):
            raise ValueError("'angle' must be three keypoint names, e.g. [hip, knee, ankle]")
        if not 0 <= self.low < self.high <= 180:
            raise ValueError(f"need 0 <= low < high <= 180, got low {self.low}, high {self.high}")


@dataclass(frozen=True)
class Fall(Rule):
    """The hips (mean height of `keypoints`) drop by `drop` box heights (the box before the
    drop) within `window` seconds and stay at least that low for `hold` seconds."""

    kind: ClassVar[str] = "fall"
    keypoints: tuple[str, ...] = ("left_hip", "right_hip")
    drop: float = 0.35
    window: float = 1.0
    hold: float = 1.0

    def points(self) -> tuple[str, ...]:
        return tuple(self.keypoints)

    def horizon(self) -> float:
        return self.window + self.hold

    def check(self) -> None:
        super().check()
        if not self.keypoints:
            raise ValueError("'keypoints' must name at least one keypoint")
        if not 0 < self.drop <= 2:
            raise ValueError("'drop' must be in (0, 2] box heights")
        if self.window <= 0 or self.hold <= 0:
            raise ValueError("'window' and 'hold' must be positive seconds")


@dataclass(frozen=True)
class Dwell(Rule):
    """`point` stays inside the polygon `zone` for longer than `seconds` (one event per stay,
    when the time is reached; frames where the point is missing do not end a stay)."""

    kind: ClassVar[str] = "dwell"
    zone: tuple[tuple[float, float], ...] = field(default=(), metadata=REQUIRED)
    seconds: float = field(default=math.nan, metadata=REQUIRED)
    point: str = BOX_CENTER

    def points(self) -> tuple[str, ...]:
        return (self.point,)

    def check(self) -> None:
        super().check()
        _check_polygon(self.zone, "zone")
        if not self.seconds >= 0:
            raise ValueError("'seconds' must be a duration >= 0")


@dataclass(frozen=True)
class Envelope(Rule):
    """A keypoint leaves its allowed region: a `box` [x1, y1, x2, y2] or a `polygon` (one
    event each time one of `keypoints` goes outside, naming it; a track first seen outside
    counts as leaving)."""

    kind: ClassVar[str] = "envelope"
    keypoints: tuple[str, ...] = field(default=(), metadata=REQUIRED)
    box: tuple[float, float, float, float] | None = None
    polygon: tuple[tuple[float, float], ...] | None = None

    def points(self) -> tuple[str, ...]:
        return tuple(self.keypoints)

    def region(self) -> tuple[tuple[float, float], ...]:
        if self.polygon is not None:
            return self.polygon
        x1, y1, x2, y2 = self.box  # type: ignore[misc]
        return ((x1, y1), (x2, y1), (x2, y2), (x1, y2))

    def check(self) -> None:
        super().check()
        if not self.keypoints:
            raise ValueError("'keypoints' must name at least one keypoint")
        if (self.box is None) == (self.polygon is None):
            raise ValueError("give exactly one of 'box' and 'polygon'")
        if self.box is not None:
            if len(self.box) != 4 or not (self.box[0] < self.box[2] and self.box[1] < self.box[3]):
                raise ValueError("'box' must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2")
        else:
            _check_polygon(self.polygon or (), "polygon")


@dataclass(frozen=True)
class Speed(Rule):
    """`point` moves faster than `threshold` px/s, measured as its displacement over the last
    `window` seconds (one event each time it becomes fast)."""

    kind: ClassVar[str] = "speed"
    threshold: float = field(default=math.nan, metadata=REQUIRED)
    point: str = BOX_CENTER
    window: float = 0.5

    def points(self) -> tuple[str, ...]:
        return (self.point,)

    def horizon(self) -> float:
        return self.window

    def check(self) -> None:
        super().check()
        if not self.threshold > 0:
            raise ValueError("'threshold' must be a speed > 0 in px/s")
        if not self.window > 0:
            raise ValueError("'window' must be positive seconds")


#: every kind of rule, by its `kind`
KINDS: dict[str, type[Rule]] = {k.kind: k for k in (Repetitions, Fall, Dwell, Envelope, Speed)}


#: Most corners a zone or envelope polygon may have (each frame tests every point against
#: every edge).
MAX_POLYGON_POINTS = 1000


def _check_polygon(points: Any, key: str) -> None:
    if len(points) < 3 or any(len(p) != 2 for p in points):
        raise ValueError(f"'{key}' must be a polygon of at least 3 [x, y] points")
    if len(points) > MAX_POLYGON_POINTS:
        raise ValueError(f"'{key}' has {len(points)} points; at most {MAX_POLYGON_POINTS}")


def _split_top(text: str) -> list[str]:
    """The comma-separated parts of `text` outside brackets ("tuple[str, str], float")."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return [*parts, text[start:].strip()]


def _typed(value: Any, annotation: str) -> Any:
    """`value` (from YAML) checked against a rule field's annotation and frozen: a number
    where a float goes (finite, not a boolean), text where a str goes, and a list where a tuple
    goes (as a tuple, each element checked), so that a value never silently fails to match."""
    optional = annotation.endswith(" | None")
    kind = annotation.removesuffix(" | None")
    if value is None and optional:
        return None
    alternatives = [a.strip() for a in _split_top(kind.replace(" | ", ","))]
    if len(alternatives) > 1:  # e.g. one class name, or a list of them
        wrong = None
        for alternative in alternatives:
            try:
                return _typed(value, alternative)
            except ValueError as e:
                wrong = e
        raise wrong  # type: ignore[misc]
    if kind.startswith("tuple[") and kind.endswith(", ...]") and not isinstance(value, list):
        value = [value]  # one item given alone (`keypoints: wrist`): a list of one
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {quoted(value)}")
        if not math.isfinite(value):
            raise ValueError(f"{quoted(value)} is not a finite number")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {quoted(value)}")
        return value
    if kind.startswith("tuple[") and kind.endswith("]"):
        if not isinstance(value, list):
            raise ValueError(f"must be a list, got {quoted(value)}")
        inner = _split_top(kind[len("tuple[") : -1])
        if inner[-1] == "...":
            if len(value) > MAX_POLYGON_POINTS:
                raise ValueError(f"has {len(value)} entries; at most {MAX_POLYGON_POINTS}")
            return tuple(_typed(v, inner[0]) for v in value)
        if len(value) != len(inner):
            raise ValueError(f"must be a list of {len(inner)}, got {quoted(value)}")
        return tuple(_typed(v, t) for v, t in zip(value, inner, strict=True))
    raise TypeError(f"no check for a rule field of type {annotation}")  # a programming error


def rule_from_dict(data: Any, where: str) -> Rule:
    """One rule from its YAML mapping; errors start with `where`."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: a rule must be a mapping with 'name' and 'kind'")
    name = data.get("name")
    label = f"{where} ({name})" if name else where
    kind = KINDS.get(str(data.get("kind")))
    if kind is None:
        raise UserError(
            f"{label}: 'kind' must be one of {', '.join(KINDS)}, got {data.get('kind')!r}"
        )
    keys = {f.metadata.get("key", f.name): f for f in fields(kind)}
    unknown = sorted(set(data) - set(keys) - {"kind"})
    if unknown:
        raise UserError(f"{label}: unknown key(s) {', '.join(unknown)}; a {kind.kind} rule takes "
                        f"{', '.join(sorted(keys))}")  # fmt: skip
    values = {}
    for key, f in keys.items():
        if key in data:
            try:
                values[f.name] = _typed(data[key], str(f.type))
            except ValueError as e:
                raise UserError(f"{label}: '{key}': {e}") from None
        elif f.default is MISSING or f.metadata.get("required"):
            raise UserError(f"{label}: a {kind.kind} rule needs '{key}'")
    if not isinstance(values.get("name"), str) or not values["name"]:
        raise UserError(f"{label}: 'name' must be a non-empty string")
    try:
        rule = kind(**values)
        rule.check()
    except (TypeError, ValueError) as e:
        raise UserError(f"{label}: {e}") from None
    return rule


def load_rules(path: str | Path) -> tuple[Rule, ...]:
    """The rules of a YAML file (`rules:` list), validated; names must be unique."""
    from posekit.data.yamlfile import load_yaml

    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise UserError(f"{path}: expected a mapping with a non-empty 'rules' list")
    rules = tuple(rule_from_dict(r, f"{path}: rule {i + 1}") for i, r in enumerate(data["rules"]))
    names = [r.name for r in rules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{path}: rule names must be unique; repeated: {', '.join(twice)}")
    return rules
