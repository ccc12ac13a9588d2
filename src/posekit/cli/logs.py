"""Console logging for CLI commands (library modules only create loggers).

Log records always go to stderr, so that stdout carries only a command's data (`track
--save-jsonl -`). On a terminal they are Rich's (levels coloured, wrapped to the window);
anywhere else (a file, journald, docker) each record is exactly one line, never wrapped, so
that a refusal is one line to grep.
"""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.logging import RichHandler

#: marks the handler posekit installed (set-up is idempotent)
_OURS = "posekit-cli"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """One line per record on whatever `sys.stderr` is when the record is written."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass  # always the current stderr


def _handler() -> logging.Handler:
    if sys.stderr.isatty():
        console = Console(stderr=True)
        return RichHandler(console=console, show_path=False, show_time=False, markup=False)
    return _StderrHandler()


def setup_logging(level: int = logging.INFO) -> None:
    """Send posekit's log records to stderr once (idempotent)."""
    logger = logging.getLogger("posekit")
    if not any(h.get_name() == _OURS for h in logger.handlers):
        handler = _handler()
        handler.set_name(_OURS)
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
