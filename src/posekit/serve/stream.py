"""`WS /v1/stream`: tracked keypoints of a live stream of JPEG frames, per connection.

Each connection has its own tracker and One Euro smoother (made when it opens, gone when it
closes) and shares the network with every other client through the batcher. The client sends
binary messages (one encoded frame each) and, at any time, text messages of JSON settings
(`{"conf": 0.4}`); the server answers every frame with its `posekit.track/1` event list (a JSON
array, one event per confirmed track), and a bad message with `{"error": ...}` — the
connection stays open and other clients are not affected.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import numpy as np

from posekit.predict.predictor import PredictConfig
from posekit.serve.app import PoseService, RequestError, client_name, parse_json
from posekit.serve.config import REQUEST_SETTINGS
from posekit.track.events import frame_events
from posekit.track.pipeline import tracked
from posekit.track.smoothing import OneEuroConfig, TrackSmoother
from posekit.track.tracker import Tracker, TrackerConfig

log = logging.getLogger("posekit.serve")


def _settings_message(text: str, service: PoseService) -> dict[str, Any]:
    given = parse_json(text, None, status=400)
    if not isinstance(given, dict):
        raise RequestError(400, "a text message must be a JSON object of settings")
    unknown = sorted(set(given) - set(REQUEST_SETTINGS))
    if unknown:
        raise RequestError(
            422,
            f"unknown setting {', '.join(unknown)}; the settings are {', '.join(REQUEST_SETTINGS)}",
            unknown[0],
        )
    return service.check_settings(given)


async def serve_stream(ws: Any, service: PoseService) -> None:
    """One connection, from accept to close (see the module docstring)."""
    from starlette.websockets import WebSocketDisconnect

    await ws.accept()
    service.metrics.streams.inc()
    tracker_cfg = TrackerConfig()
    tracker = Tracker(tracker_cfg, sigmas=np.array(service.model.schemas[0].sigmas))
    settings: dict[str, Any] = {}
    smoother = TrackSmoother(OneEuroConfig(), kpt_conf=PredictConfig.kpt_conf)
    start, frame, pending = time.monotonic(), 0, False
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            try:
                if message.get("text") is not None:
                    settings = _settings_message(message["text"], service)
                    smoother = TrackSmoother(
                        OneEuroConfig(), kpt_conf=settings.get("kpt_conf", PredictConfig.kpt_conf)
                    )
                    await ws.send_json({"settings": settings})
                    continue
                pending = True
                pixels = await service.decode(message.get("bytes") or b"", f"frame {frame}")
                conf = settings.get("conf", PredictConfig.conf)
                # low-scored detections go to the tracker too (its second association)
                low = {**settings, "conf": min(conf, tracker_cfg.low_thresh)}
                r = await service.predict(pixels, low, None)
            except RequestError as e:
                service.fault(
                    f"stream-{e.status}", f"/v1/stream from {client_name(ws)}: {e.message}"
                )
                await ws.send_json(e.body())
                pending = False
                continue
            r = replace(r, frame=frame, timestamp=time.monotonic() - start, path="stream")
            out = next(tracked([r], tracker, smoother=smoother, conf=conf))
            service.metrics.requests.labels("/v1/stream", "200").inc()
            await ws.send_json(frame_events(out, source="stream"))
            frame, pending = frame + 1, False
    except (WebSocketDisconnect, OSError):  # closed, or gone while we answered
        pass
    finally:
        service.metrics.streams.dec()
        if pending:  # the client went away while its frame was on the way: a fault
            service.fault("stream-left", f"/v1/stream from {client_name(ws)} left mid-frame "
                          f"after {frame} frames")  # fmt: skip
        else:
            log.info("stream from %s closed after %d frames", client_name(ws), frame)
