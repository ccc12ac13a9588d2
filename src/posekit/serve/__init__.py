"""`posekit serve`: a model behind HTTP and WebSocket routes (FastAPI + uvicorn), with dynamic
batching across clients, a browser page, Prometheus metrics and hardened input handling.

`create_app(model, config)` builds the ASGI app (for tests, or any ASGI server);
`serve(model, config)` runs it with uvicorn. Needs the `serve` extra.
"""

from posekit.serve.config import ServeConfig

__all__ = ["ServeConfig"]
