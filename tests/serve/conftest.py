"""The live server of the serve tests (`posekit.serve.harness`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from posekit.serve.harness import ServerProcess, start_server


@pytest.fixture(scope="module")
def live_server(overfit_run, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:  # type: ignore[no-untyped-def]
    pytest.importorskip("uvicorn")
    log = tmp_path_factory.mktemp("serve") / "server.log"
    server = start_server(str(overfit_run.best), log, "--max-wait-ms", "20")
    yield server
    assert server.stop() == 0, server.text()
