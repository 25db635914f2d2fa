"""The web chat: a channel whose platform is the browser page at ``/`` and its WebSocket ``/ws``.

The protocol is in docs/API.md ("WebSocket"). What this module keeps:

- **Who:** every request is checked before the upgrade: ``Origin`` (``Auth.allows_origin``: 403,
  ``Origin: null`` included), then the principal (``Auth.principal``: the API key as a Bearer
  header, or the login cookie a browser gets from the one-time link). A conversation is
  ``ConversationRef(channel, chat=<principal id>, thread=<conversation id>)``, so a client can
  only ever name conversations of its own principal.
- **Nothing lost, nothing twice:** a client message is acknowledged once the ``Inbox`` recorded
  it; its id is the inbound's platform id, so a resent message is recorded (and answered) once.
  Every final reply is numbered in the conversation's transcript (``_journal.py``) before
  ``send`` returns, socket or not; ``resume`` replays the transcript after the client's last
  number. Replay and live pushes share the conversation's lock, so a resuming client gets each
  message exactly once and in order.
- **Slow or dead peers:** each socket has a bounded queue; a client that cannot keep up is
  closed (1013) and resumes when it comes back. Heartbeats drop peers that stopped answering.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field

from hub.auth import Principal
from hub.channel import Capabilities, ChannelContext, Inbox, Manifest
from hub.config import StrictBool
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender, parse_command, utcnow

from ._journal import Journal
from ._pages import Pages
from ._protocol import (
    Answer,
    Conversations,
    Frame,
    Message,
    ProtocolError,
    Resume,
    client_id_of,
    error,
    parse,
    reply_frame,
)
from ._socket import Client

log = logging.getLogger(__name__)

__all__ = ["WebChannel", "WebConfig"]

MAX_QUESTIONS = 10_000
"""Questions remembered for their answers (an unanswered one is forgotten after this many)."""


class WebConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool = True
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    """A client frame larger than this closes its socket (1009)."""
    heartbeat_seconds: float = Field(default=30.0, gt=0)
    """A ping this often; a peer that does not answer within half of it is dropped."""
    replay_limit: int = Field(default=1000, ge=1)
    """The most messages one ``resume`` sends (the latest ones)."""
    send_queue: int = Field(default=2000, ge=10)
    """Frames waiting for one socket before it is closed as too slow (1013)."""


class WebChannel:
    """The web chat's channel: the page, the login, and the WebSocket (module docstring)."""

    config_model: ClassVar[type[WebConfig]] = WebConfig
    manifest: ClassVar[Manifest] = Manifest(
        id="web",
        name="Web chat",
        description="The web chat at / (WebSocket /ws).",
        provides=("channel:web",),
        config=WebConfig,
        permissions=("http_route",),
    )
    capabilities = Capabilities(max_length=100_000, dialect="markdown", edits=True, buttons=True, typing=True)

    def __init__(self, name: str, config: WebConfig, context: ChannelContext) -> None:
        self.name = name
        self.config = config
        self.problem: str | None = None
        self._auth = context.auth
        self._journal = Journal(context.state)
        self._inbox: Inbox | None = None
        self._rooms: dict[str, set[Client]] = {}
        """Open sockets by conversation key (those that sent ``message`` or ``resume`` there)."""
        self._clients: set[Client] = set()
        self._questions: dict[str, ConversationRef] = {}
        if context.auth is None:  # [server] enabled = false: nothing to serve the page on
            log.info("channel %s: the HTTP server is off, so the web chat is not served", name)
            return
        pages = Pages(context.auth)
        context.add_route("GET", "/", pages.index)
        context.add_route("GET", "/static/{name:.+}", pages.static)
        context.add_route("GET", "/login", pages.login_link)
        context.add_route("POST", "/login", pages.login_key)
        context.add_route("GET", "/ws", self._socket)

    @property
    def clients(self) -> int:
        """Open WebSockets (metrics)."""
        return len(self._clients)

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def stop(self) -> None:
        self._inbox = None
        clients, self._clients = self._clients, set()
        self._rooms.clear()
        await asyncio.gather(*(c.close(WSCloseCode.GOING_AWAY, "the hub is stopping") for c in clients))

    # ----------------------------------------------------------------- replies
    async def send(self, msg: Outbound) -> Delivery:
        """Push ``msg`` to the conversation's open sockets; a final one is numbered and kept
        first, so with no socket open it waits in the transcript for ``resume``."""
        conv = msg.conversation
        conversation = conv.thread or ""
        if msg.typing:
            self._push(conv.key, {"type": "status", "conversation": conversation, "state": "typing"}, droppable=True)
            return Delivery()
        if not msg.final:
            delta: Frame = {
                "type": "delta",
                "conversation": conversation,
                "stream": msg.stream or msg.id,
                "text": msg.text,
                "reply_to": client_id_of(msg.reply_to_platform_id),
            }
            self._push(conv.key, delta, droppable=True)
            return Delivery()
        self._note_question(msg)
        at = utcnow()
        async with self._journal.lock(conv.key):
            n, frame = await self._journal.append(conv.key, reply_frame(msg, conversation, at), ref=msg.id)
            self._push(conv.key, frame)
        await self._journal.touch(conv.chat, conversation, at=at.isoformat(), last_id=n)
        return Delivery(platform_ids=(str(n),))

    def _note_question(self, msg: Outbound) -> None:
        if msg.buttons:
            self._questions[msg.id] = msg.conversation
            while len(self._questions) > MAX_QUESTIONS:
                self._questions.pop(next(iter(self._questions)))
        elif msg.edit_of is not None:  # a question replaced by its outcome is settled
            self._questions.pop(msg.edit_of, None)

    def _push(self, key: str, frame: Frame, *, droppable: bool = False) -> None:
        for client in tuple(self._rooms.get(key, ())):
            client.put(frame, droppable=droppable)

    # ----------------------------------------------------------------- the socket
    async def _socket(self, request: web.Request) -> web.StreamResponse:
        auth = self._auth
        assert auth is not None  # the route is mounted only with it
        if not auth.allows_origin(request):
            return web.Response(status=403, text="this page's origin may not use the chat")
        who = auth.principal(request)
        if who is None:
            return web.Response(status=401, text="sign in first (an API key, or the login link)")
        if self._inbox is None:
            return web.Response(status=503, text="the web chat is starting; try again", headers={"Retry-After": "1"})
        ws = web.WebSocketResponse(
            heartbeat=self.config.heartbeat_seconds, max_msg_size=self.config.max_frame_bytes, compress=False
        )
        if not ws.can_prepare(request).ok:
            return web.Response(status=426, text="this address takes a WebSocket", headers={"Upgrade": "websocket"})
        await ws.prepare(request)
        client = Client(ws, who, limit=self.config.send_queue)
        self._clients.add(client)
        try:
            await self._serve(client)
        finally:
            self._clients.discard(client)
            for key in [k for k, room in self._rooms.items() if client in room]:
                self._rooms[key].discard(client)
                if not self._rooms[key]:
                    del self._rooms[key]
            await client.close(WSCloseCode.OK, "")
        return ws

    async def _serve(self, client: Client) -> None:
        async for message in client.ws:
            if message.type is not WSMsgType.TEXT:
                client.put(error("bad_frame", "frames are JSON text"))
                continue
            try:
                await self._take(client, parse(message.data))
            except ProtocolError as exc:
                client.put(error(exc.code, str(exc), exc.ref))

    async def _take(self, client: Client, frame: Message | Answer | Resume | Conversations) -> None:
        if isinstance(frame, Message):
            await self._message(client, frame)
        elif isinstance(frame, Answer):
            await self._answer(client, frame)
        elif isinstance(frame, Resume):
            await self._resume(client, frame)
        else:
            rows = await self._journal.conversations(client.who.id)
            client.put({"type": "conversations", "conversations": [r.as_frame() for r in rows]})

    def _ref(self, who: Principal, conversation: str) -> ConversationRef:
        return ConversationRef(channel=self.name, chat=who.id, thread=conversation)

    def _join(self, client: Client, key: str) -> None:
        self._rooms.setdefault(key, set()).add(client)

    async def _record(self, inbound: Inbound, ref: str) -> bool:
        if self._inbox is None:
            raise ProtocolError("stopping", "the hub is stopping; send it again after reconnecting", ref)
        try:
            return await self._inbox(inbound)
        except Exception:
            log.exception("channel %s: could not record a message", self.name)
            raise ProtocolError("not_recorded", "the message could not be recorded; send it again", ref) from None

    async def _message(self, client: Client, frame: Message) -> None:
        ref = self._ref(client.who, frame.conversation)
        platform_id = f"{client.who.id}/{frame.conversation}/{frame.id}"
        command = parse_command(frame.text)
        inbound = Inbound(
            kind="command" if command else "message",
            conversation=ref,
            sender=_sender(client.who),
            text=command[1] if command else frame.text,
            command=command[0] if command else None,
            platform_id=platform_id,
            reply_to_platform_id=platform_id,
            direct=True,
            mentioned=True,
        )
        self._join(client, ref.key)
        at = utcnow()
        # Under the conversation's lock: the message is numbered before its answer can be.
        async with self._journal.lock(ref.key):
            recorded = await self._record(inbound, frame.id)
            if recorded:
                user: Frame = {
                    "type": "message",
                    "conversation": frame.conversation,
                    "role": "user",
                    "client_id": frame.id,
                    "text": frame.text,
                    "at": at.isoformat(),
                }
                n, kept = await self._journal.append(ref.key, user)
                self._push(ref.key, kept)  # the person's other tabs show it too
            client.put({"type": "ack", "id": frame.id, "conversation": frame.conversation, "duplicate": not recorded})
        if recorded:
            await self._journal.touch(client.who.id, frame.conversation, at=at.isoformat(), last_id=n, text=frame.text)

    async def _answer(self, client: Client, frame: Answer) -> None:
        ref = self._questions.get(frame.question)
        if ref is None and frame.conversation is not None:
            ref = self._ref(client.who, frame.conversation)
        if ref is None or ref.chat != client.who.id:
            raise ProtocolError("unknown_question", "that question is not waiting for an answer", frame.question)
        platform_id = f"{client.who.id}/{ref.thread}/answer:{frame.question}"
        inbound = Inbound(
            kind="button",
            conversation=ref,
            sender=_sender(client.who),
            text=frame.choice,
            button=frame.choice,
            platform_id=platform_id,
            reply_to_platform_id=platform_id,
            direct=True,
            mentioned=True,
        )
        self._join(client, ref.key)
        recorded = await self._record(inbound, frame.question)
        client.put({"type": "ack", "question": frame.question, "duplicate": not recorded})

    async def _resume(self, client: Client, frame: Resume) -> None:
        key = self._ref(client.who, frame.conversation).key
        async with self._journal.lock(key):
            missed = await self._journal.after(key, frame.after, limit=self.config.replay_limit)
            self._join(client, key)
            for kept in missed:
                client.put(kept)
            last = await self._journal.last(key)
        client.put({"type": "status", "conversation": frame.conversation, "state": "synced", "last": last})


def _sender(who: Principal) -> Sender:
    return Sender(id=who.id, name=who.id, is_admin=who.admin)
