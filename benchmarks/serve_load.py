"""Load and faults of `posekit serve`, against real servers on loopback (asyncio + httpx).

1. Closed-loop load: 1 / 8 / 32 clients, each posting one image to `/v1/predict` again as soon
   as its answer arrives, for a fixed time: requests/s, p50/p95/p99 latency, errors (must be 0)
   and the mean batch size (from the server's own /metrics), on a server with dynamic batching
   and, in the same run, on one with `--max-batch 1`; the gain is their ratio.
2. Faults while 8 good clients keep predicting: a client that disconnects mid-upload, one that
   leaves a WebSocket mid-frame, malformed multipart, a 30000x30000 PNG header, an upload over
   --max-upload-mb, a wrong token, a WebSocket sending garbage. The good clients' error count
   must stay 0; for every fault the server must log one line.
3. Soak: 8 clients for --soak seconds; the server's resident memory at the start and the end.

The script exits 1 when a good client saw an error or a fault was not answered or logged as it
should be, so CI runs its short version (`--short`) as a test.

    python benchmarks/serve_load.py [--model best.pt] [--seconds 20] [--soak 300] [--short]

Without --model a randomly initialised rtpose-n serves (the cost of a pass does not depend on
the weights; its detections mean nothing). Everything runs on this machine: client and server
share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import httpx
import numpy as np
import websockets

from posekit.data.synth.generator import SynthConfig, render
from posekit.serve.harness import ServerProcess, png_header, start_server

TOKEN = "load-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Load:
    """What the clients of one closed-loop phase saw."""

    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    batch_mean: float = float("nan")

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def line(self, label: str) -> str:
        return (
            f"{label:>14s} clients {self.clients:3d}: {self.rate:7.1f} req/s  "
            f"p50 {self.percentile(50):7.1f} ms  p95 {self.percentile(95):7.1f} ms  "
            f"p99 {self.percentile(99):7.1f} ms  errors {self.error_count}  "
            f"mean batch {self.batch_mean:5.2f}"
        )


def batch_totals(server: ServerProcess) -> tuple[float, float]:
    """(images, network passes) so far, from the server's batch-size histogram."""
    text = httpx.get(server.url + "/metrics", headers=AUTH, timeout=10).text
    values = dict(re.findall(r"^posekit_batch_size_(sum|count) (\S+)$", text, re.MULTILINE))
    return float(values.get("sum", 0)), float(values.get("count", 0))


async def client_loop(
    c: httpx.AsyncClient, data: bytes, form: dict[str, str], deadline: float, load: Load
) -> None:
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        try:
            r = await c.post("/v1/predict", files={"image": ("frame.jpg", data)}, data=form)
            status = r.status_code
        except httpx.HTTPError:
            status = -1
        if status == 200:
            load.latencies.append(time.perf_counter() - t0)
        else:
            load.errors[status] = load.errors.get(status, 0) + 1


async def closed_loop(
    server: ServerProcess, data: bytes, form: dict[str, str], clients: int, seconds: float
) -> Load:
    load = Load(clients, seconds)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=server.url, headers=AUTH, timeout=120, limits=limits
    ) as c:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(client_loop(c, data, form, deadline, load) for _ in range(clients)))
    return load


def measure(
    server: ServerProcess, data: bytes, form: dict[str, str], clients: int, s: float
) -> Load:
    asyncio.run(closed_loop(server, data, form, clients, 2.0))  # warm-up at this load
    images0, passes0 = batch_totals(server)
    load = asyncio.run(closed_loop(server, data, form, clients, s))
    images1, passes1 = batch_totals(server)
    load.batch_mean = (images1 - images0) / max(passes1 - passes0, 1)
    return load


# ------------------------------------------------------------------------------- faults
@dataclass
class Fault:
    """One kind of hostile client: what it does, the answer expected, the log line expected."""

    name: str
    expect: str  # the answer it must get ("-": none, the client leaves)
    log_pattern: str  # a regular expression one server log line per fault matches
    seen: list[str] = field(default_factory=list)


async def raw_request(server: ServerProcess, head: bytes, body: bytes, read: bool) -> str:
    host, port = server.host_port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head + body)
    await writer.drain()
    answer = "-"
    if read:
        line = await asyncio.wait_for(reader.readline(), 30)
        answer = line.split(b" ")[1].decode() if line else "closed"
    writer.close()
    return answer


