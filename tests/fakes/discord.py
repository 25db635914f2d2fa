"""A local Discord: REST API v10 and a gateway WebSocket, for discord.py pointed at it.

The REST half answers what a bot uses (``/users/@me``, ``/oauth2/applications/@me``,
``/gateway[/bot]``, channels, messages with ``nonce`` + ``enforce_nonce``, history with
``before``/``after``/``limit``, edits, typing, interaction callbacks and ``@original`` edits),
with rate-limit headers and real 429 bodies. The gateway half speaks v10 JSON with optional
``zlib-stream`` transport compression (what discord.py asks for without ``zstandard``):
HELLO → IDENTIFY → READY + GUILD_CREATE, heartbeats and ACKs, sequence numbers, RESUME with
replay then RESUMED, op 7 RECONNECT and op 9 INVALID_SESSION.

Tests drive it through the control methods::

    async with FakeDiscord() as fake:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = fake.api_base, fake.gateway_url
        await fake.user_message(fake.general_id, fake.alice, "hi", mention=True)
        fake.zombie()                      # no more ACKs or events on this connection
        async with fake.outage():          # session invalidated; messages only go to history
            await fake.user_message(...)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

DISCORD_EPOCH_MS = 1420070400000
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
NONCE_WINDOW_S = 120.0
INTERACTION_DEADLINE_S = 3.0

Json = dict[str, Any]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly ``application/json`` with no charset, as Discord sends: discord.py compares the
    # header verbatim and treats anything else as text.
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _error(status: int, code: int, message: str, **extra: Any) -> web.Response:
    return _json({"message": message, "code": code, **extra}, status)


@dataclass
class Fault:
    """An error the next matching REST call gets instead of its answer."""

    method: str
    path_part: str
    status: int
    retry_after: float = 0.0
    global_: bool = False
    after_effect: bool = False
    """Do the work (create the message) and then answer the error: a lost answer."""


@dataclass
class Created:
    """A message the bot created through REST."""

    message: Json
    payload: Json


@dataclass
class InteractionRecord:
    interaction: Json
    sent_at: float
    callbacks: list[tuple[Json, float]] = field(default_factory=list)
    """(callback body, seconds after dispatch)."""


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    zlib_stream: bool
    silent: bool = False
    """Zombie: no heartbeat ACKs and no events."""
    deaf: bool = False
    """Heartbeats ACKed but no events."""
    compressor: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: Json) -> None:
        raw = json.dumps(payload, separators=(",", ":"))
        async with self.lock:
            if self.ws.closed:
                return
            if self.zlib_stream:
                data = self.compressor.compress(raw.encode()) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(raw)


@dataclass
class _Session:
    id: str
    intents: int
    seq: int = 0
    backlog: list[Json] = field(default_factory=list)
    conn: _Conn | None = None
    valid: bool = True


class FakeDiscord:
    """One bot user in one guild (channels ``general``, ``random``, a thread) plus DMs."""

    def __init__(self, *, token: str = "fake-bot-token", heartbeat_interval_ms: int = 250) -> None:
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._ids = itertools.count(1)
        self.bot = self._user("autohands", bot=True)
        self.alice = self._user("alice")
        self.bob = self._user("bob")
        self.carol = self._user("carol")
        """Not on the test configs' allow lists: a stranger."""
        self.other_bot = self._user("otherbot", bot=True)
        self.guild_id = self.snowflake()
        self.general_id = self.snowflake()
        self.random_id = self.snowflake()
        self.thread_id = self.snowflake()
        self.channels: dict[str, Json] = {}
        for cid, name in ((self.general_id, "general"), (self.random_id, "random")):
            self.channels[cid] = {
                "id": cid,
                "type": 0,
                "guild_id": self.guild_id,
                "name": name,
                "position": 0,
                "permission_overwrites": [],
                "parent_id": None,
                "nsfw": False,
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "flags": 0,
            }
        self.channels[self.thread_id] = {
            "id": self.thread_id,
            "type": 11,
            "guild_id": self.guild_id,
            "parent_id": self.general_id,
            "name": "a thread",
            "owner_id": self.alice["id"],
            "message_count": 0,
            "member_count": 2,
            "rate_limit_per_user": 0,
            "flags": 0,
            "last_message_id": None,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _now_iso(),
                "locked": False,
            },
        }
        self.messages: dict[str, list[Json]] = {cid: [] for cid in self.channels}
        self.created: list[Created] = []
        self.edits: list[tuple[str, Json]] = []
        self.typing: list[str] = []
        self.interactions: dict[str, InteractionRecord] = {}
        self.original_edits: list[Json] = []
        self.faults: list[Fault] = []
        self.rest_calls: list[tuple[str, str]] = []
        self.identifies = 0
        self.resumes = 0
        self.connections = 0
        self.identify_payloads: list[Json] = []
        self.connect_queries: list[dict[str, str]] = []
        self._session: _Session | None = None
        self._gate = asyncio.Event()
        self._gate.set()
        self._runner: web.AppRunner | None = None
        self._base = ""

    # ---- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        app.add_routes(
            [
                web.get("/gateway", self._gateway_ws),
                web.get("/gateway/", self._gateway_ws),
                web.get("/resume-gateway", self._gateway_ws),
                web.get("/resume-gateway/", self._gateway_ws),
                web.get("/api/v10/gateway", self._get_gateway),
                web.get("/api/v10/gateway/bot", self._get_gateway),
                web.get("/api/v10/users/@me", self._get_me),
                web.get("/api/v10/oauth2/applications/@me", self._get_app),
                web.get("/api/v10/channels/{cid}", self._get_channel),
                web.post("/api/v10/channels/{cid}/messages", self._post_message),
                web.get("/api/v10/channels/{cid}/messages", self._history),
                web.patch("/api/v10/channels/{cid}/messages/{mid}", self._patch_message),
                web.post("/api/v10/channels/{cid}/typing", self._typing),
                web.post("/api/v10/interactions/{iid}/{token}/callback", self._interaction_callback),
                web.patch("/api/v10/webhooks/{app}/{token}/messages/@original", self._edit_original),
            ]
        )
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._base = f"127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session and self._session.conn:
            await self._session.conn.ws.close()
        if self._runner:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://{self._base}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self._base}/gateway"

    # ---- ids and objects -------------------------------------------------------------------
    def snowflake(self) -> str:
        """Time-ordered like Discord's: ms since the Discord epoch, then a counter."""
        return str(((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF))

    def _user(self, name: str, *, bot: bool = False) -> Json:
        user: Json = {
            "id": self.snowflake(),
            "username": name,
            "discriminator": "0",
            "global_name": name.title(),
            "avatar": None,
            "public_flags": 0,
        }
        if bot:
            user["bot"] = True
        return user

    def _member(self, user: Json) -> Json:
        return {
            "user": user,
            "roles": [],
            "joined_at": _now_iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
        }

    def _guild(self) -> Json:
        return {
            "id": self.guild_id,
            "name": "Test Guild",
            "icon": None,
            "owner_id": self.alice["id"],
            "roles": [
                {
                    "id": self.guild_id,
                    "name": "@everyone",
                    "permissions": "1071698660929",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "features": [],
            "member_count": 5,
            "large": False,
            "members": [self._member(u) for u in (self.bot, self.alice, self.bob, self.carol, self.other_bot)],
            "channels": [c for c in self.channels.values() if c["type"] == 0],
            "threads": [c for c in self.channels.values() if c["type"] == 11],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "unavailable": False,
            "joined_at": _now_iso(),
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "premium_tier": 0,
            "system_channel_flags": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "afk_timeout": 300,
        }

    def dm_channel(self, user: Json) -> str:
        """The DM channel between ``user`` and the bot (created on first use)."""
        for cid, ch in self.channels.items():
            if ch["type"] == 1 and ch["recipients"][0]["id"] == user["id"]:
                return cid
        cid = self.snowflake()
        self.channels[cid] = {"id": cid, "type": 1, "recipients": [user], "last_message_id": None, "flags": 0}
        self.messages[cid] = []
        return cid

    def _find_message(self, cid: str, mid: str) -> Json | None:
        return next((m for m in self.messages.get(cid, []) if m["id"] == mid), None)

    def _new_message(
        self,
        cid: str,
        author: Json,
        content: str,
        *,
        reference: Json | None = None,
        nonce: str | None = None,
        components: list[Json] | None = None,
    ) -> Json:
        channel = self.channels[cid]
        mentions = [
            u
            for u in (self.bot, self.alice, self.bob, self.carol, self.other_bot)
            if f"<@{u['id']}>" in content or f"<@!{u['id']}>" in content
        ]
        msg: Json = {
            "id": self.snowflake(),
            "channel_id": cid,
            "author": author,
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in content,
            "mentions": mentions,
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "components": components or [],
        }
        if nonce is not None:
            msg["nonce"] = nonce
        if reference is not None:
            ref = self._find_message(reference["channel_id"], reference["message_id"])
            msg["type"] = 19
            msg["message_reference"] = {"type": 0, **reference}
            msg["referenced_message"] = ref
            if ref and ref["author"]["id"] != author["id"] and ref["author"] not in mentions:
                mentions.append(ref["author"])  # Discord pings the replied-to author by default
        if "guild_id" in channel:
            msg["guild_id"] = self.guild_id
        self.messages[cid].append(msg)
        channel["last_message_id"] = msg["id"]
        return msg

    # ---- gateway dispatch ------------------------------------------------------------------
    async def dispatch(self, event: str, data: Json) -> None:
        """Send an event to the live session (buffered for RESUME if the socket is gone)."""
        session = self._session
        if session is None or not session.valid:
            return
        if event == "MESSAGE_CREATE" and not self._intended(session.intents, data):
            return
        session.seq += 1
        payload = {
            "op": 0,
            "t": event,
            "s": session.seq,
            "d": self._gateway_view(session.intents, event, data),
        }
        session.backlog.append(payload)
        conn = session.conn
        if conn and not conn.silent and not conn.deaf:
            await conn.send(payload)

    def _intended(self, intents: int, data: Json) -> bool:
        need = INTENT_GUILD_MESSAGES if "guild_id" in data else INTENT_DIRECT_MESSAGES
        return bool(intents & need)

    def _gateway_view(self, intents: int, event: str, data: Json) -> Json:
        data = dict(data)
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and "guild_id" in data:
            data["member"] = {k: v for k, v in self._member(data["author"]).items() if k != "user"}
            addressed = any(u["id"] == self.bot["id"] for u in data["mentions"])
            if not intents & INTENT_MESSAGE_CONTENT and not addressed and data["author"]["id"] != self.bot["id"]:
                data["content"] = ""  # the privileged intent is missing: Discord blanks the content
        return data

    # ---- control API -----------------------------------------------------------------------
    async def user_message(
        self, cid: str, author: Json, content: str, *, mention: bool = False, reply_to: str | None = None
    ) -> Json:
        """A user posts in a channel (stored in history, dispatched if a session is live)."""
        if mention:
            content = f"<@{self.bot['id']}> {content}"
        ref = (
            {"message_id": reply_to, "channel_id": cid, "guild_id": self.channels[cid].get("guild_id")}
            if reply_to
            else None
        )
        if ref and ref["guild_id"] is None:
            del ref["guild_id"]
        msg = self._new_message(cid, author, content, reference=ref)
        await self.dispatch("MESSAGE_CREATE", msg)
        return msg

    async def dm(self, author: Json, content: str) -> Json:
        return await self.user_message(self.dm_channel(author), author, content)

    async def redeliver(self, msg: Json) -> None:
        """Dispatch an already delivered MESSAGE_CREATE again (as a RESUME replay can)."""
        await self.dispatch("MESSAGE_CREATE", msg)

    async def click_button(self, message_id: str, custom_id: str, user: Json) -> InteractionRecord:
        cid, message = next((cid, m) for cid, msgs in self.messages.items() for m in msgs if m["id"] == message_id)
        iid = self.snowflake()
        inter: Json = {
            "id": iid,
            "application_id": self.bot["id"],
            "type": 3,
            "token": f"itoken-{iid}",
            "version": 1,
            "channel_id": cid,
            "channel": {k: v for k, v in self.channels[cid].items() if k != "recipients"},
            "message": message,
            "data": {"custom_id": custom_id, "component_type": 2},
            "app_permissions": "1071698660929",
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": self.guild_id},
            "context": 0,
            "attachment_size_limit": 8388608,
        }
        if "guild_id" in self.channels[cid]:
            inter["guild_id"] = self.guild_id
            inter["guild_locale"] = "en-US"
            inter["member"] = {**self._member(user), "permissions": "1071698660929"}
        else:
            inter["user"] = user
            inter["context"] = 1
        record = InteractionRecord(inter, time.monotonic())
        self.interactions[iid] = record
        await self.dispatch("INTERACTION_CREATE", inter)
        return record

    def zombie(self) -> None:
        """The current connection stays open but sends no ACKs and no events."""
        if self._session and self._session.conn:
            self._session.conn.silent = True

    def deafen(self) -> None:
        """The current connection ACKs heartbeats but delivers no events."""
        if self._session and self._session.conn:
            self._session.conn.deaf = True

    async def request_reconnect(self) -> None:
        """Op 7: the client should reconnect and RESUME."""
        if self._session and self._session.conn:
            await self._session.conn.send({"op": 7, "d": None, "s": None, "t": None})

    async def invalidate_session(self) -> None:
        """Op 9 with ``d=false``: the session is gone; the client must IDENTIFY afresh."""
        session = self._session
        if session and session.conn:
            session.valid = False
            self._session = None
            await session.conn.send({"op": 9, "d": False, "s": None, "t": None})

    async def close_connection(self, code: int = 4000) -> None:
        """Drop the socket; the session stays resumable."""
        if self._session and self._session.conn:
            await self._session.conn.ws.close(code=code)

    @contextlib.asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        """Invalidate the session and drop the socket; hold IDENTIFY/RESUME until the block ends.

        Messages posted inside the block reach channel history only, like messages sent while
        a bot's session is gone: the next session starts with a fresh READY and no replay.
        """
        self._gate.clear()
        session = self._session
        self._session = None
        if session:
            session.valid = False
            if session.conn:
                await session.conn.ws.close(code=4000)
        try:
            yield
        finally:
            self._gate.set()

    def fail_next(
        self,
        method: str,
        path_part: str,
        status: int,
        *,
        retry_after: float = 0.0,
        global_: bool = False,
        after_effect: bool = False,
    ) -> None:
        self.faults.append(Fault(method, path_part, status, retry_after, global_, after_effect))

    # ---- gateway ---------------------------------------------------------------------------
    async def _gateway_ws(self, request: web.Request) -> web.WebSocketResponse:
        query = dict(request.query)
        self.connect_queries.append(query)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        if (
            query.get("v") != "10"
            or query.get("encoding", "json") != "json"
            or query.get("compress") not in (None, "zlib-stream")
        ):
            await ws.close(code=4012, message=b"Invalid API version or encoding")
            return ws
        conn = _Conn(ws, zlib_stream=query.get("compress") == "zlib-stream")
        if conn.zlib_stream:
            conn.compressor = zlib.compressobj()
        await conn.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None})
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                break
            payload = json.loads(msg.data)
            op = payload.get("op")
            if op == 1:
                if not conn.silent:
                    await conn.send({"op": 11, "d": None, "s": None, "t": None})
            elif op in (2, 6):
                await self._gate.wait()
                await (self._identify(conn, payload["d"]) if op == 2 else self._resume(conn, payload["d"]))
            if ws.closed:
                break
        if self._session and self._session.conn is conn:
            self._session.conn = None
        return ws

    async def _identify(self, conn: _Conn, data: Json) -> None:
        self.identifies += 1
        self.identify_payloads.append({k: v for k, v in data.items() if k != "token"})
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        if self._session and self._session.conn:
            await self._session.conn.ws.close(code=4000)
        session = _Session(id=f"session-{self.snowflake()}", intents=int(data.get("intents", 0)), conn=conn)
        self._session = session
        session.seq += 1
        await conn.send(
            {
                "op": 0,
                "t": "READY",
                "s": session.seq,
                "d": {
                    "v": 10,
                    "user": self.bot,
                    "guilds": [{"id": self.guild_id, "unavailable": True}],
                    "session_id": session.id,
                    "resume_gateway_url": f"ws://{self._base}/resume-gateway",
                    "application": {"id": self.bot["id"], "flags": 0},
                    "private_channels": [],
                    "relationships": [],
                    "presences": [],
                    "guild_join_requests": [],
                    "geo_ordered_rtc_regions": [],
                    "user_settings": {},
                    "shard": [0, 1],
                    "_trace": ["fake-gateway"],
                },
            }
        )
        await self.dispatch("GUILD_CREATE", self._guild())

    async def _resume(self, conn: _Conn, data: Json) -> None:
        session = self._session
        if (
            session is None
            or not session.valid
            or data.get("session_id") != session.id
            or data.get("token") != self.token
        ):
            await conn.send({"op": 9, "d": False, "s": None, "t": None})
            return
        self.resumes += 1
        if session.conn and session.conn is not conn:
            await session.conn.ws.close(code=4000)
        session.conn = conn
        last = int(data.get("seq") or 0)
        for payload in session.backlog:
            if payload["s"] > last:
                await conn.send(payload)
        session.seq += 1
        await conn.send({"op": 0, "t": "RESUMED", "s": session.seq, "d": {"_trace": ["fake-gateway"]}})

    # ---- REST ------------------------------------------------------------------------------
    def _check(self, request: web.Request) -> web.Response | None:
        self.rest_calls.append((request.method, request.path))
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return _error(401, 0, "401: Unauthorized")
        return None

    def _fault_for(self, request: web.Request) -> Fault | None:
        for fault in self.faults:
            if fault.method == request.method and fault.path_part in request.path:
                self.faults.remove(fault)
                return fault
        return None

    def _fault_response(self, fault: Fault) -> web.Response:
        if fault.status == 429:
            headers = {
                "Retry-After": str(math.ceil(fault.retry_after)),
                "Via": "1.1 google",
                "X-RateLimit-Scope": "global" if fault.global_ else "user",
            }
            if not fault.global_:
                headers.update(
                    {
                        "X-RateLimit-Limit": "5",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": f"{time.time() + fault.retry_after:.3f}",
                        "X-RateLimit-Reset-After": f"{fault.retry_after:.3f}",
                        "X-RateLimit-Bucket": "fakebucketmessages",
                    }
                )
            body = {
                "message": "You are being rate limited.",
                "retry_after": fault.retry_after,
                "global": fault.global_,
            }
            return _json(body, 429, headers)
        return _error(fault.status, 0, f"{fault.status}: injected fault")

    @staticmethod
    def _ok(body: Any, status: int = 200) -> web.Response:
        headers = {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "4",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Bucket": "fakebucket",
        }
        if status == 204:
            return web.Response(status=204, headers=headers)
        return _json(body, status, headers)

    async def _get_gateway(self, request: web.Request) -> web.Response:
        if request.path.endswith("/bot") and (denied := self._check(request)):
            return denied
        return self._ok(
            {
                "url": self.gateway_url.removesuffix("/gateway") + "/gateway",
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 86400000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_me(self, request: web.Request) -> web.Response:
        if denied := self._check(request):
            return denied
        fault = self._fault_for(request)  # e.g. a 503 at login
        return self._fault_response(fault) if fault else self._ok(self.bot)

    async def _get_app(self, request: web.Request) -> web.Response:
        return self._check(request) or self._ok(
            {
                "id": self.bot["id"],
                "name": "AutoHands",
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.alice,
                "verify_key": "00" * 32,
                "flags": 0,
                "summary": "",
                "rpc_origins": [],
                "team": None,
                "bot": self.bot,
            }
        )

    async def _get_channel(self, request: web.Request) -> web.Response:
        if denied := self._check(request):
            return denied
        channel = self.channels.get(request.match_info["cid"])
        return self._ok(channel) if channel else _error(404, 10003, "Unknown Channel")

    async def _post_message(self, request: web.Request) -> web.Response:
        if denied := self._check(request):
            return denied
        cid = request.match_info["cid"]
        if cid not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        fault = self._fault_for(request)
        if fault and not fault.after_effect:
            return self._fault_response(fault)
        body: Json = await request.json()
        content = body.get("content") or ""
        if len(content) > 2000:
            return _error(
                400,
                50035,
                "Invalid Form Body",
                errors={
                    "content": {
                        "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]
                    }
                },
            )
        if not content and not body.get("components") and not body.get("embeds"):
            return _error(400, 50006, "Cannot send an empty message")
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            return _error(400, 50035, "Invalid Form Body")
        if nonce is not None and body.get("enforce_nonce"):
            for old in reversed(self.messages[cid]):
                if (
                    old.get("nonce") == str(nonce)
                    and old["author"]["id"] == self.bot["id"]
                    and time.time() - datetime.fromisoformat(old["timestamp"]).timestamp() < NONCE_WINDOW_S
                ):
                    return self._ok(old)
        reference = body.get("message_reference")
        if reference:
            fail_if_missing = reference.get("fail_if_not_exists", True)
            reference = {
                k: str(v)
                for k, v in {"channel_id": cid, **reference}.items()
                if k in ("message_id", "channel_id", "guild_id") and v is not None
            }
            if self._find_message(reference["channel_id"], reference["message_id"]) is None and fail_if_missing:
                return _error(
                    400,
                    50035,
                    "Invalid Form Body",
                    errors={
                        "message_reference": {
                            "_errors": [{"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}]
                        }
                    },
                )
        msg = self._new_message(
            cid,
            self.bot,
            content,
            reference=reference,
            nonce=str(nonce) if nonce is not None else None,
            components=body.get("components"),
        )
        self.created.append(Created(msg, body))
        await self.dispatch("MESSAGE_CREATE", msg)
        if fault:
            return self._fault_response(fault)
        return self._ok(msg)

    async def _history(self, request: web.Request) -> web.Response:
        if denied := self._check(request):
            return denied
        cid = request.match_info["cid"]
        if cid not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        limit = min(max(int(request.query.get("limit", "50")), 1), 100)
        msgs = sorted(self.messages[cid], key=lambda m: int(m["id"]))
        if "after" in request.query:
            after = int(request.query["after"])
            msgs = [m for m in msgs if int(m["id"]) > after][:limit]
        else:
            if "before" in request.query:
                before = int(request.query["before"])
                msgs = [m for m in msgs if int(m["id"]) < before]
            msgs = msgs[-limit:]
        return self._ok(list(reversed(msgs)))  # newest first, as Discord answers

    async def _patch_message(self, request: web.Request) -> web.Response:
        if denied := self._check(request):
            return denied
        fault = self._fault_for(request)
        if fault:
            return self._fault_response(fault)
        msg = self._find_message(request.match_info["cid"], request.match_info["mid"])
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        if msg["author"]["id"] != self.bot["id"]:
            return _error(403, 50005, "Cannot edit a message authored by another user")
        body: Json = await request.json()
        if len(body.get("content") or "") > 2000:
            return _error(400, 50035, "Invalid Form Body")
        for key in ("content", "components", "embeds"):
            if key in body:
                msg[key] = body[key]
        msg["edited_timestamp"] = _now_iso()
        self.edits.append((msg["id"], body))
        await self.dispatch("MESSAGE_UPDATE", msg)
        return self._ok(msg)

    async def _typing(self, request: web.Request) -> web.Response:
        if denied := self._check(request):
            return denied
        self.typing.append(request.match_info["cid"])
        return self._ok(None, 204)

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        # Interaction endpoints authenticate by the token in the path, not the bot token.
        self.rest_calls.append((request.method, request.path))
        record = self.interactions.get(request.match_info["iid"])
        if record is None or record.interaction["token"] != request.match_info["token"]:
            return _error(404, 10062, "Unknown interaction")
        elapsed = time.monotonic() - record.sent_at
        if elapsed > INTERACTION_DEADLINE_S:
            return _error(404, 10062, "Unknown interaction")
        if record.callbacks:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        body: Json = await request.json()
        record.callbacks.append((body, elapsed))
        iid = record.interaction["id"]
        answer = {
            "interaction": {
                "id": iid,
                "type": 3,
                "response_message_loading": body.get("type") == 5,
                "response_message_ephemeral": False,
            },
            "resource": {"type": body.get("type")},
        }
        return self._ok(answer) if request.query.get("with_response") else self._ok(None, 204)

    async def _edit_original(self, request: web.Request) -> web.Response:
        self.rest_calls.append((request.method, request.path))
        token = request.match_info["token"]
        record = next((r for r in self.interactions.values() if r.interaction["token"] == token), None)
        if record is None:
            return _error(404, 10015, "Unknown Webhook")
        body: Json = await request.json()
        msg = record.interaction["message"]
        for key in ("content", "components"):
            if key in body:
                msg[key] = body[key]
        self.original_edits.append(body)
        return self._ok(msg)
