"""Progress bars with rate and ETA for long work (rich). On a terminal they update live;
elsewhere (logs, CI) rich prints only the final state, so output stays readable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _RateColumn(TextColumn):
    """Items per second, with the unit the caller names."""

    def __init__(self, unit: str) -> None:
        super().__init__("")
        self.unit = unit

    def render(self, task):  # type: ignore[no-untyped-def]
        from rich.text import Text

        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} {self.unit}/s" if speed else f"-- {self.unit}/s", style="cyan")


def _progress(unit: str, console: Console | None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
    )


@contextmanager
def progress_bar(
    description: str,
    total: int | None,
    *,
    unit: str = "it",
    console: Console | None = None,
    enabled: bool = True,
) -> Iterator[Callable[..., None]]:
    """Context manager yielding `advance(n, info=None)`; shows done/total, rate, elapsed and
    ETA, and `info` (e.g. the running loss) after the description. With `enabled=False` (e.g.
    on non-zero distributed ranks) it shows nothing. `total=None` (a stream of unknown length)
    shows the count and rate without a bar's end or ETA."""
    if not enabled:
        yield lambda n=1, info=None: None
        return
    with _progress(unit, console) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1, info: str | None = None) -> None:
            if info is not None:
                bar.update(task, description=f"{description} {info}")
            bar.advance(task, n)

        yield advance


@contextmanager
def download_bar(
    description: str, total: int | None, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Context manager yielding `advance(n_bytes)`: a bar of bytes received, with size,
    transfer rate and ETA (`total=None`: a server that did not say the size)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import DownloadColumn, TransferSpeedColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def progress_group(
    *, unit: str = "it", console: Console | None = None
) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """Context manager yielding `add_task(description, total) -> advance(n)`, for work made of
    several stages shown as one bar each."""
    bar = _progress(unit, console)
    started = False

    def add_task(description: str, total: int) -> Callable[[int], None]:
        nonlocal started
        if not started:  # started on first use, so a failure before any work prints nothing
            bar.start()
            started = True
        task = bar.add_task(description, total=total)
        return lambda n=1: bar.advance(task, n)

    try:
        yield add_task
    finally:
        if started:
            bar.stop()
