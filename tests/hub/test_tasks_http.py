"""The task pool over HTTP (hub/tasks/http.py, docs/API.md "Tasks") and on the dashboard
(hub/dashboard/tasks.py), against a real hub on a real port: submit, read, control, the event
stream, the error shapes, one principal unable to see or control another's task (an admin
may), and the dashboard's Tasks tab endpoints with its CSRF rule."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.agent import Checkpointing, RunContext
from hub.app import Hub
from hub.config import load_settings
from hub.messages import Outbound
from tests.hub.conftest import FuncAgent, reply

ALICE = "alice-key-0123456789"
BOB = "bob-key-0123456789"
ADMIN = "admin-key-0123456789"


class Gate:
    """Task runs take one step, then wait for ``release`` before answering."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.stepped = asyncio.Event()

    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        if isinstance(ctx, Checkpointing) and not ctx.resuming:
            self.stepped.set()
            await self.release.wait()
            await ctx.step([], label="waited")
        yield reply(ctx, f"done: {ctx.inbound.text}")


class Api:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def call(self, method: str, path: str, key: str | None = ALICE, body: Any = None, status: int = 200) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with self.http.request(method, self.base + path, headers=headers, json=body) as r:
            assert r.status == status, await r.text()
            return await r.json()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Hub, Api, Gate]]:
    settings = load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(tmp_path / "data")},
            "server": {"enabled": True, "port": 0, "api_keys": [ALICE, BOB], "admin_keys": [ADMIN]},
            "channels": {"web": {"enabled": False}, "api": {"enabled": False}},
        },
    )
    gate = Gate()
    async with Hub(settings, agent=FuncAgent(gate.run)) as hub, aiohttp.ClientSession() as http:
        assert hub.gateway is not None
        yield hub, Api(http, f"http://127.0.0.1:{hub.gateway.bound_port}"), gate


async def test_submit_read_and_wait_for_a_task(served: tuple[Hub, Api, Gate]) -> None:
    hub, api, gate = served
    made = await api.call("POST", "/v1/tasks", body={"input": "sum the numbers", "mode": "react"}, status=201)
    assert set(made) == {"id", "state"} and made["state"] == "pending"
    gate.release.set()
    assert (await hub.tasks.wait(made["id"], timeout=10)).state == "completed"
    task = await api.call("GET", f"/v1/tasks/{made['id']}")
    assert task["object"] == "task" and task["state"] == "completed" and task["mode"] == "react"
    assert task["input"] == "sum the numbers" and task["result"] == "done: sum the numbers"
    listing = await api.call("GET", "/v1/tasks")
    assert listing["object"] == "list" and [t["id"] for t in listing["data"]] == [made["id"]]


async def test_control_moves_and_illegal_ones_are_409(served: tuple[Hub, Api, Gate]) -> None:
    hub, api, gate = served
    task_id = (await api.call("POST", "/v1/tasks", body={"input": "long work"}, status=201))["id"]
    await asyncio.wait_for(gate.stepped.wait(), 10)
    await api.call("POST", f"/v1/tasks/{task_id}/pause")
    gate.release.set()
    assert (await hub.tasks.wait(task_id, timeout=10)).state == "paused"
    refused = await api.call("POST", f"/v1/tasks/{task_id}/cancel", status=409)
    assert refused["error"]["code"] == "invalid_state" and "paused" in refused["error"]["message"]
    assert refused["error"]["type"] == "invalid_request_error"
    await api.call("POST", f"/v1/tasks/{task_id}/resume")
    assert (await hub.tasks.wait(task_id, timeout=10)).state == "completed"
    refused = await api.call("POST", f"/v1/tasks/{task_id}/retry", body={"from_start": True}, status=409)
    assert "completed" in refused["error"]["message"]


async def test_cancel_and_retry_from_the_start(served: tuple[Hub, Api, Gate]) -> None:
    hub, api, gate = served
    task_id = (await api.call("POST", "/v1/tasks", body={"input": "slow"}, status=201))["id"]
    await asyncio.wait_for(gate.stepped.wait(), 10)
    cancelled = await api.call("POST", f"/v1/tasks/{task_id}/cancel")
    assert cancelled["id"] == task_id
    assert (await hub.tasks.wait(task_id, timeout=10)).state == "cancelled"
    gate.release.set()
    await api.call("POST", f"/v1/tasks/{task_id}/retry", body={"from_start": True})
    assert (await hub.tasks.wait(task_id, timeout=10)).state == "completed"


