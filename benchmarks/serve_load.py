"""A bounded load test of the recommendation service (`maskrec serve`) on 127.0.0.1.

    python benchmarks/serve_load.py --data ../shared/data/ml-100k --env ml100k \\
        --clients 1 8 32 --seconds 30 --json benchmarks/results/serve_load_ml100k.json

The service serves a trained project: --project names one (after `kedro run`); without
it the project's own `kedro run` (`__default__`, with --data, --env and --params) trains
one first in a scratch project under benchmarks/results/ (kept: a second run of the same
command reuses it). `maskrec serve` then runs as a user starts it, in its own process,
and for each number of concurrent clients, for --seconds each, every client sends
`POST /recommend` (k=10) with the context of a random test user, waits for the answer and
sends the next (keep-alive connections, no think time); --malformed (default 10%) of
the requests are malformed instead (JSON that RFC 8259 forbids, wrong types, unknown
films, ...), each of which must get a 4xx. Printed per level: requests per second and
latency p50/p95/p99 (ms) of the well-formed requests, the malformed ones answered 4xx,
5xx answers (must be 0), errors (a well-formed request without a 200 and 10 films, a
malformed one without a 4xx, a dropped connection); and the server's peak RSS, and
whether it still answers /health at the end. Every loop is bounded
by --seconds; nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    print_table,
    run_params,
    write_json,
)


def trained_project(args) -> Path:
    """--project, or a scratch project the default `kedro run` trained (once)."""
    if args.project:
        return Path(args.project).resolve()
    folder = Path(args.workdir)
    if (
        folder / "data" / "08_reporting" / "model_stats.json"
    ).exists():  # (a folder of versions)
        print(f"reusing the trained project {folder}", file=sys.stderr)
        return folder
    params = run_params(args, training={"checkpoint_dir": None})
    project = ScratchProject(folder, args.env or None, params)
    seconds = project.run(["__default__"])
    print(f"trained {folder} in {seconds:.0f} s", file=sys.stderr)
    return folder


def start_server(project: Path, env: str, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "maskrec", "serve", "--project", str(project), "--port", str(port)]  # fmt: skip
    if env:
        command += ["--env", env]
    process = subprocess.Popen(
        command, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if health(port):
            return process
        if process.poll() is not None:
            raise SystemExit("maskrec serve exited before answering /health")
        time.sleep(0.5)
    process.kill()
    raise SystemExit("maskrec serve did not answer /health in 300 s")


def health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:  # fmt: skip
            return json.loads(response.read())
    except OSError:
        return None


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), Linux."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def post(body: bytes, port: int) -> bytes:
    """A ready-to-send HTTP/1.1 POST /recommend (keep-alive)."""
    head = (f"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    return head + body


def requests_for(histories: list[list[int]], port: int) -> list[bytes]:
    """One well-formed request per history."""
    return [post(json.dumps({"history": history, "k": 10}).encode(), port) for history in histories]  # fmt: skip


def malformed_requests(histories: list[list[int]], port: int) -> list[bytes]:
    """Requests the service must answer with a 4xx: JSON Python reads and RFC 8259 does
    not, wrong shapes and types, unknown films, impossible k, not JSON at all."""
    known = histories[0][:3]
    bodies = [
        b'{"history": [1], "k": NaN}', b'{"history": [Infinity], "k": 10}', b'{"history": [1e400], "k": 10}',
        b'{"history": [1], "k": 10, "k": 11}', b'{"history": ["Fargo \xff"], "k": 10}',
        b'{"history": [1], "k": ' + b"9" * 5000 + b"}", b"{not json", b"[1, 2, 3]", b"",
        json.dumps({"history": [], "k": 10}).encode(), json.dumps({"history": known, "k": 0}).encode(),
        json.dumps({"history": known, "k": "ten"}).encode(), json.dumps({"history": [-7, 10**12], "k": 10}).encode(),
        json.dumps({"history": known + ["No Such Film (1800)"], "k": 10}).encode(),
        json.dumps({"history": [True, None, 1.5], "k": 10}).encode(), json.dumps({"history": known, "k": 10, "user": 3}).encode(),
    ]  # fmt: skip
    return [post(body, port) for body in bodies]


async def client(port: int, requests: list[bytes], malformed: list[bytes], share: float, until: float, seed: int, stats: dict) -> None:  # fmt: skip
    """One client: a keep-alive connection, one request at a time until `until`; a
    `share` of them malformed (expected: a 4xx), the others well-formed (expected: 200
    with 10 films)."""
    rng = random.Random(seed)
    reader = writer = None
    while time.monotonic() < until:
        started = time.perf_counter()
        bad = rng.random() < share
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(rng.choice(malformed if bad else requests))
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            status = int(head.split(b" ", 2)[1])
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))  # fmt: skip
            body = await asyncio.wait_for(reader.readexactly(length), 30)
            seconds = time.perf_counter() - started
            if status >= 500:
                stats["server_errors"].append(f"status {status}: {body[:200]!r}")
            elif bad:
                stats["malformed"] += 1
                if not 400 <= status < 500:
                    stats["errors"].append(f"malformed request answered {status}")
            else:
                stats["latencies"].append(seconds)
                if status != 200 or len(json.loads(body)["items"]) != 10:
                    stats["errors"].append(f"status {status}: {body[:200]!r}")
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.TimeoutError,
            ValueError,
        ) as error:
            stats["errors"].append(repr(error))
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def level(port: int, requests: list[bytes], malformed: list[bytes], share: float, clients: int, seconds: float) -> dict:  # fmt: skip
    """Requests per second and latency of the well-formed requests; the malformed ones
    answered, the 5xx answers and every other error (a wrong answer, a dropped
    connection)."""
    stats = {"latencies": [], "errors": [], "server_errors": [], "malformed": 0}
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(*(client(port, requests, malformed, share, until, i, stats) for i in range(clients)))  # fmt: skip
    elapsed = time.monotonic() - started
    ms = np.array(stats["latencies"]) * 1000
    return {"clients": clients, "requests": len(ms), "requests_per_second": len(ms) / elapsed,
            "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
            "p95_ms": float(np.percentile(ms, 95)) if len(ms) else None,
            "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
            "malformed_answered_4xx": stats["malformed"], "server_errors_5xx": len(stats["server_errors"]),
            "errors": len(stats["errors"]), "first_errors": (stats["server_errors"] + stats["errors"])[:3]}  # fmt: skip


def test_histories(project: Path, env: str) -> list[list[int]]:
    """Original ids of every test user's context (what a returning user would send)."""
    import pandas as pd

    folder = project / "data"
    test = pd.read_parquet(folder / "05_model_input" / "test_targets.parquet")
    items = pd.read_parquet(folder / "04_feature" / "item_features.parquet").set_index("item_id")  # fmt: skip
    original = items["original_item_id"]
    return [original.loc[list(context)].astype(int).tolist() for context in test["context"] if len(context)]  # fmt: skip


