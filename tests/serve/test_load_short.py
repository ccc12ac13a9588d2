"""The short version of `benchmarks/serve_load.py` (what CI runs): two real servers under
1 and 8 clients, every fault while good clients predict, a short soak. The script exits 1
when a good client saw an error or a fault was not refused and logged as it should be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("uvicorn")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py"


def test_short_load_and_fault_run_passes(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--short", "--logs", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout
    assert "FAILED" not in lines
    assert lines.count("errors 0") >= 5  # four load phases and the soak
    for fault in ("disconnect mid-upload", "30000x30000 PNG header", "wrong token",
                  "WebSocket garbage"):  # fmt: skip
        assert fault in lines
    assert "dynamic batching gain at   8 clients" in lines
    assert "refused (token)" in (tmp_path / "dynamic.log").read_text()
