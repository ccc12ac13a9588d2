"""Console logging for CLI commands (library modules only create loggers)."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


def setup_logging(level: int = logging.INFO) -> None:
    """Send posekit's log records to the terminal once (idempotent)."""
    logger = logging.getLogger("posekit")
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        logger.addHandler(RichHandler(show_path=False, show_time=False, markup=False))
    logger.setLevel(level)
    logger.propagate = False
