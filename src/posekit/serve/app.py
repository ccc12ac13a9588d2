"""The ASGI app of `posekit serve` (FastAPI): routes, authentication, limits and errors.

Routes: `GET /` (the page), `GET /healthz`, `GET /v1/model`, `POST /v1/predict`,
`POST /v1/predict/batch`, `WS /v1/stream`, `GET /metrics`, and `/openapi.json`.
Every answer that is not a result is one line of JSON, `{"error": ...}` (with `"field"` for
a bad form value); nothing a request sends is ever used as a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import ipaddress
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from posekit.data.images import ImageReadError, decode_image
from posekit.predict.predictor import PredictConfig
from posekit.predict.results import Results
from posekit.serve.batcher import Batcher, Busy
from posekit.serve.config import REQUEST_SETTINGS, ServeConfig
from posekit.serve.metrics import ServerMetrics
from posekit.utils.bounds import MAX_COORDINATE, is_number
from posekit.utils.errors import UserError, quoted
from posekit.utils.extras import require
from posekit.utils.field_docs import field_comments

fastapi = require("fastapi", "serve", "posekit serve")
from fastapi import File, Form, Query, Request, UploadFile, WebSocket  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import HTMLResponse, JSONResponse, Response  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402
from starlette.requests import ClientDisconnect  # noqa: E402

log = logging.getLogger("posekit.serve")

ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class RequestError(Exception):
    """A request judged bad: answered with `status` and one line of JSON."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def body(self) -> dict[str, str]:
        return {"error": self.message} | ({"field": self.field} if self.field else {})


