"""`posekit serve`: a model behind an HTTP + WebSocket API and a browser page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from posekit.cli.logs import setup_logging
from posekit.cli.options import detector_option, remaining_settings, schema_option
from posekit.serve.config import TOKEN_ENV, ServeConfig
from posekit.utils.errors import UserError

WORKERS_NOTE = """\
posekit serve is one process on purpose: one copy of the model in memory and one queue, so
that requests from all clients share network passes (dynamic batching); uvicorn's --workers
would load the model N times and split the batches N ways. The network runs in one thread
off the event loop and images are decoded in --decode-threads threads, so one process keeps
a GPU (or the CPU's cores, through PyTorch's own threads) busy.

To use several GPUs or machines, start one server per GPU on its own port
(CUDA_VISIBLE_DEVICES=0 posekit serve --port 8001 ..., =1 ... --port 8002) and put a
reverse proxy in front that spreads requests over them (nginx `upstream`, Caddy
`reverse_proxy a b`, or a Kubernetes Service); see the README's "Serve" section."""


def _print_workers_note(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        click.echo(WORKERS_NOTE)
        ctx.exit(0)


@click.command()
@click.option(
    "--workers-note",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_workers_note,
    help="Print why the server is one process and how to run several, and exit.",
)
@click.option(
    "--model",
    required=True,
    help="Any model file posekit loads: a checkpoint of any family, an .onnx export, "
    "a transformers folder, or a registered name (untrained).",
)
@detector_option
@schema_option
@click.option(
    "--token",
    default=None,
    help=f"Require `Authorization: Bearer TOKEN` on every route but /healthz "
    f"(default: ${TOKEN_ENV}, if set).",
)
@remaining_settings(ServeConfig, exclude=("token",))
def serve(
    model: str, detector: Path | None, schema: str | None, token: str | None, **settings: Any
) -> None:
    """Serve MODEL: POST /v1/predict, WS /v1/stream, a page at /, metrics at /metrics.

    Binds 127.0.0.1 unless --host says otherwise; put it behind a reverse proxy (see the
    README) to reach it from other machines.
    """
    from posekit.model import Model
    from posekit.serve.app import serve as run

    setup_logging()
    token = token or os.environ.get(TOKEN_ENV) or None
    config = ServeConfig(token=token, **settings)
    if config.host not in ("127.0.0.1", "localhost", "::1") and not token:
        click.echo(
            f"posekit serve: warning: listening on {config.host} without --token: "
            "anyone who reaches this address can use the model",
            err=True,
        )
    m = Model(model, schema, detector=str(detector) if detector else None)
    m.needs_images("be served")
    if m.detections_file is not None:
        raise UserError("--detector for serving must be a detector model, not a JSON file")
    run(m, config)
