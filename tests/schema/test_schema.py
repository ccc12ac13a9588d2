"""Keypoint schemas: presets, flip permutations from names, validation, YAML and round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posekit.schema import (
    DEFAULT_SIGMA,
    PRESETS,
    KeypointSchema,
    SchemaError,
    derive_flip_idx,
    get_schema,
)
from posekit.schema.presets import COCO17_SIGMAS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_and_round_trip(name: str) -> None:
    s = get_schema(name)
    assert all(s.flip_idx[s.flip_idx[i]] == i for i in range(s.num_keypoints))
    assert KeypointSchema.from_dict(s.to_dict()) == s


def test_coco17_matches_the_published_definition() -> None:
    s = get_schema("coco17")
    assert s.num_keypoints == 17 and len(s.skeleton) == 19
    assert s.sigmas == COCO17_SIGMAS
    assert s.sigmas[0] == pytest.approx(0.026) and s.sigmas[11] == pytest.approx(0.107)
    # bit-identical to pycocotools' `np.array([.26, ...]) / 10.0`
    published = [
        0.26,
        0.25,
        0.25,
        0.35,
        0.35,
        0.79,
        0.79,
        0.72,
        0.72,
        0.62,
        0.62,
        1.07,
        1.07,
        0.87,
        0.87,
        0.89,
        0.89,
    ]
    assert s.sigmas == tuple((np.array(published) / 10.0).tolist())
    assert s.flip_idx == (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
    assert (15, 13) in s.skeleton  # COCO's [16, 14] (left ankle - left knee), made 0-based


def test_face68_follows_ibug_order() -> None:
    s = get_schema("face68")
    assert s.num_keypoints == 68
    pairs = dict(s.flipped_pairs())
    assert pairs[0] == 16 and pairs[17] == 26 and pairs[36] == 45 and pairs[48] == 54
    assert s.flip_idx[30] == 30 and s.flip_idx[8] == 8  # nose tip, chin stay


def test_hand21_and_arm() -> None:
    hand = get_schema("hand21")
    assert hand.num_keypoints == 21 and hand.flip_idx == tuple(range(21))
    arm = get_schema("arm")
    assert arm.flipped_pairs() == [(4, 5)]
    assert arm.sigmas == (DEFAULT_SIGMA,) * 6


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["left_eye", "right_eye", "nose"], (1, 0, 2)),
        (["eye_left", "eye_right"], (1, 0)),
        (["l_paw", "r_paw", "tail"], (1, 0, 2)),
        (["leftear", "rightear", "snout"], (1, 0, 2)),
        (["paw_L", "paw_R"], (1, 0)),
        (["LeftHand", "RightHand"], (1, 0)),
        (["front-left-leg", "front-right-leg"], (1, 0)),
        (["left_eye", "nose"], (0, 1)),  # no partner: maps to itself
        (["clef", "left"], (0, 1)),  # 'left' alone has no mirror in the list
    ],
)
def test_flip_derived_from_names(names: list[str], expected: tuple[int, ...]) -> None:
    assert derive_flip_idx(names) == expected


def test_explicit_pairs_override_derived_ones() -> None:
    s = KeypointSchema.create(
        "x", ["a_left", "a_right", "b"], flip_pairs=[("a_left", "b")]
    )  # derived pair (a_left, a_right) is replaced; a_right maps to itself
    assert s.flip_idx == (2, 1, 0)


@pytest.mark.parametrize(
    ("flip", "message"),
    [
        ([1, 2, 0], r"flip pair 0 \(a\) -> 1 \(b\) is not mutual"),
        ([1, 1, 0], r"not a bijection: 0 \(a\) and 1 \(b\) both map to 1 \(b\)"),
        ([0, 1, 5], r"flip pair 2 \(c\) -> 5 is out of range for 3 keypoints"),
        ([0, 1], r"flip_idx has 2 entries, expected 3"),
    ],
)
def test_invalid_flip_names_the_offending_pair(flip: list[int], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        KeypointSchema.create("x", ["a", "b", "c"], flip_idx=flip)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"skeleton": [(0, 3)]}, r"skeleton edge \(0, 3\) out of range"),
        ({"skeleton": [("a", "zz")]}, "unknown keypoint 'zz'"),
        ({"sigmas": [0.1, 0.0, 0.1]}, "sigmas must be positive"),
        ({"sigmas": {"q": 0.1}}, r"sigmas given for unknown keypoints \['q'\]"),
        ({"flip_pairs": [("a", "nope")]}, "unknown keypoint 'nope'"),
    ],
)
def test_invalid_schemas(kwargs: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        KeypointSchema.create("x", ["a", "b", "c"], **kwargs)


def test_duplicate_names_rejected() -> None:
    with pytest.raises(SchemaError, match=r"duplicate keypoint names \['a'\]"):
        KeypointSchema.create("x", ["a", "a"])


def test_sigmas_by_name_with_default() -> None:
    s = KeypointSchema.create("x", ["a", "b"], sigmas={"b": 0.08}, default_sigma=0.03)
    assert s.sigmas == (0.03, 0.08)


def test_schema_from_yaml(tmp_path: Path) -> None:
    f = tmp_path / "robot.yaml"
    f.write_text(
        "name: robot\nkeypoints: [base, tip_left, tip_right]\n"
        "skeleton: [[base, tip_left], [0, 2]]\nsigmas: {base: 0.1}\n"
    )
    s = get_schema(f)
    assert s.name == "robot" and s.skeleton == ((0, 1), (0, 2))
    assert s.flip_idx == (0, 2, 1) and s.sigmas == (0.1, DEFAULT_SIGMA, DEFAULT_SIGMA)
    f.write_text("keypoints: [a, b]\nflip_idx: [1, 1]\n")
    with pytest.raises(SchemaError, match=r"robot\.yaml.*not a bijection"):
        get_schema(f)


def test_sides_for_colouring() -> None:
    s = get_schema("coco17")
    assert s.sides()[:3] == ("center", "left", "right")
    arm = get_schema("arm")
    assert arm.sides()[4:] == ("left", "right")
    assert arm.edge_sides() == ("center", "center", "center", "left", "right")


def test_unknown_preset() -> None:
    with pytest.raises(SchemaError, match="unknown schema 'dog'"):
        get_schema("dog")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("keypoints: [a, 1, b]", "keypoint names must be non-empty text, got 1"),
        ("keypoints: [a, null]", "keypoint names must be non-empty text, got None"),
        ("keypoints: abc", "'keypoints' must be a list of names"),
        ("keypoints: [a, b]\nskeleton: [[0, 1], [1, 0]]", "edge (0, 1) is listed more than once"),
    ],
)
def test_a_schema_file_with_unusable_values_is_one_line(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text + "\n")
    with pytest.raises(SchemaError) as e:
        get_schema(path)
    assert says in str(e.value) and str(path) in str(e.value)


def test_a_large_schema_loads_in_linear_time_and_errors_stay_short(tmp_path: Path) -> None:
    import time

    names = [f"k{i}" for i in range(40_000)]
    start = time.perf_counter()
    schema = KeypointSchema.create("many", names)
    assert schema.num_keypoints == 40_000 and time.perf_counter() - start < 5
    aliased = tmp_path / "aliased.yaml"
    edge = "[" + ", ".join(["x"] * 5000) + "]"
    aliased.write_text(f"e: &e {edge}\nkeypoints: [a, b]\nskeleton: [*e, *e, *e]\n")
    with pytest.raises(SchemaError) as e:
        get_schema(aliased)
    assert len(str(e.value)) < 400