def main() -> None:
    parser = arguments(__doc__, "serve_run", env="ml100k")
    parser.add_argument("--project", default=None, help="a trained project to serve (default: train one in --workdir)")  # fmt: skip
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--malformed", type=float, default=0.1, help="share of malformed requests (each must get a 4xx)")  # fmt: skip
    args = parser.parse_args()
    project = trained_project(args)
    histories = test_histories(project, args.env)
    server = start_server(project, args.env, args.port)
    try:
        served = health(args.port)
        requests, malformed = requests_for(histories, args.port), malformed_requests(histories, args.port)  # fmt: skip
        asyncio.run(
            level(args.port, requests, malformed, args.malformed, 2, 3.0)
        )  # warm-up, not reported
        rows = []
        for clients in args.clients:
            rows.append(asyncio.run(level(args.port, requests, malformed, args.malformed, clients, args.seconds)))  # fmt: skip
            print(f"{clients} clients: {rows[-1]['requests_per_second']:.0f} req/s, p99 {rows[-1]['p99_ms']:.1f} ms, {rows[-1]['server_errors_5xx']} 5xx, {rows[-1]['errors']} errors", file=sys.stderr)  # fmt: skip
        alive = health(args.port) is not None and server.poll() is None
        rss = peak_rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\nmaskrec serve ({served['model']}, {served['items']} items), {len(histories)} test-user histories, {args.seconds:g} s per level")  # fmt: skip
    print(f"{args.malformed:.0%} of requests malformed (each must get a 4xx); latency and requests/s of the well-formed ones")  # fmt: skip
    print_table(rows, ["clients", "requests", "requests_per_second", "p50_ms", "p95_ms", "p99_ms", "malformed_answered_4xx", "server_errors_5xx", "errors"])  # fmt: skip
    print(f"server peak RSS {rss:.0f} MiB; answering /health after the load: {alive}")
    write_json(args.json, {"model": served, "seconds": args.seconds, "malformed_share": args.malformed,
                           "histories": len(histories), "rows": rows, "server_peak_rss_mib": rss, "alive_after": alive})  # fmt: skip


if __name__ == "__main__":
    main()