async def test_another_principal_gets_404_and_an_admin_may_control(served: tuple[Hub, Api, Gate]) -> None:
    hub, api, gate = served
    task_id = (await api.call("POST", "/v1/tasks", body={"input": "alice's"}, status=201))["id"]
    await asyncio.wait_for(gate.stepped.wait(), 10)
    unknown = await api.call("GET", "/v1/tasks/nosuchtask", key=BOB, status=404)
    hidden = await api.call("GET", f"/v1/tasks/{task_id}", key=BOB, status=404)
    assert hidden["error"]["code"] == unknown["error"]["code"] == "task_not_found"
    for action in ("cancel", "pause", "resume", "retry"):
        await api.call("POST", f"/v1/tasks/{task_id}/{action}", key=BOB, status=404)
    await api.call("GET", f"/v1/tasks/{task_id}/events", key=BOB, status=404)
    assert (await api.call("GET", "/v1/tasks", key=BOB))["data"] == []
    assert (await hub.tasks.get(task_id)).state == "running"
    assert [t["id"] for t in (await api.call("GET", "/v1/tasks", key=ADMIN))["data"]] == [task_id]
    await api.call("POST", f"/v1/tasks/{task_id}/cancel", key=ADMIN)
    gate.release.set()
    assert (await hub.tasks.wait(task_id, timeout=10)).state == "cancelled"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid_value"),
        ({"input": "  "}, 400, "invalid_value"),
        ({"input": "x", "mode": "fast"}, 400, "invalid_value"),
        ({"input": "x", "priority": "high"}, 400, "invalid_value"),
        ({"input": "x", "priority": True}, 400, "invalid_value"),
        ([1, 2], 400, "invalid_json"),
    ],
)
async def test_bad_bodies_are_400(served: tuple[Hub, Api, Gate], body: Any, status: int, code: str) -> None:
    _, api, _ = served
    answer = await api.call("POST", "/v1/tasks", body=body, status=status)
    assert answer["error"]["code"] == code and answer["error"]["message"]


async def test_no_key_is_401_and_an_unknown_action_404(served: tuple[Hub, Api, Gate]) -> None:
    _, api, _ = served
    answer = await api.call("GET", "/v1/tasks", key=None, status=401)
    assert answer["error"]["type"] == "authentication_error"
    await api.call("POST", "/v1/tasks", key="wrong-key-0123456789", body={"input": "x"}, status=401)
    task_id = (await api.call("POST", "/v1/tasks", body={"input": "x"}, status=201))["id"]
    await api.call("POST", f"/v1/tasks/{task_id}/explode", status=404)


async def test_events_stream_until_a_final_state(served: tuple[Hub, Api, Gate]) -> None:
    _, api, gate = served
    task_id = (await api.call("POST", "/v1/tasks", body={"input": "watch me"}, status=201))["id"]
    await asyncio.wait_for(gate.stepped.wait(), 10)
    events: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {ALICE}"}
    async with api.http.get(f"{api.base}/v1/tasks/{task_id}/events", headers=headers) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        async with asyncio.timeout(10):
            async for line in r.content:
                if line.startswith(b"data: "):
                    events.append(json.loads(line[6:]))
                    if len(events) == 1:
                        gate.release.set()  # the stream is open: let the task finish
    assert events[0] == {**events[0], "task_id": task_id, "kind": "state", "state": "running"}
    assert events[-1]["kind"] == "state" and events[-1]["state"] == "completed"
    assert any(e["kind"] == "step" and e["detail"] == "waited" for e in events)
    # a task that has ended: its state, and the stream ends at once
    async with api.http.get(f"{api.base}/v1/tasks/{task_id}/events", headers=headers) as r:
        body = await asyncio.wait_for(r.text(), 10)
    assert [json.loads(x[6:])["state"] for x in body.splitlines() if x.startswith("data: ")] == ["completed"]


async def test_the_dashboards_tasks_tab_lists_and_controls_with_csrf(served: tuple[Hub, Api, Gate]) -> None:
    hub, api, gate = served
    task_id = (await api.call("POST", "/v1/tasks", body={"input": "from alice"}, status=201))["id"]
    await asyncio.wait_for(gate.stepped.wait(), 10)
    listed = await api.call("GET", "/api/admin/tasks", key=ADMIN)
    assert listed["enabled"] and [(t["id"], t["state"]) for t in listed["tasks"]] == [(task_id, "running")]
    assert listed["tasks"][0]["owner"].startswith("key-")  # a key's fingerprint, never the key
    await api.call("GET", "/api/admin/tasks", key=ALICE, status=403)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with api.http.post(f"{api.base}/api/admin/tasks/{task_id}/pause", headers=headers) as r:
        assert r.status == 403  # no X-AutoHands header: a cross-site form cannot do this
    headers["X-AutoHands"] = "1"
    async with api.http.post(f"{api.base}/api/admin/tasks/{task_id}/pause", headers=headers, json={}) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["task"]["id"] == task_id
    gate.release.set()
    assert (await hub.tasks.wait(task_id, timeout=10)).state == "paused"
    async with api.http.post(f"{api.base}/api/admin/tasks/{task_id}/cancel", headers=headers, json={}) as r:
        assert r.status == 409 and "paused" in (await r.json())["error"]["message"]
    async with api.http.post(f"{api.base}/api/admin/tasks/nosuch/resume", headers=headers, json={}) as r:
        assert r.status == 404
    async with api.http.post(f"{api.base}/api/admin/tasks/{task_id}/resume", headers=headers, json={}) as r:
        assert r.status == 200
    assert (await hub.tasks.wait(task_id, timeout=10)).state == "completed"
    async with api.http.get(f"{api.base}/dashboard", headers=headers) as r:
        assert 'data-tab="tasks"' in await r.text()
