"""The one exception type for input that cannot be used, and how the CLI tells it from a bug.

`UserError` is raised where input or settings are judged (a file, a dataset, a model
description, an option value): its message says in one line what is wrong and what to do, and
the CLI prints just that with exit code 2. Any other exception escaping a command is a bug in
posekit: the CLI shows its traceback and asks for a report (exit code 70, EX_SOFTWARE).
`UserError` is a `ValueError`, so code written against the old errors keeps catching them.
"""

from __future__ import annotations

from typing import Any

#: exit status of a command stopped by a bug (sysexits' EX_SOFTWARE)
BUG_EXIT_CODE = 70
#: exit status of a command refused because its input cannot be used
USER_ERROR_EXIT_CODE = 2
#: Longest part of a value quoted in an error message.
MAX_QUOTED = 80


class UserError(ValueError):
    """Input or settings that cannot be used; the message is the whole explanation."""


def one_line(error: BaseException) -> str:
    """The message of `error` as one line. An error re-raised by a PyTorch data-loading worker
    carries the worker's traceback in its message; its last line is the original message."""
    text = str(error).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return " ".join(text.split("\n")) if text else type(error).__name__


def quoted(value: Any) -> str:
    """`repr(value)` cut to `MAX_QUOTED` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED else f"{text[: MAX_QUOTED - 3]}..."