async def run_fault(fault: Fault, server: ServerProcess, data: bytes, max_upload: int) -> str:
    ws_url = server.url.replace("http", "ws") + "/v1/stream"
    name = fault.name
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30) as c:
        if name == "disconnect mid-upload":  # promises 1 MB, sends the start of a JPEG, leaves
            head = (
                b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                + f"Authorization: Bearer {TOKEN}\r\n".encode()
                + b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
            )
            part = (
                b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
                b"Content-Type: image/jpeg\r\n\r\n" + data[:1000]
            )
            return await raw_request(server, head, part, read=False)
        if name == "disconnect mid-stream":  # sends a frame, leaves before the answer
            async with websockets.connect(ws_url, additional_headers=AUTH) as ws:
                await ws.send(data)
            return "-"
        if name == "malformed multipart":
            r = await c.post(
                "/v1/predict",
                content=b"--b\r\ngarbage",
                headers={"content-type": "multipart/form-data; boundary=b"},
            )
            return str(r.status_code)
        if name == "30000x30000 PNG header":
            r = await c.post("/v1/predict", files={"image": ("a.png", png_header(30000, 30000))})
            return str(r.status_code)
        if name == "upload over the limit":  # the answer comes before the body is sent
            head = (
                b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n"
                + f"Content-Length: {max_upload + 1}\r\nAuthorization: Bearer {TOKEN}\r\n".encode()
                + b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
            )
            return await raw_request(server, head, b"", read=True)
        if name == "wrong token":
            r = await c.get("/v1/model", headers={"Authorization": "Bearer wrong"})
            return str(r.status_code)
        if name == "WebSocket garbage":
            async with websockets.connect(ws_url, additional_headers=AUTH) as ws:
                await ws.send(b"\x00garbage")
                answer = json.loads(await ws.recv())
                await ws.send(data)  # the connection still serves a good frame after it
                after = json.loads(await ws.recv())
            return "error+ok" if "error" in answer and isinstance(after, list) else "wrong"
    raise ValueError(name)


FAULTS = (
    ("disconnect mid-upload", "-", r"refused \(disconnect\).*client left"),
    ("disconnect mid-stream", "-", r"refused \(stream-left\)"),
    ("malformed multipart", "422", r"refused \(422\).*image"),
    ("30000x30000 PNG header", "413", r"refused \(413\).*pixels is over the limit"),
    ("upload over the limit", "413", r"refused \(413\).*request body over"),
    ("wrong token", "401", r"refused \(token\)"),
    ("WebSocket garbage", "error+ok", r"refused \(stream-400\)"),
)


async def faults_under_load(
    server: ServerProcess, data: bytes, form: dict[str, str], repeats: int, max_upload: int
) -> tuple[Load, list[Fault], dict[str, int]]:
    """Every fault `repeats` times, one after another, while 8 good clients predict."""
    good = Load(8, 0.0)
    faults = [Fault(*f) for f in FAULTS]
    log_before = server.text()
    t0 = time.perf_counter()
    stop = asyncio.Event()

    async def good_clients() -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=120) as c:

            async def one() -> None:
                while not stop.is_set():
                    await client_loop(c, data, form, time.perf_counter() + 0.5, good)

            await asyncio.gather(*(one() for _ in range(8)))

    async def hostile() -> None:
        await asyncio.sleep(0.5)
        for _ in range(repeats):
            for fault in faults:
                fault.seen.append(await run_fault(fault, server, data, max_upload))
        await asyncio.sleep(1.0)  # the server logs a disconnect when it notices it
        stop.set()

    await asyncio.gather(good_clients(), hostile())
    good.seconds = time.perf_counter() - t0
    new_log = server.text()[len(log_before) :]
    logged = {f.name: len(re.findall(f.log_pattern, new_log)) for f in faults}
    return good, faults, logged


# --------------------------------------------------------------------------------- soak
def soak(
    server: ServerProcess, data: bytes, form: dict[str, str], seconds: float
) -> tuple[Load, list[float]]:
    """8 clients for `seconds`; the server's RSS sampled every tenth of the time."""
    samples = [server.rss_mb()]

    async def run() -> Load:
        task = asyncio.create_task(closed_loop(server, data, form, 8, seconds))
        while not task.done():
            await asyncio.sleep(seconds / 10)
            samples.append(server.rss_mb())
        return await task

    load = asyncio.run(run())
    samples.append(server.rss_mb())
    return load, samples


def people_jpeg(size: int) -> bytes:
    frame = render(SynthConfig(images=1, imgsz=size, seed=3), 0)
    ok, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return bytes(buf)


