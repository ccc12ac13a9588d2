"""Seeded mutation of valid inputs, shared by the fuzz tests (files, requests, rules, event
lines): byte-level mutations, JSON value-level ones with hostile values, and `fuzz`, which
runs `CASES` cases and asserts each ends with a verdict or one line, in bounded time and
memory. The seed is fixed, so a failure reproduces; `POSEKIT_FUZZ_CASES` runs more cases."""

from __future__ import annotations

import copy
import os
import random
import resource
import time
from collections.abc import Callable
from typing import Any

CASES = int(os.environ.get("POSEKIT_FUZZ_CASES", "40"))
#: a case taking longer than this is a hang (the slowest honest one takes well under 1 s)
CASE_SECONDS = 10.0
#: resident memory may grow by at most this over the whole fuzz run of one format
MEMORY_GROWTH_MB = 400


# ------------------------------------------------------------------ mutations
HOSTILE_VALUES: list[Any] = [
    -1, 0, 2**63, -(2**63), 1e308, -1e308, float("nan"), "NaN", "", "../" * 8 + "etc/passwd",
    "/etc/passwd", "x" * 10_000, None, True, [], {}, [[[[[[[[1]]]]]]]], [1e9] * 3, {"a": None},
    [None, "a", 3.5], 10**6, 2**31,
]  # fmt: skip


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        i = rng.randrange(len(b)) if b else 0
        if op == 0 and b:  # flip a byte
            b[i] = rng.randrange(256)
        elif op == 1:  # cut the file
            del b[i:]
        elif op == 2:  # insert random bytes
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:  # repeat a chunk
            b[i:i] = b[i : i + rng.randint(1, 200)] * rng.randint(2, 20)
    return bytes(b)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON document."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:20]):
            out += _paths(v, (*prefix, i))
    return out


def mutate_json(obj: Any, rng: random.Random) -> Any:
    obj = copy.deepcopy(obj)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(obj)[1:] or [()])
        if not path:
            return copy.deepcopy(rng.choice(HOSTILE_VALUES))
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        if rng.random() < 0.15 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(HOSTILE_VALUES))
    return obj


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fuzz(case: Callable[[random.Random, int], tuple[int, str]], seed: int) -> None:
    """Run `CASES` mutated cases: each ends with a verdict (0, 1) or one line and exit 2."""
    rng = random.Random(seed)
    start_rss = _rss_mb()
    for i in range(CASES):
        t0 = time.perf_counter()
        code, err = case(rng, i)
        took = time.perf_counter() - t0
        assert took < CASE_SECONDS, f"case {i} took {took:.1f} s"
        assert code in (0, 1, 2), (i, code, err)
        if code == 2:
            lines = [ln for ln in err.strip().splitlines() if ln.startswith("posekit: error")]
            assert len(lines) == 1, (i, err)
            assert "Traceback" not in err, (i, err)
    assert _rss_mb() - start_rss < MEMORY_GROWTH_MB