class BodyLimit:
    """Pure ASGI middleware: a request body over `limit` bytes is answered 413, from its
    Content-Length before anything is read, or while it streams in (chunked uploads), never
    after reading it all."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        on_refuse: Callable[[str, str], None],
        body_timeout: float = ServeConfig.body_timeout,
    ) -> None:
        self.app, self.limit, self.on_refuse = app, limit, on_refuse
        self.body_timeout = body_timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._refuse(scope, send)
        seen, started, refused, complete, stalled = 0, False, False, False, False

        async def counted() -> Any:
            nonlocal seen, refused, complete, stalled
            if complete:  # the body is in: the app waits for a disconnect, however long
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                stalled = True  # whatever the app answers closes the connection
                path = scope.get("path")
                self.on_refuse("timeout", f"{path}: no body data for {self.body_timeout:g} s")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > self.limit and not refused:
                    refused = True
                    scope.setdefault("state", {})["refused"] = True  # answered: not a 2nd fault
                    if not started:
                        await self._refuse(scope, send)
                    # the app sees the client gone; whatever it answers is dropped
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Any) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
                if stalled:
                    headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, counted, watched)

    async def _refuse(self, scope: dict[str, Any], send: Any) -> None:
        mb = self.limit / 1024 / 1024
        self.on_refuse("413", f"{scope.get('path')}: request body over {mb:g} MB")
        body = json.dumps(
            {"error": f"the request body is over the limit of {mb:g} MB (--max-upload-mb)"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def settings_fields() -> list[Any]:
    """The `PredictConfig` fields a request may set (`REQUEST_SETTINGS`)."""
    by_name = {f.name: f for f in fields(PredictConfig)}
    return [by_name[n] for n in REQUEST_SETTINGS]


def _field_type(f: Any) -> type:
    text = str(f.type)
    return bool if "bool" in text else int if "int" in text else float


def model_card(model: Any, device: str, backend: str) -> dict[str, Any]:
    """What `GET /v1/model` says: family, schemas with names, skeleton and drawing colours,
    class names, input size, input mode, backend and device."""
    from posekit.viz.annotator import drawing_colors

    def css(bgr: tuple[int, int, int]) -> str:
        return "#{:02x}{:02x}{:02x}".format(*reversed(bgr))

    net = model.net
    schemas = []
    for s in net.schemas:
        edges, points = drawing_colors(s)
        schemas.append(
            {
                **s.to_dict(),
                "edge_css": [css(c) for c in edges],
                "keypoint_css": [css(c) for c in points],
            }
        )
    return {
        "name": getattr(net.config, "name", net.family),
        "family": net.family,
        "source": model.source.rsplit("/", 1)[-1],
        "classes": list(net.names),
        "schemas": schemas,
        "imgsz": int(net.config.imgsz),
        "input_mode": net.input_mode.name,
        "takes_boxes": net.input_mode.takes_boxes,
        "backend": backend,
        "device": device,
        "settings": {f.name: f.default for f in settings_fields()},
    }


class PoseService:
    """The model, its batcher, the decode pool and the metrics of one app."""

    def __init__(self, model: Any, config: ServeConfig) -> None:
        from posekit.utils.device import select_device

        self.model, self.config = model, config
        self.device = select_device(config.device)
        self.metrics = ServerMetrics()
        self.pool = ThreadPoolExecutor(config.decode_threads, thread_name_prefix="posekit-decode")
        self.batcher: Batcher | None = None
        backend = "onnxruntime" if model.onnx is not None else "pytorch"
        self.card = model_card(model, str(self.device), backend)

    def run_batch(
        self, images: list[np.ndarray], settings: dict[str, Any], boxes: list[Any] | None
    ) -> list[Results]:
        """One network pass over images of one group (in the batcher's worker thread):
        exactly `Model.predict`."""
        out = self.model.predict(
            images, device=str(self.device), batch=len(images), boxes=boxes, **settings
        )
        return list(out)

    async def start(self) -> None:
        c = self.config
        self.batcher = Batcher(
            self.run_batch,
            max_batch=c.max_batch,
            max_wait_ms=c.max_wait_ms,
            queue_size=c.queue_size,
            metrics=self.metrics,
        )
        self.batcher.start()

    async def stop(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def fault(self, reason: str, detail: str) -> None:
        """One log line and one count per refused request."""
        self.metrics.errors.labels(reason).inc()
        log.warning("refused (%s): %s", reason, detail)

    # -------------------------------------------------------------- requests
    def check_settings(self, given: dict[str, Any]) -> dict[str, Any]:
        """The settings a request gave (None: not given), each of its field's type (a JSON
        message's `"yes"` is not a flag, `1.5` not a count), validated by `PredictConfig`, and
        `imgsz` within `--max-imgsz` (or the model's own)."""
        settings = {k: v for k, v in given.items() if v is not None}
        kinds = {f.name: _field_type(f) for f in settings_fields()}
        for name, value in settings.items():
            kind = kinds.get(name)
            wrong = isinstance(value, bool) != (kind is bool) or (
                kind is not bool and not isinstance(value, int if kind is int else int | float)
            )
            if kind is not None and wrong:
                raise RequestError(
                    422, f"{name} must be {kind.__name__}, got {quoted(value)}", name
                )
        limit = max(self.config.max_imgsz, int(self.model.net.config.imgsz))
        if settings.get("imgsz", 0) > limit:
            over = f"imgsz {settings['imgsz']} is over this server's limit of {limit}"
            raise RequestError(422, f"{over} (--max-imgsz)", "imgsz")
        try:
            self.model.predict_config(self.device, **settings)
        except UserError as e:
            name = next((n for n in settings if str(e).find(n) >= 0), None)
            raise RequestError(422, str(e), name) from None
        return settings

    def parse_boxes(self, text: str | None, max_det: int | None) -> np.ndarray | None:
        """The `boxes` form field: at most `--max-boxes` (and the request's `max_det`) boxes
        [x1, y1, x2, y2] with x1 < x2, y1 < y2, coordinates within +-`MAX_COORDINATE`."""
        if text is None:
            return None
        if not self.model.net.input_mode.takes_boxes:
            raise RequestError(422, "this model finds instances itself: it takes no boxes", "boxes")
        shape = "boxes must be a JSON list of [x1, y1, x2, y2] lists"
        value = parse_json(text, "boxes")
        if not isinstance(value, list) or not all(
            isinstance(b, list) and len(b) == 4 and all(is_number(v) for v in b) for b in value
        ):
            raise RequestError(422, shape, "boxes")
        cap = min(self.config.max_boxes, max_det or self.config.max_boxes)
        if len(value) > cap:
            over = f"{len(value)} boxes is over the limit of {cap} per image"
            raise RequestError(422, f"{over} (--max-boxes, max_det)", "boxes")
        arr = np.array(value, dtype=np.float64).reshape(-1, 4)
        if not (np.abs(arr) <= MAX_COORDINATE).all():
            raise RequestError(
                422, f"box coordinates must be finite and within +-{MAX_COORDINATE:g}", "boxes"
            )
        if not ((arr[:, 2] > arr[:, 0]) & (arr[:, 3] > arr[:, 1])).all():
            raise RequestError(422, "each box needs x1 < x2 and y1 < y2", "boxes")
        return arr

    async def decode(self, data: bytes, name: str) -> np.ndarray:
        """Decoded BGR pixels in the decode pool; 400 for anything that is not a whole image,
        413 for one whose header declares more than `max_pixels`."""
        if not data:
            raise RequestError(400, f"{name}: empty upload")
        loop = asyncio.get_running_loop()
        try:
            decoded = await loop.run_in_executor(
                self.pool, lambda: decode_image(data, name, max_pixels=self.config.max_pixels)
            )
        except ImageReadError as e:
            if e.code == "image-too-large":
                raise RequestError(413, str(e).split(" (set ")[0] + " (--max-pixels)") from None
            raise RequestError(400, str(e)) from None
        return decoded.image

    async def predict(self, image: np.ndarray, settings: dict[str, Any], boxes: Any) -> Results:
        assert self.batcher is not None
        try:
            return await self.batcher.submit(image, settings, boxes)
        except Busy as e:
            raise RequestError(503, f"busy: {e}; retry shortly") from None
        except UserError as e:
            raise RequestError(422, str(e)) from None

    async def encode_jpeg(self, image: np.ndarray) -> bytes:
        loop = asyncio.get_running_loop()
        ok, buf = await loop.run_in_executor(self.pool, cv2.imencode, ".jpg", image)
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return bytes(buf)

    def answer(self, r: Results) -> dict[str, Any]:
        h, w = r.boxes.orig_shape[:2]
        return {
            "instances": r.to_dicts(),
            "image": {"width": int(w), "height": int(h)},
            "speed": {k: round(float(v), 3) for k, v in (r.speed or {}).items()},
            "model": self.card["name"],
        }

    def foreign_site(self, host: str | None, origin: str | None) -> str | None:
        """Why a request may come from another web site, or None. Without a token a server
        trusts whoever reaches it, so it answers only requests addressed to an IP address or
        `localhost` (a site's own name pointed at this machine, DNS rebinding, is refused)
        and WebSockets opened by its own page (a browser sends the page's `Origin`)."""
        if self.config.token:
            return None
        name = _hostname(host or "")
        if not _is_local_name(name):
            return f"Host {quoted(host)} is not this server's address (use --token to serve names)"
        if origin is not None and origin != "null":
            seen = _hostname(urlsplit(origin).netloc)
            if seen != name and not (_is_local_name(seen) and _is_local_name(name)):
                return f"Origin {quoted(origin)} is another site"
        return None

    def authorised(self, header: str | None, query_token: str | None = None) -> bool:
        token = self.config.token
        if not token:
            return True
        given = query_token or ""
        if header and header.startswith("Bearer "):
            given = header[len("Bearer ") :]
        return hmac.compare_digest(given.encode(), token.encode())


def create_app(model: Any, config: ServeConfig | None = None) -> Any:
    """The FastAPI app serving `model` (a loaded `posekit.Model`) with `config`'s settings;
    run it with `serve` or any ASGI server."""
    config = config or ServeConfig()
    service = PoseService(model, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app = fastapi.FastAPI(
        title="posekit",
        version=_version(),
        lifespan=lifespan,
        summary="Keypoint detection: predict, stream tracked keypoints",
        # FastAPI's /docs and /redoc pages load their scripts from a CDN: not served (the
        # API's description is /openapi.json, behind the token like every route)
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(
        BodyLimit,
        limit=config.max_upload_bytes,
        on_refuse=service.fault,
        body_timeout=config.body_timeout,
    )
    open_paths = {"/healthz", "/"}

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        route = request.url.path
        foreign = service.foreign_site(request.headers.get("host"), None)
        if foreign is not None:
            service.fault("host", f"{route} from {client_name(request)}: {foreign}")
            response = JSONResponse({"error": foreign}, status_code=403)
        elif route not in open_paths and not service.authorised(
            request.headers.get("authorization")
        ):
            service.fault("token", f"{route} from {client_name(request)}")
            response = JSONResponse(
                {"error": "missing or wrong token (Authorization: Bearer TOKEN)"}, status_code=401
            )
        else:
            try:
                response = await call_next(request)
            except Exception:  # a bug: logged with its traceback, answered without it
                log.exception("internal error on %s", route)
                service.metrics.errors.labels("500").inc()
                response = JSONResponse(
                    {"error": "internal error (logged by the server)"}, status_code=500
                )
        service.metrics.requests.labels(_route_label(route), str(response.status_code)).inc()
        return response

    @app.exception_handler(RequestError)
    async def request_error(request: Request, e: RequestError) -> Any:
        if getattr(request.state, "refused", False):  # BodyLimit answered 413 already
            return Response(status_code=413)
        service.fault(str(e.status), f"{request.url.path} from {client_name(request)}: {e.message}")
        headers = {"Retry-After": "1"} if e.status == 503 else None
        return JSONResponse(e.body(), status_code=e.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> Any:
        # e.g. a multipart body that cannot be parsed (FastAPI's own 400)
        if isinstance(e.__cause__, ClientDisconnect):  # nobody to answer: one line
            where = f"{request.url.path} from {client_name(request)}"
            service.fault("disconnect", f"{where}: client left before its request was read")
            return Response(status_code=400)
        return await request_error(request, RequestError(e.status_code, str(e.detail)))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> Any:
        first = e.errors()[0] if e.errors() else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query")]
        name = loc[0] if loc else None
        msg = f"{name}: {first.get('msg', 'invalid value')}" if name else "invalid request"
        return await request_error(request, RequestError(422, msg, name))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> Any:
        return HTMLResponse(resources.files("posekit.serve").joinpath("page.html").read_text())

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """200 once the model is loaded (no token needed)."""
        return {"status": "ok", "model": service.card["name"]}

    @app.get("/v1/model")
    async def model_info() -> dict[str, Any]:
        """The model card: family, schemas, classes, input size, backend, device."""
        return service.card

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Any:
        body, kind = service.metrics.exposition()
        return Response(body, media_type=kind)

    async def predict_one(image: UploadFile, draw: bool, boxes: str | None, **given: Any) -> Any:
        settings = service.check_settings(given)
        box_array = service.parse_boxes(boxes, settings.get("max_det"))
        pixels = await service.decode(await image.read(), "image")
        r = await service.predict(pixels, settings, box_array)
        if draw:
            return Response(await service.encode_jpeg(r.plot()), media_type="image/jpeg")
        return service.answer(r)

    async def predict_many(images: list[UploadFile], **given: Any) -> Any:
        if len(images) > config.max_images:
            raise RequestError(
                413,
                f"{len(images)} images is over the limit of "
                f"{config.max_images} per request (--max-images)",
            )
        settings = service.check_settings(given)
        # decoded and run in chunks of at most --max-pixels decoded pixels (at least one
        # image): a request never holds more than that many decoded pixels at once
        answers: list[dict[str, Any]] = []
        chunk: list[np.ndarray] = []

        async def run_chunk() -> None:
            results = await asyncio.gather(*(service.predict(p, settings, None) for p in chunk))
            answers.extend(service.answer(r) for r in results)
            chunk.clear()

        for i, im in enumerate(images):
            pixels = await service.decode(await im.read(), f"images[{i}]")
            held = sum(p.shape[0] * p.shape[1] for p in chunk)
            if chunk and held + pixels.shape[0] * pixels.shape[1] > config.max_pixels:
                await run_chunk()
            chunk.append(pixels)
        await run_chunk()
        return {"results": answers}

    app.post("/v1/predict", summary="Keypoints of one image (JSON, or ?draw=1: a JPEG)")(
        _with_settings(predict_one, single=True)
    )
    app.post("/v1/predict/batch", summary="Keypoints of several images")(
        _with_settings(predict_many, single=False)
    )

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket, token: str | None = None) -> None:
        """Send JPEG frames (binary messages), receive one `posekit.track/1` event list per
        frame; a text message of JSON settings (e.g. {"conf": 0.4}) changes them."""
        from posekit.serve.stream import serve_stream

        foreign = service.foreign_site(ws.headers.get("host"), ws.headers.get("origin"))
        if foreign is not None:
            service.fault("host", f"/v1/stream from {client_name(ws)}: {foreign}")
            await ws.close(code=1008)
            return
        if not service.authorised(ws.headers.get("authorization"), token):
            service.fault("token", f"/v1/stream from {client_name(ws)}")
            await ws.close(code=1008)
            return
        await serve_stream(ws, service)

    return app


def _with_settings(endpoint: Callable[..., Any], single: bool) -> Callable[..., Any]:
    """`endpoint` with a signature FastAPI reads: the upload field(s), `draw` and `boxes`
    (one image), and one optional form field per request setting, whose type, range and
    help are `PredictConfig`'s (derived here, never retyped)."""
    helps = field_comments(PredictConfig)
    params = []
    if single:
        params += [
            inspect.Parameter(
                "image",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=UploadFile,
                default=File(..., description="A JPEG, PNG or WebP image."),
            ),
            inspect.Parameter(
                "draw",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=bool,
                default=Query(False, description="Answer the annotated JPEG."),
            ),
            inspect.Parameter(
                "boxes",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=str | None,
                default=Form(None, description="Top-down models: JSON list of [x1, y1, x2, y2]."),
            ),
        ]
    else:
        params.append(
            inspect.Parameter(
                "images",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=list[UploadFile],
                default=File(..., description="JPEG, PNG or WebP images."),
            )
        )
    for f in settings_fields():
        kind = _field_type(f)
        extra = {}
        if "range" in f.metadata:
            extra = {"ge": f.metadata["range"][0], "le": f.metadata["range"][1]}
        default = Form(None, description=f"{helps.get(f.name, '')} Default: {f.default}.", **extra)
        params.append(
            inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind | None, default=default
            )
        )

    allowed = {p.name for p in params} - {"draw"}  # draw is a query parameter

    async def call(request: Request, **kwargs: Any) -> Any:
        # a misspelt field (`confidence=0.9`) is an error, not a setting silently ignored
        unknown = sorted(set((await request.form()).keys()) - allowed)
        if unknown:
            fields_ = ", ".join(sorted(allowed))
            message = f"unknown form field {unknown[0]}; the fields are {fields_}"
            raise RequestError(422, message, unknown[0])
        return await endpoint(**kwargs)

    request_param = inspect.Parameter(
        "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
    )
    call.__signature__ = inspect.Signature([request_param, *params])  # type: ignore[attr-defined]
    call.__name__ = endpoint.__name__
    call.__doc__ = endpoint.__doc__
    return call


#: Deepest nesting of a JSON value a request may send.
MAX_JSON_DEPTH = 32


def _hostname(netloc: str) -> str:
    """The host part of "host:port" or "[v6]:port", lower-case."""
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")].lower() if "]" in netloc else netloc.lower()
    return netloc.rsplit(":", 1)[0].lower() if netloc.count(":") == 1 else netloc.lower()


def _is_local_name(name: str) -> bool:
    """An IP address literal (no DNS involved) or `localhost`."""
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def parse_json(text: str, field: str | None, status: int = 422) -> Any:
    """A JSON value a client sent, or a `status` error naming `field`: malformed, nested
    deeper than `MAX_JSON_DEPTH` (checked before parsing), or holding an integer too large."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        what = field or "the message"
        raise RequestError(status, f"{what} nests deeper than {MAX_JSON_DEPTH}", field)
    try:
        return json.loads(text, parse_int=_bounded_int)
    except (ValueError, RecursionError):
        raise RequestError(status, f"{field or 'the message'} is not valid JSON", field) from None


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > 18:
        raise ValueError("an integer too large")
    return int(digits)


def client_name(request: Any) -> str:
    """host:port of a request's or WebSocket's peer."""
    c = request.client
    return f"{c.host}:{c.port}" if c else "?"


def _route_label(path: str) -> str:
    known = ("/", "/healthz", "/v1/model", "/v1/predict", "/v1/predict/batch", "/metrics")
    return path if path in known else "other"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("posekit")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        return "unknown"


def serve(model: Any, config: ServeConfig) -> None:
    """Run the app with uvicorn until interrupted (what `posekit serve` does)."""
    uvicorn = require("uvicorn", "serve", "posekit serve")
    # python-multipart logs each malformed body on its own; the refusal is logged once above
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    from posekit.serve.protocol import (
        BACKLOG,
        connection_limit,
        guarded_protocol,
        quiet_descriptor_errors,
    )

    connections = connection_limit(config.max_connections)
    quiet_descriptor_errors()
    app = create_app(model, config)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level="info",
        ws_max_size=config.max_upload_bytes,
        timeout_graceful_shutdown=5,
        http=guarded_protocol(  # type: ignore[arg-type]
            config.header_timeout, connections, lambda why: app.state.service.fault("400", why)
        ),
        limit_concurrency=connections + BACKLOG,  # past ours: idle ones were evicted first
        backlog=BACKLOG,
    )