def run_all(
    servers: dict[str, ServerProcess],
    args: argparse.Namespace,
    data: bytes,
    form: dict[str, str],
    clients: list[int],
    max_upload_mb: float,
) -> list[str]:
    """The load phases (the two servers in turn at each client count, so that both see the
    machine in the same state), the faults and the soak; the failures found."""
    failures = []
    loads: dict[str, dict[int, Load]] = {label: {} for label in servers}
    for n in clients:
        for label, server in servers.items():
            load = measure(server, data, form, n, args.seconds)
            loads[label][n] = load
            print(load.line(label), flush=True)
            if load.error_count:
                failures.append(f"{label}, {n} clients: errors {load.errors}")
    for n in clients:
        dyn, one = loads["dynamic"][n], loads["max-batch 1"][n]
        print(
            f"dynamic batching gain at {n:3d} clients: {dyn.rate / one.rate:.2f}x "
            f"({dyn.rate:.1f} vs {one.rate:.1f} req/s; p99 {dyn.percentile(99):.0f} vs "
            f"{one.percentile(99):.0f} ms)",
            flush=True,
        )
    server = servers["dynamic"]
    good, faults, logged = asyncio.run(
        faults_under_load(server, data, form, args.repeats, int(max_upload_mb * 1024 * 1024))
    )
    print(
        f"faults under load: good clients {good.rate:.1f} req/s over "
        f"{good.seconds:.1f} s, errors {good.error_count}"
    )
    if good.error_count:
        failures.append(f"good clients saw errors during faults: {good.errors}")
    for f in faults:
        ok = all(s == f.expect for s in f.seen) and logged[f.name] == len(f.seen)
        print(
            f"  {f.name:24s} x{len(f.seen)}: answers {sorted(set(f.seen))} "
            f"(expected {f.expect}), server log lines {logged[f.name]}"
            f"{'' if ok else '  <-- FAILED'}"
        )
        if not ok:
            failures.append(f"fault {f.name}: {f.seen}, logged {logged[f.name]}")
    if httpx.get(server.url + "/healthz").status_code != 200:
        failures.append("server not healthy after the faults")
    load, rss = soak(server, data, form, args.soak)
    print(
        f"soak {args.soak:g} s, 8 clients: {load.rate:.1f} req/s, errors "
        f"{load.error_count}, server RSS start {rss[0]:.0f} MiB, end "
        f"{rss[-1]:.0f} MiB, max {max(rss):.0f} MiB "
        f"(samples {' '.join(f'{v:.0f}' for v in rss)})"
    )
    if load.error_count:
        failures.append(f"soak errors {load.errors}")
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="rtpose-n", help="what the server serves (default rtpose-n)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--imgsz", type=int, default=320, help="network input size of each request")
    ap.add_argument("--image-size", type=int, default=640, help="side of the posted image")
    ap.add_argument("--clients", default="1,8,32", help="client counts of the load phases")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each load phase")
    ap.add_argument("--soak", type=float, default=300.0, help="length of the soak (s)")
    ap.add_argument("--repeats", type=int, default=3, help="times each fault is sent")
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--logs", help="keep the servers' logs in this folder")
    ap.add_argument(
        "--short", action="store_true", help="CI: 3 s phases, 1 and 8 clients, 20 s soak"
    )
    args = ap.parse_args()
    if args.short:
        args.clients, args.seconds, args.soak, args.repeats = "1,8", 3.0, 20.0, 2
    clients = [int(c) for c in args.clients.split(",")]
    data = people_jpeg(args.image_size)
    form = {"imgsz": str(args.imgsz)}
    max_upload_mb = 2.0
    common = ["--device", args.device, "--token", TOKEN, "--max-upload-mb", str(max_upload_mb)]
    failures: list[str] = []
    print(
        f"posekit serve load: model {args.model}, {args.image_size}x{args.image_size} JPEG "
        f"({len(data) / 1024:.0f} kB) at imgsz {args.imgsz}, {args.seconds:g} s per phase"
    )

    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(args.logs or tmp)
        logs.mkdir(parents=True, exist_ok=True)
        servers = {
            "dynamic": start_server(
                args.model, logs / "dynamic.log", *common, "--max-batch", str(args.max_batch)
            ),
            "max-batch 1": start_server(
                args.model, logs / "max-batch-1.log", *common, "--max-batch", "1"
            ),
        }
        try:
            failures += run_all(servers, args, data, form, clients, max_upload_mb)
        finally:
            for label, server in servers.items():
                if "Traceback" in server.text():
                    failures.append(f"{label} server logged a traceback")
                if (code := server.stop()) != 0:
                    failures.append(f"{label} server exited with {code}")
    for f in failures:
        print("FAILED:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
