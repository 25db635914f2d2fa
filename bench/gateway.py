"""The gateway's cost: ``/v1/chat/completions`` through the hub vs. straight to the model.

One instant echo-mode fake OpenAI server runs in its own process. The same load (``--requests``
chat completions, ``--concurrency`` at a time, the official ``openai`` SDK) is sent from a
client process, first straight to the fake, then to a hub (SQLite store, the agent on that
fake) in this process: the ratio of the two rates is what the gateway, the store and the agent
run cost. SSE time to first byte is compared the same way; with ``channels/web`` present, the
RSS that ``--ws-clients`` idle WebSocket clients on ``/ws`` add to the hub is measured too.

    python bench/gateway.py [--requests 2000] [--concurrency 32] [--ws-clients 1000]

Readable lines, then one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import current_rss_mb, emit, percentile
from bench.agent import fake_process

KEY = "sk-bench-gateway"


# --------------------------------------------------------------------------- client process
async def _load(url: str, requests: int, concurrency: int, stream: bool) -> dict[str, Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0)
    latencies: list[float] = []
    ttfb: list[float] = []
    counter = iter(range(requests))

    async def one(i: int) -> None:
        start = time.perf_counter()
        msgs: Any = [{"role": "user", "content": f"hello {i}"}]
        if stream:
            s = await client.chat.completions.create(model="autohands", messages=msgs, stream=True)
            first = True
            async for _ in s:
                if first:
                    ttfb.append(time.perf_counter() - start)
                    first = False
        else:
            await client.chat.completions.create(model="autohands", messages=msgs)
        latencies.append(time.perf_counter() - start)

    async def worker() -> None:
        for i in counter:
            await one(i)

    await one(-1)  # warm-up: connections, imports
    latencies.clear()
    ttfb.clear()
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    await client.close()
    return {"rate": requests / elapsed, "lat": latencies, "ttfb": ttfb}


def client_main(url: str, requests: int, concurrency: int, stream: bool) -> None:
    print(json.dumps(asyncio.run(_load(url, requests, concurrency, stream))))


async def run_client(url: str, requests: int, concurrency: int, *, stream: bool = False) -> dict[str, Any]:
    args = [sys.executable, __file__, "--client", url, "--requests", str(requests), "--concurrency", str(concurrency)]
    proc = await asyncio.create_subprocess_exec(
        *args, *(["--stream"] if stream else []), cwd=ROOT, stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError("the client process failed")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- the hub
def hub_settings(data_dir: Path, fake_url: str) -> Any:
    from hub.config import load_settings

    web = importlib.util.find_spec("channels.web") is not None
    return load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(data_dir)},
            "server": {"port": 0, "api_keys": [KEY]},
            "providers": {"fake": {"kind": "openai", "base_url": fake_url, "api_key": "sk-bench", "model": "m"}},
            "agent": {"provider": "fake"},
            "tools": {"enabled": [], "workspace": str(data_dir / "ws")},
            "log": {"file": "", "level": "WARNING"},
            "channels": {"web": {"enabled": web}} if web else {},
        },
    )


async def idle_ws_rss(port: int, clients: int) -> float | None:
    """RSS (MB) that ``clients`` idle WebSocket connections add to this process: the hub's
    sockets and the clients' (both are here; the clients' share is in the note)."""
    import aiohttp

    if importlib.util.find_spec("channels.web") is None:
        return None
    before = current_rss_mb()
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, headers={"Authorization": f"Bearer {KEY}"}) as http:
        sockets = []
        for _ in range(clients):
            sockets.append(await http.ws_connect(f"http://127.0.0.1:{port}/ws", heartbeat=None))
        await asyncio.sleep(0.5)
        added = current_rss_mb() - before
        for ws in sockets:
            await ws.close()
    return round(added, 1)


def figures(prefix: str, r: dict[str, Any]) -> dict[str, float]:
    ms = [x * 1000 for x in r["lat"]]
    return {
        f"{prefix}_rps": round(r["rate"], 1),
        f"{prefix}_p50_ms": round(percentile(ms, 50), 2),
        f"{prefix}_p99_ms": round(percentile(ms, 99), 2),
    }


async def main(args: argparse.Namespace) -> None:
    from hub.app import Hub

    out: dict[str, Any] = {}
    async with fake_process(latency=0.0, tool=False) as fake:
        n, c = args.requests, args.concurrency
        bare = await run_client(fake.url, n, c)
        bare_sse = await run_client(fake.url, max(1, n // 4), c, stream=True)
        with tempfile.TemporaryDirectory() as tmp:
            hub = Hub(hub_settings(Path(tmp), fake.url))
            async with hub:
                assert hub.gateway is not None and hub.gateway.bound_port is not None
                url = f"http://127.0.0.1:{hub.gateway.bound_port}/v1"
                through = await run_client(url, n, c)
                through_sse = await run_client(url, max(1, n // 4), c, stream=True)
                ws_mb = await idle_ws_rss(hub.gateway.bound_port, args.ws_clients) if args.ws_clients else None
    out.update(figures("bare", bare))
    out.update(figures("hub", through))
    out["ratio"] = round(through["rate"] / bare["rate"], 3)
    bare_ttfb = percentile([x * 1000 for x in bare_sse["ttfb"]], 50)
    hub_ttfb = percentile([x * 1000 for x in through_sse["ttfb"]], 50)
    out["sse_ttfb_bare_p50_ms"] = round(bare_ttfb, 2)
    out["sse_ttfb_hub_p50_ms"] = round(hub_ttfb, 2)
    out["sse_ttfb_overhead_ms"] = round(hub_ttfb - bare_ttfb, 2)
    out["ws_idle_clients"] = args.ws_clients if ws_mb is not None else 0
    out["ws_idle_rss_added_mb"] = ws_mb
    print(
        f"straight to the fake : {out['bare_rps']:.0f} req/s, p50 {out['bare_p50_ms']} ms, p99 {out['bare_p99_ms']} ms"
    )
    print(f"through the hub      : {out['hub_rps']:.0f} req/s, p50 {out['hub_p50_ms']} ms, p99 {out['hub_p99_ms']} ms")
    print(f"ratio (goal >= 0.70) : {out['ratio']}")
    print(f"SSE first byte       : {bare_ttfb:.1f} ms bare, {hub_ttfb:.1f} ms through the hub (p50)")
    if ws_mb is None:
        print("idle WebSockets      : not measured (channels/web absent or --ws-clients 0)")
    else:
        print(f"idle WebSockets      : {args.ws_clients} clients add {ws_mb} MB (hub and clients in one process)")
    emit(out)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--ws-clients", type=int, default=1000)
    p.add_argument("--client", help=argparse.SUPPRESS)
    p.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.client:
        client_main(a.client, a.requests, a.concurrency, a.stream)
    else:
        asyncio.run(main(a))
