"""The gateway's cost: ``/v1/chat/completions`` through the hub vs. straight to the model.

Three kinds of process, so that each one's cost can be told apart: one instant echo-mode fake
OpenAI server; a client process sending ``--requests`` chat completions, ``--concurrency`` at a
time, with the official ``openai`` SDK; and this process, which hosts the hub (SQLite store, the
agent on that fake) and nothing else while a load runs. Bare runs (client → fake) and hub runs
(client → hub → fake) alternate ``--repeat`` times, so a noisy neighbour on a shared machine
hits both alike; the figures are the medians, and every run is listed.

A rate is only the gateway's cost if the client is not the limit. So every run also reports the
CPU time per request of each process (client, fake, hub — ``/proc`` and ``time.process_time``)
and how busy the client was (its CPU time / wall time; near 1.0 it was saturated, and that rate
is the client's, not the server's). The hub's CPU time per request is the gateway's real cost.

SSE time to first byte is compared the same way (one request at a time), and, with ``channels/web`` present, the RSS
that ``--ws-clients`` idle WebSocket clients on ``/ws`` add to the hub's process (the clients
live in a process of their own). ``--profile`` prints where the hub's time goes (cProfile of
one more hub run).

    python bench/gateway.py [--requests 2000] [--concurrency 32] [--repeat 3] [--ws-clients 1000]

Readable lines, then one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import io
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import current_rss_mb, emit, percentile
from bench.agent import FakeProc, fake_process

KEY = "sk-bench-gateway"
BUSY = 0.85
"""A process using this share of a core or more during a run was (near) saturated."""


# --------------------------------------------------------------------------- client processes
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

    await asyncio.gather(*(one(-1 - j) for j in range(concurrency)))  # warm-up: connections, imports
    latencies.clear()
    ttfb.clear()
    began, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu0
    await client.close()
    return {"rate": requests / elapsed, "wall": elapsed, "cpu": cpu, "lat": latencies, "ttfb": ttfb}


async def _idle_sockets(port: int, clients: int) -> None:
    """Open ``clients`` idle WebSockets, say so on stdout, hold them until stdin closes."""
    import aiohttp

    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, headers={"Authorization": f"Bearer {KEY}"}) as http:
        sockets = [await http.ws_connect(f"http://127.0.0.1:{port}/ws", heartbeat=None) for _ in range(clients)]
        print("open", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for ws in sockets:
            await ws.close()


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


async def idle_ws_rss(port: int, clients: int) -> float | None:
    """RSS (MB) that ``clients`` idle WebSocket connections add to this (the hub's) process."""
    if importlib.util.find_spec("channels.web") is None:
        return None
    before = current_rss_mb()
    args = [sys.executable, __file__, "--ws-hold", str(port), "--ws-clients", str(clients)]
    proc = await asyncio.create_subprocess_exec(*args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if (await asyncio.wait_for(proc.stdout.readline(), 120)).strip() != b"open":
            raise RuntimeError("the WebSocket client process failed")
        await asyncio.sleep(0.5)  # let the hub finish each handshake's bookkeeping
        added = current_rss_mb() - before
    finally:
        proc.stdin.close()
        await proc.wait()
    return round(added, 1)


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


async def measured(
    url: str, fake: FakeProc, n: int, c: int, *, stream: bool = False, hub: bool = False
) -> dict[str, Any]:
    """One load, with the CPU time each process spent on it per request (ms)."""
    fake0, hub0 = fake.cpu_s(), time.process_time()
    r = await run_client(url, n, c, stream=stream)
    r["fake_cpu_ms"] = (fake.cpu_s() - fake0) * 1000 / n
    # This process hosts only the hub while the client runs (its own share is a subprocess wait).
    r["hub_cpu_ms"] = (time.process_time() - hub0) * 1000 / n if hub else 0.0
    r["client_cpu_ms"] = r["cpu"] * 1000 / n
    r["client_busy"] = r["cpu"] / r["wall"]
    return r


def summary(kind: str, r: dict[str, Any]) -> dict[str, Any]:
    ms = [x * 1000 for x in r["lat"]]
    return {
        "kind": kind,
        "rps": round(r["rate"], 1),
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "ttfb_p50_ms": round(percentile([x * 1000 for x in r["ttfb"]], 50), 2) if r["ttfb"] else None,
        "client_cpu_ms": round(r["client_cpu_ms"], 3),
        "client_busy": round(r["client_busy"], 2),
        "fake_cpu_ms": round(r["fake_cpu_ms"], 3),
        "hub_cpu_ms": round(r["hub_cpu_ms"], 3),
    }


async def rounds(args: argparse.Namespace, fake: FakeProc, hub_url: str) -> list[dict[str, Any]]:
    """Bare and hub runs alternated, ``--repeat`` rounds; SSE runs after the plain ones, one
    request at a time (time to first byte is a latency: at full load it is the client's queue)."""
    n, c, sse_n = args.requests, args.concurrency, max(1, args.requests // 10)
    runs: list[dict[str, Any]] = []
    # Not counted: the hub's first requests pay for imports, caches and the database's growth.
    await run_client(hub_url, max(1, n // 4), c)
    for i in range(args.repeat):
        order = [("bare", fake.url), ("hub", hub_url)]
        for kind, url in order if i % 2 == 0 else order[::-1]:  # neither always goes first
            runs.append(summary(kind, await measured(url, fake, n, c, hub=kind == "hub")))
        for kind, url in order:
            runs.append(summary(kind + "_sse", await measured(url, fake, sse_n, 1, stream=True, hub=kind == "hub")))
    return runs


async def profile_hub(url: str, fake: FakeProc, n: int, c: int, top: int = 25) -> str:
    prof = cProfile.Profile()
    prof.enable()
    await measured(url, fake, n, c, hub=True)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


# --------------------------------------------------------------------------- figures
def med(runs: list[dict[str, Any]], kind: str, key: str) -> float:
    values = [r[key] for r in runs if r["kind"] == kind and r[key] is not None]
    return round(statistics.median(values), 3) if values else float("nan")


def figures(runs: list[dict[str, Any]], ws_clients: int, ws_mb: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("bare", "hub"):
        for key in ("rps", "p50_ms", "p99_ms", "client_cpu_ms", "client_busy", "fake_cpu_ms"):
            out[f"{kind}_{key}"] = med(runs, kind, key)
    out["hub_cpu_ms_per_request"] = med(runs, "hub", "hub_cpu_ms")
    out["ratio"] = round(out["hub_rps"] / out["bare_rps"], 3)
    pairs = zip([r for r in runs if r["kind"] == "bare"], [r for r in runs if r["kind"] == "hub"], strict=True)
    out["ratios"] = [round(h["rps"] / b["rps"], 3) for b, h in pairs]
    # What the servers alone cost per request: the ratio a machine with a free core for each
    # process would see once the client is not the limit.
    bare_server = out["bare_fake_cpu_ms"]
    hub_server = out["hub_cpu_ms_per_request"] + out["hub_fake_cpu_ms"]
    out["server_cpu_ratio"] = round(bare_server / hub_server, 3) if hub_server else float("nan")
    out["sse_ttfb_bare_p50_ms"] = med(runs, "bare_sse", "ttfb_p50_ms")
    out["sse_ttfb_hub_p50_ms"] = med(runs, "hub_sse", "ttfb_p50_ms")
    out["sse_ttfb_overhead_ms"] = round(out["sse_ttfb_hub_p50_ms"] - out["sse_ttfb_bare_p50_ms"], 2)
    out["ws_idle_clients"] = ws_clients if ws_mb is not None else 0
    out["ws_idle_rss_added_mb"] = ws_mb
    out["runs"] = runs
    return out


def report(out: dict[str, Any], repeat: int) -> None:
    for r in out["runs"]:
        ttfb = f", first byte {r['ttfb_p50_ms']} ms" if r["ttfb_p50_ms"] is not None else ""
        print(
            f"  run {r['kind']:<8}: {r['rps']:7.1f} req/s, p50 {r['p50_ms']} ms{ttfb}; CPU ms/req client "
            f"{r['client_cpu_ms']} (busy {r['client_busy']}), fake {r['fake_cpu_ms']}, hub {r['hub_cpu_ms']}"
        )
    b, h = "bare", "hub"
    print(f"medians of {repeat} alternated runs:")
    print(
        f"straight to the fake : {out[b + '_rps']:.0f} req/s, p50 {out[b + '_p50_ms']} ms, p99 {out[b + '_p99_ms']} ms"
    )
    print(
        f"through the hub      : {out[h + '_rps']:.0f} req/s, p50 {out[h + '_p50_ms']} ms, p99 {out[h + '_p99_ms']} ms"
    )
    print(f"ratio (goal >= 0.70) : {out['ratio']} (per round: {out['ratios']})")
    print(
        f"hub CPU per request  : {out['hub_cpu_ms_per_request']} ms (the gateway's cost), the fake's "
        f"{out['bare_fake_cpu_ms']} ms: server-side CPU ratio {out['server_cpu_ratio']}"
    )
    for kind in (b, h):
        busy = out[f"{kind}_client_busy"]
        verdict = "saturated: the client was the limit" if busy >= BUSY else "not the limit"
        print(f"client, {kind:<4} runs   : {out[f'{kind}_client_cpu_ms']} ms CPU/req, busy {busy} ({verdict})")
    print(
        f"SSE first byte       : {out['sse_ttfb_bare_p50_ms']} ms bare, {out['sse_ttfb_hub_p50_ms']} ms "
        f"through the hub (p50; overhead {out['sse_ttfb_overhead_ms']} ms)"
    )
    if out["ws_idle_rss_added_mb"] is None:
        print("idle WebSockets      : not measured (channels/web absent or --ws-clients 0)")
    else:
        print(
            f"idle WebSockets      : {out['ws_idle_clients']} clients add {out['ws_idle_rss_added_mb']} MB "
            "to the hub's process (clients in their own)"
        )


async def main(args: argparse.Namespace) -> None:
    from hub.app import Hub

    profile = ""
    async with fake_process(latency=0.0, tool=False) as fake:
        with tempfile.TemporaryDirectory() as tmp:
            async with Hub(hub_settings(Path(tmp), fake.url)) as hub:
                assert hub.gateway is not None and hub.gateway.bound_port is not None
                url = f"http://127.0.0.1:{hub.gateway.bound_port}/v1"
                runs = await rounds(args, fake, url)
                ws_mb = await idle_ws_rss(hub.gateway.bound_port, args.ws_clients) if args.ws_clients else None
                if args.profile:
                    profile = await profile_hub(url, fake, args.requests, args.concurrency)
    out = figures(runs, args.ws_clients, ws_mb)
    report(out, args.repeat)
    if profile:
        print("where the hub's time goes (cProfile, one more hub run, by own time):")
        print(profile)
    emit(out)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--repeat", type=int, default=3, help="bare/hub rounds, alternated (default 3)")
    p.add_argument("--ws-clients", type=int, default=1000)
    p.add_argument("--profile", action="store_true", help="cProfile one more hub run and print the top")
    p.add_argument("--client", help=argparse.SUPPRESS)
    p.add_argument("--ws-hold", type=int, help=argparse.SUPPRESS)
    p.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.client:
        print(json.dumps(asyncio.run(_load(a.client, a.requests, a.concurrency, a.stream))))
    elif a.ws_hold:
        asyncio.run(_idle_sockets(a.ws_hold, a.ws_clients))
    else:
        asyncio.run(main(a))
