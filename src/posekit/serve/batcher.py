"""Dynamic batching: images from all clients share network passes.

Requests put their decoded image on one bounded queue and await its `Results`. One asyncio
task takes the oldest waiting image, waits at most `max_wait_ms` for others (up to
`max_batch`; only while requests have been arriving closer together than that, so that a lone
client is not delayed for company that never comes), and runs them in one worker thread, off
the event loop, grouped so that batching
never changes an answer: images of one group have the same settings and the same size (so the
same letterbox as when each is predicted alone). A client that goes away cancels its future;
its image is dropped before it costs a network pass. A full queue is refused at once (`Busy`),
never grown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from posekit.predict.results import Results
from posekit.serve.metrics import ServerMetrics

log = logging.getLogger(__name__)

#: runs one group: (images, settings, boxes per image or None) -> one `Results` per image
RunBatch = Callable[[list[np.ndarray], dict[str, Any], list[Any] | None], list[Results]]


class Busy(Exception):
    """The queue is full: the request is refused (503) instead of waiting without bound."""


@dataclass
class Job:
    image: np.ndarray
    settings: dict[str, Any]
    boxes: Any
    future: asyncio.Future[Results]
    queued: float = field(default_factory=time.perf_counter)

    def group(self) -> Hashable:
        """Jobs that may share a network pass without changing either's answer."""
        return (tuple(sorted(self.settings.items())), self.image.shape, self.boxes is None)


class Batcher:
    """The queue, the batching task and the network's worker thread (see the module doc)."""

    def __init__(
        self,
        run: RunBatch,
        *,
        max_batch: int,
        max_wait_ms: float,
        queue_size: int,
        metrics: ServerMetrics,
    ) -> None:
        self.run, self.max_batch, self.queue_size = run, max_batch, queue_size
        self.max_wait = max_wait_ms / 1000
        self.metrics = metrics
        self._pending: deque[Job] = deque()
        self._arrived = asyncio.Event()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="posekit-network")
        self._task: asyncio.Task[None] | None = None
        # mean time between arrivals (exponentially weighted): when it is longer than
        # max_wait, waiting would rarely find company and only add latency, so it is skipped
        self._gap = float("inf")
        self._last_arrival: float | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="posekit-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for job in self._pending:
            job.future.cancel()
        self._pending.clear()
        self._worker.shutdown(wait=True, cancel_futures=True)

    @property
    def waiting(self) -> int:
        return len(self._pending)

    async def submit(
        self, image: np.ndarray, settings: dict[str, Any], boxes: Any = None
    ) -> Results:
        """The `Results` of one image, predicted in whichever batch it joins."""
        if len(self._pending) >= self.queue_size:
            raise Busy(f"{len(self._pending)} images are waiting (--queue-size)")
        job = Job(image, settings, boxes, asyncio.get_running_loop().create_future())
        if self._last_arrival is not None:
            gap = job.queued - self._last_arrival
            self._gap = gap if self._gap == float("inf") else 0.8 * self._gap + 0.2 * gap
        self._last_arrival = job.queued
        self._pending.append(job)
        self.metrics.queue_depth.set(len(self._pending))
        self._arrived.set()
        return await job.future

    async def _next_batch(self) -> list[Job]:
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
        deadline = time.perf_counter() + self.max_wait
        while len(self._pending) < self.max_batch and self._gap <= self.max_wait:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                break
        batch = []
        while self._pending and len(batch) < self.max_batch:
            job = self._pending.popleft()
            if not job.future.done():  # a client that left costs nothing
                batch.append(job)
        self.metrics.queue_depth.set(len(self._pending))
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            groups: dict[Hashable, list[Job]] = {}
            for job in batch:
                groups.setdefault(job.group(), []).append(job)
            for jobs in groups.values():
                await self._run_group(loop, jobs)

    async def _run_group(self, loop: asyncio.AbstractEventLoop, jobs: list[Job]) -> None:
        start = time.perf_counter()
        for job in jobs:
            self.metrics.queue_seconds.observe(start - job.queued)
        boxes = None if jobs[0].boxes is None else [j.boxes for j in jobs]
        try:
            results = await loop.run_in_executor(
                self._worker, self.run, [j.image for j in jobs], jobs[0].settings, boxes
            )
        except Exception as e:  # answered to every request of the group
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(e)
            return
        self.metrics.batch_size.observe(len(jobs))
        self.metrics.inference_seconds.observe(time.perf_counter() - start)
        for job, r in zip(jobs, results, strict=True):
            if not job.future.done():
                job.future.set_result(r)
