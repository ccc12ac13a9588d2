"""The rules' logic (posekit.actions.detect) on recorded events, without Spark: each rule finds
what the recording holds and nothing else, the same numbers as posekit.analytics, and the
same actions whether a track's frames come at once or in pieces (as Spark's micro-batches
deliver them), once each however often a frame is delivered."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from posekit.actions import detect_actions, load_rules
from posekit.actions.detect import (
    event_columns,
    finish_action,
    needed_points,
    range_min,
    step_track,
)
from posekit.actions.rules import MAX_POLYGON_POINTS, Dwell, Envelope, Fall, Repetitions, Speed
from posekit.analytics import RepetitionCounter, joint_angle
from posekit.track.synth_motion import FPS, events_of, fall, figure, squats
from posekit.utils.errors import UserError

SQUAT = Repetitions(name="squat", angle=("left_hip", "left_knee", "left_ankle"), low=100, high=160)
FALL = Fall(name="fall")
DOOR = Dwell(name="door", zone=((0, 0), (500, 0), (500, 720), (0, 720)), seconds=2.0)
ARM = Envelope(name="arm", keypoints=("left_wrist", "right_wrist"), box=(300, 0, 700, 720))
RUN = Speed(name="run", threshold=300.0, window=0.5)
ALL = (SQUAT, FALL, DOOR, ARM, RUN)


def _of(actions: list[dict], rule: str) -> list[dict]:
    return [a for a in actions if a["rule"] == rule]


def test_repetitions_count_the_squats_with_the_analytics_numbers() -> None:
    events = events_of({1: squats(5), 2: squats(2, start=3.0, hip=(900.0, 300.0))})
    reps = _of(detect_actions(events, [SQUAT]), "squat")
    for track, count in ((1, 5), (2, 2)):
        mine = [a for a in reps if a["track_id"] == track]
        assert [a["count"] for a in mine] == list(range(1, count + 1))
        # posekit.analytics on the same events: the same angle and the same count
        evs = [e for e in events if e["track_id"] == track]
        kp = np.array([[[k["x"], k["y"], k["confidence"]] for k in e["keypoints"]] for e in evs])
        angle = joint_angle(kp, (11, 13, 15), kpt_conf=SQUAT.kpt_conf)
        counter = RepetitionCounter(SQUAT.low, SQUAT.high)
        assert counter.count(angle) == count
        for value in angle:
            counter.update(value)
        assert [evs[i]["frame"] for i in counter.events] == [a["end_frame"] for a in mine]
    first = next(a for a in reps if a["track_id"] == 1)
    # the first squat starts at 1 s: the last frame above 160 degrees is just after it
    assert 1.0 <= first["start_time"] < first["end_time"] < 3.0


def test_a_fall_is_found_once_at_its_time_and_squats_are_not_falls() -> None:
    events = events_of({1: fall(2.0), 2: squats(4, hip=(200.0, 300.0))})
    falls = _of(detect_actions(events, [FALL]), "fall")
    assert [a["track_id"] for a in falls] == [1]
    a = falls[0]
    # the hips are down from 2.5 s; confirmed one `hold` later
    assert 2.0 < a["start_time"] <= 2.5 + 1 / FPS and a["end_time"] == pytest.approx(
        a["start_time"] + FALL.hold, abs=1.5 / FPS
    )


def test_a_slow_sit_down_is_not_a_fall() -> None:
    events = events_of({1: fall(1.0, duration=3.0)})  # 3 s to get down: not within 1 s
    assert detect_actions(events, [FALL]) == []


def test_dwell_reports_each_stay_once_when_its_time_is_reached() -> None:
    # a figure walks right at 100 px/s from x=100: inside x<500 for 4 s, then out
    walk = [figure((100.0 + 100.0 * f / FPS, 300.0), 300.0, 175.0) for f in range(int(7 * FPS))]
    dwell = _of(detect_actions(events_of({3: walk}), [DOOR]), "door")
    assert len(dwell) == 1
    assert dwell[0]["start_frame"] == 0 and dwell[0]["end_time"] == pytest.approx(2.0)
    assert dwell[0]["value"] == pytest.approx(2.0)
    short = Dwell(name="door", zone=DOOR.zone, seconds=5.0)  # never that long inside
    assert detect_actions(events_of({3: walk}), [short]) == []


def test_envelope_names_the_keypoint_that_left_and_counts_each_exit() -> None:
    walk = [figure((400.0 + 150.0 * np.sin(f / FPS * 2), 300.0), 300.0, 175.0)
            for f in range(int(6 * FPS))]  # fmt: skip
    got = _of(detect_actions(events_of({1: walk}), [ARM]), "arm")
    xs = np.array([k[9, 0] for k in walk]), np.array([k[10, 0] for k in walk])
    for name, x in zip(("left_wrist", "right_wrist"), xs, strict=True):
        outside = (x < 300) | (x > 700)
        exits = np.count_nonzero(outside[1:] & ~outside[:-1]) + int(outside[0])
        mine = [a for a in got if a["keypoint"] == name]
        assert len(mine) == exits > 0
        assert all(outside[a["end_frame"]] and not outside[a["end_frame"] - 1] for a in mine)


def test_a_missed_frame_outside_the_envelope_is_not_a_second_exit() -> None:
    # the right wrist (x = hip + 27) goes past x = 700 from frame 30 to 89, the left stays in
    track = [figure((400.0 + (320.0 if 30 <= f < 90 else 0.0), 300.0), 300.0, 175.0)
             for f in range(120)]  # fmt: skip
    events = events_of({1: track})
    for e in events[50:55]:  # the right wrist is missed while it is out
        e["keypoints"][10]["confidence"] = 0.0
    got = detect_actions(events, [ARM])
    assert [(a["keypoint"], a["end_frame"]) for a in got] == [("right_wrist", 30)]


def test_speed_fires_when_the_point_runs_and_not_while_it_walks() -> None:
    # walk at 100 px/s for 2 s, run at 500 px/s for 1 s, walk again
    x, xs = 100.0, []
    for f in range(int(5 * FPS)):
        t = f / FPS
        x += (500.0 if 2.0 <= t < 3.0 else 100.0) / FPS
        xs.append(x)
    track = [figure((v, 300.0), 300.0, 175.0) for v in xs]
    fast = _of(detect_actions(events_of({1: track}), [RUN]), "run")
    assert len(fast) == 1 and 2.0 < fast[0]["end_time"] < 2.6 and fast[0]["value"] > 300


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pieces_give_the_same_actions_as_the_whole_and_repeats_count_once(seed: int) -> None:
    rng = np.random.default_rng(seed)
    walk = [figure((100.0 + 120.0 * f / FPS, 300.0 + 60 * np.sin(f / 9)), 300.0,
                   175.0 - 90 * (np.sin(f / 15) > 0)) for f in range(int(8 * FPS))]  # fmt: skip
    events = events_of({1: walk + fall(1.0, hip=(900.0, 300.0))[: int(4 * FPS)]})
    whole = detect_actions(events, ALL)
    assert {a["kind"] for a in whole} >= {"repetitions", "dwell", "envelope", "fall"}
    points = needed_points(ALL)
    state, pieces = None, []
    cuts = np.sort(rng.choice(np.arange(1, len(events)), size=12, replace=False))
    for chunk in np.split(np.arange(len(events)), cuts):
        lo = max(int(chunk[0]) - int(rng.integers(0, 5)), 0)  # some frames delivered twice
        piece = [events[i] for i in range(lo, int(chunk[-1]) + 1)]
        piece = [piece[i] for i in rng.permutation(len(piece))]  # in any order within a batch
        actions, state = step_track(ALL, event_columns(piece, points), "person", state)
        pieces += [finish_action(a, "cam0.mp4", 1, "person") for a in actions]
    key = lambda a: (a["end_frame"], a["rule"], a["keypoint"] or "")  # noqa: E731
    assert sorted(pieces, key=key) == sorted(whole, key=key)
    if seed == 0:  # one frame per call: every boundary a rule's state can straddle
        state, single = None, []
        for e in events:
            actions, state = step_track(ALL, event_columns([e], points), "person", state)
            single += [finish_action(a, "cam0.mp4", 1, "person") for a in actions]
        assert sorted(single, key=key) == sorted(whole, key=key)


def test_sources_and_tracks_are_kept_apart_when_they_interleave() -> None:
    a = events_of({1: squats(2)}, source="left.mp4")
    b = events_of({1: squats(3)}, source="right.mp4")
    mixed = [e for pair in zip(a, b, strict=False) for e in pair] + a[len(b) :] + b[len(a) :]
    got = detect_actions(mixed, [SQUAT])
    assert [(x["source"], x["count"]) for x in got] == [
        ("left.mp4", 1),
        ("left.mp4", 2),
        ("right.mp4", 1),
        ("right.mp4", 2),
        ("right.mp4", 3),
    ]


def test_missing_keypoints_do_not_count_or_break_a_repetition() -> None:
    track = squats(3)
    events = events_of({1: track})
    for e in events[40:70]:  # the knee is not seen during the first squat's dip
        e["keypoints"][13]["confidence"] = 0.01
    got = detect_actions(events, [SQUAT])
    assert [a["count"] for a in got] == [1, 2]  # the first dip was never seen below 100


def test_range_min_matches_a_loop() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=200)
    lo = rng.integers(0, 200, size=500)
    hi = np.minimum(lo + rng.integers(0, 60, size=500), 200)
    want = [v[a:b].min() if b > a else np.inf for a, b in zip(lo, hi, strict=True)]
    np.testing.assert_array_equal(range_min(v, lo, hi), want)


def test_rules_file_errors_name_the_rule_and_the_key(tmp_path: Path) -> None:
    good = tmp_path / "rules.yaml"
    good.write_text("rules:\n  - {name: squat, kind: repetitions, angle: [a, b, c], low: 90, "
                    "high: 160, class: person}\n  - {name: f, kind: fall}\n")  # fmt: skip
    squat, f = load_rules(good)
    assert squat == Repetitions(name="squat", angle=("a", "b", "c"), low=90, high=160,
                                class_name="person")  # fmt: skip
    assert f == Fall(name="f")
    cases = {
        "rules: []": "non-empty 'rules' list",
        "rules:\n  - {name: x, kind: jump}": "rule 1 (x): 'kind' must be one of repetitions",
        "rules:\n  - {name: x, kind: dwell, seconds: 2}": "rule 1 (x): a dwell rule needs 'zone'",
        "rules:\n  - {name: x, kind: repetitions, angle: [a, b, c], low: 170, high: 160}":
            "rule 1 (x): need 0 <= low < high",
        "rules:\n  - {name: x, kind: speed, threshold: 5, widnow: 1}": "unknown key(s) widnow",
        "rules:\n  - {name: x, kind: envelope, keypoints: [a]}": "exactly one of 'box'",
        "rules:\n  - {name: x, kind: fall}\n  - {name: x, kind: fall}": "repeated: x",
        "rules:\n  - {name: x, kind: speed, threshold: .inf}": "'threshold': inf is not a finite",
        "rules:\n  - {kind: fall}": "rule 1: a fall rule needs 'name'",
    }  # fmt: skip
    for text, message in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_rules(bad)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{name: x, kind: fall, class: [a, 2]}", "'class': must be text"),
        ("{name: x, kind: repetitions, angle: elbow, low: 1, high: 2}", "'angle': must be a list"),
        ("{name: x, kind: speed, threshold: fast}", "'threshold': must be a number, got 'fast'"),
        (
            "{name: x, kind: dwell, seconds: 1, zone: [[0, 0], [1, '0'], [1, 1]]}",
            "'zone': must be a number",
        ),
        (
            "{name: x, kind: repetitions, angle: [a, b], low: 1, high: 2}",
            "'angle': must be a list of 3",
        ),
    ],
)
def test_a_value_that_would_never_match_is_refused(tmp_path: Path, text: str, says: str) -> None:
    """Values read as something else than meant (a name as its letters, a string number)
    are one line naming the key, never a rule that silently never fires."""
    bad = tmp_path / "rules.yaml"
    bad.write_text(f"rules:\n  - {text}\n")
    with pytest.raises(UserError, match=re.escape(says)):
        load_rules(bad)


def test_one_keypoint_alone_and_a_list_of_classes_mean_what_they_say(tmp_path: Path) -> None:
    """`keypoints: wrist` is the keypoint wrist (not the letters w, r, i, s, t), and
    `class: [a, b]` a rule for tracks of either class."""
    good = tmp_path / "rules.yaml"
    good.write_text(
        "rules:\n  - {name: e, kind: envelope, keypoints: wrist, box: [0, 0, 10, 10]}\n"
        "  - {name: f, kind: speed, threshold: 5, class: [a, b]}\n"
    )
    envelope, speed = load_rules(good)
    assert envelope.points() == ("wrist",) and speed.class_name == ("a", "b")
    assert speed.applies_to("b") and not speed.applies_to("c") and envelope.applies_to("c")


def test_numbers_are_read_as_yaml_1_2_writes_them(tmp_path: Path) -> None:
    good = tmp_path / "rules.yaml"
    good.write_text("rules:\n  - {name: x, kind: speed, threshold: 1e3, window: 5E-1}\n")
    (rule,) = load_rules(good)
    assert rule.threshold == 1000.0 and rule.window == 0.5


def test_a_polygon_is_bounded_and_aliases_cannot_expand_without_bound(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    corners = ", ".join(f"[{i}, {i % 7}]" for i in range(MAX_POLYGON_POINTS + 1))
    big.write_text(f"rules:\n  - {{name: x, kind: dwell, seconds: 1, zone: [{corners}]}}\n")
    with pytest.raises(UserError, match=f"at most {MAX_POLYGON_POINTS}"):
        load_rules(big)
    # 9 levels of 9 aliases: 9^9 references in 600 bytes
    levels = ["a0: &a0 [0, 0]"]
    for i in range(1, 10):
        levels.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(
        "\n".join(levels) + "\nrules:\n  - {name: x, kind: dwell, seconds: 1, zone: *a9}\n"
    )
    start = time.perf_counter()
    with pytest.raises(UserError, match="aliases expand to more than"):
        load_rules(bomb)
    assert time.perf_counter() - start < 5


def test_every_kind_of_rule_has_its_logic() -> None:
    from posekit.actions.detect import LOGIC
    from posekit.actions.rules import KINDS

    assert set(LOGIC) == set(KINDS.values())


def test_fuzz_rules_files(tmp_path: Path) -> None:
    """Mutated rules files (values and bytes): the rules, or one line naming the file."""
    import random

    import yaml

    from fuzzing import fuzz, mutate_bytes, mutate_json

    valid = {
        "rules": [
            {
                "name": "squat",
                "kind": "repetitions",
                "angle": ["a", "b", "c"],
                "low": 90,
                "high": 160,
                "class": "person",
            },
            {"name": "door", "kind": "dwell", "zone": [[0, 0], [9, 0], [9, 9]], "seconds": 2},
            {"name": "out", "kind": "envelope", "keypoints": ["w"], "box": [0, 0, 5, 5]},
            {"name": "run", "kind": "speed", "threshold": 200, "window": 0.5},
            {"name": "fall", "kind": "fall", "drop": 0.3},
        ]
    }
    path = tmp_path / "rules.yaml"

    def case(rng: random.Random, i: int) -> tuple[int, str]:
        text = yaml.safe_dump(mutate_json(valid, rng)).encode()
        path.write_bytes(mutate_bytes(text, rng) if i % 3 == 0 else text)
        try:
            load_rules(path)
        except UserError as e:
            assert "\n" not in str(e) and str(path) in str(e), e
            return 2, f"posekit: error: {e}"
        return 0, ""

    fuzz(case, seed=31)


def test_inside_polygon_is_the_same_in_blocks_of_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    from posekit.actions import detect
    from posekit.actions.detect import inside_polygon

    rng = np.random.default_rng(0)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 40))
    radius = rng.uniform(50, 100, 40)
    polygon = np.c_[200 + radius * np.cos(angles), 200 + radius * np.sin(angles)].tolist()
    points = rng.uniform(80, 320, (500, 2))
    whole = inside_polygon(points, polygon)
    monkeypatch.setattr(detect, "POLYGON_BLOCK", 7 * len(points))  # 7 edges at a time
    assert np.array_equal(inside_polygon(points, polygon), whole) and 0 < whole.sum() < 500
