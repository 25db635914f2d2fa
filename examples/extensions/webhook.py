"""A channel extension: messages arrive as HTTP POSTs, replies are POSTed to a URL
(docs/EXTENSION_GUIDE.md, "Writing a channel").

    [channels.webhook]
    enabled = true
    token = "${WEBHOOK_TOKEN}"          # callers send it as X-Webhook-Token
    reply_url = "https://example.org/replies"

A caller POSTs ``{"user": "42", "chat": "42", "id": "m-1", "text": "hi"}`` to ``/hooks/webhook``
on the hub's server; the reply arrives at ``reply_url`` as ``{"chat": "42", "text": "…",
"reply_to": "m-1", "id": "<outbound id>"}``. The caller is answered only after the hub has
committed the message, so a caller that retries on an error never loses one (a duplicate
``id`` is accepted once).
"""

from __future__ import annotations

import hmac
from typing import ClassVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, SecretStr

from hub.channel import Capabilities, ChannelContext, Inbox, Manifest
from hub.errors import ChannelError
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    """Run this channel when the hub starts."""
    path: str = "/hooks/webhook"
    """Where callers POST messages on the hub's HTTP server."""
    token: SecretStr
    """Callers send it in the ``X-Webhook-Token`` header; others get 401."""
    reply_url: str
    """Where replies are POSTed as JSON."""


class WebhookChannel:
    config_model: ClassVar[type[WebhookConfig]] = WebhookConfig
    manifest: ClassVar[Manifest] = Manifest(
        id="webhook",
        name="Webhook",
        version="1.0.0",
        description="Messages in as HTTP POSTs, replies out as POSTs to a URL.",
        author="AutoHands examples",
        provides=("channel:webhook",),
        config=WebhookConfig,
        permissions=("http_route", "network"),
        secrets=("token",),
    )
    capabilities = Capabilities(max_length=10_000, dialect="plain")

    def __init__(self, name: str, config: WebhookConfig, context: ChannelContext) -> None:
        self.name = name
        self.config = config
        self.problem: str | None = None
        self._inbox: Inbox | None = None
        self._http: aiohttp.ClientSession | None = None
        context.add_route("POST", config.path, self._receive)

    async def start(self, inbox: Inbox) -> None:
        self._http = aiohttp.ClientSession()
        self._inbox = inbox

    async def stop(self) -> None:
        self._inbox = None
        if self._http is not None:
            await self._http.close()

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Webhook-Token", "")
        if not hmac.compare_digest(given.encode(), self.config.token.get_secret_value().encode()):
            return web.json_response({"error": "bad or missing X-Webhook-Token"}, status=401)
        if self._inbox is None:
            return web.json_response({"error": "not started"}, status=503)
        body = await request.json()
        user, text = str(body.get("user", "")), str(body.get("text", ""))
        if not user or not text:
            return web.json_response({"error": "user and text are required"}, status=400)
        inbound = Inbound(
            kind="message",
            conversation=ConversationRef(channel=self.name, chat=str(body.get("chat") or user)),
            sender=Sender(id=user),
            text=text,
            platform_id=str(body.get("id", "")),
            reply_to_platform_id=str(body.get("id", "")) or None,
            direct=True,
        )
        accepted = await self._inbox(inbound)  # committed (or a duplicate) before we answer
        return web.json_response({"accepted": accepted})

    async def send(self, msg: Outbound) -> Delivery:
        if msg.typing or not msg.final or self._http is None:
            return Delivery()
        payload = {"chat": msg.conversation.chat, "text": msg.text, "reply_to": msg.reply_to_platform_id, "id": msg.id}
        try:
            async with self._http.post(self.config.reply_url, json=payload) as r:
                if r.status >= 400:
                    raise ChannelError(f"webhook reply refused: HTTP {r.status}", retryable=r.status >= 500)
        except aiohttp.ClientError as exc:
            raise ChannelError(f"webhook reply failed: {exc}", retryable=True) from exc
        return Delivery(platform_ids=(msg.id,))


manifest = WebhookChannel.manifest
entry_points = {"autohands.channels": {"webhook": WebhookChannel}}
