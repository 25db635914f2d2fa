"""The dashboard's memories API (hub/dashboard/memory.py) against a real hub on a real port:
admins only, every scope with its count (users first), one scope's memories listed and searched,
one forgotten (and only that one), and a 404 saying so when memory is off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.app import Hub
from hub.config import Settings, load_settings
from hub.memory import Memory, Scope
from hub.memory.access import MemoryAccess
from hub.messages import ConversationRef
from tests.hub.test_dashboard import ADMIN, CSRF, USER, Client, base

ALICE = Scope.user("telegram", "100")
BOB = Scope.user("telegram", "200")
ROOM = Scope.conversation(ConversationRef(channel="telegram", chat="-5"))
EVERYONE = Scope.shared()


def settings(tmp_path: Path, **memory: Any) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(tmp_path / "data")},
            "server": {"enabled": True, "port": 0, "api_keys": [USER], "admin_keys": [ADMIN]},
            "agent": {"runtime": "none"},
            "memory": memory,
        },
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def seed(memory: MemoryAccess | None) -> dict[str, Memory]:
    assert memory is not None
    made = {}
    for name, text, scope in (
        ("cat", "My cat is called Miso <script>alert(1)</script>", ALICE),
        ("bakery", "I work at the bakery", ALICE),
        ("chess", "Bob plays chess", BOB),
        ("standup", "Standup is at 9:30", ROOM),
        ("office", "The office is closed on Fridays", EVERYONE),
    ):
        made[name] = await memory.backend.store(text, scope=scope, source="remember", scopes=[scope])
    return made


async def test_only_admins_see_memories(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with Hub(settings(tmp_path)) as hub:
        made = await seed(hub.memory)
        url = base(hub) + "/api/admin/memories"
        for key, status in ((None, 401), (USER, 403)):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            async with http.get(url, headers=headers) as r:
                assert r.status == status
            async with http.get(url + "?scope=user&key=telegram:100", headers=headers) as r:
                assert r.status == status
            async with http.delete(f"{url}/{made['cat'].id}", headers={**headers, **CSRF}) as r:
                assert r.status == status
        # Without the CSRF header an admin's delete is refused too.
        async with http.delete(f"{url}/{made['cat'].id}", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
            assert r.status == 403 and "X-AutoHands" in (await r.json())["error"]["message"]
        assert hub.memory is not None and len(await hub.memory.backend.list(scopes=[ALICE])) == 2


async def test_scopes_and_their_memories(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with Hub(settings(tmp_path)) as hub:
        made = await seed(hub.memory)
        admin = Client(http, base(hub))
        listing = await admin.get("/api/admin/memories")
        assert listing["backend"] == "sqlite"
        assert listing["scopes"] == [  # users first, then conversations, then the global scope
            {"kind": "user", "key": "telegram:100", "count": 2},
            {"kind": "user", "key": "telegram:200", "count": 1},
            {"kind": "conversation", "key": "telegram:-5", "count": 1},
            {"kind": "global", "key": "", "count": 1},
        ]

        alice = await admin.get("/api/admin/memories?scope=user&key=telegram:100")
        assert alice["scope"] == {"kind": "user", "key": "telegram:100"} and alice["query"] == ""
        assert [m["id"] for m in alice["memories"]] == [made["bakery"].id, made["cat"].id]  # newest first
        cat = alice["memories"][1]
        assert cat["text"] == made["cat"].text and cat["source"] == "remember"
        assert cat["created_at"] == made["cat"].created_at.isoformat()

        found = await admin.get("/api/admin/memories?scope=user&key=telegram:100&q=miso")
        [hit] = found["memories"]
        assert hit["id"] == made["cat"].id and hit["via"] == "fulltext" and hit["score"] > 0
        # A search stays inside the scope asked for.
        assert (await admin.get("/api/admin/memories?scope=user&key=telegram:100&q=chess"))["memories"] == []
        everyone = await admin.get("/api/admin/memories?scope=global")
        assert [m["id"] for m in everyone["memories"]] == [made["office"].id]

        bad = await admin.get("/api/admin/memories?scope=team&key=x", status=400)
        assert "scope must be user, conversation or global" in bad["error"]["message"]
        await admin.get("/api/admin/memories?scope=user", status=400)  # no key


async def test_an_admin_forgets_one_memory(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with Hub(settings(tmp_path)) as hub:
        made = await seed(hub.memory)
        admin = Client(http, base(hub))
        url = base(hub) + "/api/admin/memories"
        async with http.delete(f"{url}/{made['cat'].id}", headers={**admin.headers, **CSRF}) as r:
            assert r.status == 200 and await r.json() == {"forgotten": made["cat"].id}
        assert await admin.post(f"/api/admin/memories/{made['office'].id}/forget") == {"forgotten": made["office"].id}
        gone = await admin.post(f"/api/admin/memories/{made['cat'].id}/forget", status=404)
        assert "no memory" in gone["error"]["message"]
        left = await admin.get("/api/admin/memories")
        assert {(s["key"], s["count"]) for s in left["scopes"]} == {
            ("telegram:100", 1),
            ("telegram:200", 1),
            ("telegram:-5", 1),
        }


async def test_memory_off_is_a_404_that_says_so(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with Hub(settings(tmp_path, enabled=False)) as hub:
        assert hub.memory is None
        admin = Client(http, base(hub))
        for answer in (
            await admin.get("/api/admin/memories", status=404),
            await admin.get("/api/admin/memories?scope=user&key=telegram:100", status=404),
            await admin.post("/api/admin/memories/abc/forget", status=404),
        ):
            assert answer["error"]["message"] == "memory is off ([memory] enabled = false)"
