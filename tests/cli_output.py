"""Reading what a command printed on stderr: its log records (one line each, `LEVEL    ...`)
and the rest, which for a refused input must be one `posekit: error: ...` line."""

from __future__ import annotations

import re

LOG_RECORD = re.compile(r"^(DEBUG|INFO|WARNING) +\S")


def error_lines(err: str) -> list[str]:
    """The lines of `err` that are not log records."""
    return [line for line in err.strip().splitlines() if not LOG_RECORD.match(line)]
