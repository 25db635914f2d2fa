"""A local fake of the Telegram Bot API, faithful enough to drive unmodified python-telegram-bot.

It speaks the wire format at ``/bot<token>/<method>`` (JSON or form bodies; PTB sends form fields
whose non-string values are JSON-encoded) and serves files at ``/file/bot<token>/<path>``. The
semantics tests depend on are modelled on the documented behaviour (see docs/PLATFORMS.md T1, T3, T5, T10, T12):

* ``getUpdates``: an update is confirmed (forgotten) once a call arrives with a higher ``offset``;
  a negative offset keeps only the last ``-offset`` updates; long polling returns as soon as an
  update is injected; a second concurrent poller ends the first with 409 Conflict; 409 while a
  webhook is set. As in the Bot API server (tdlib/telegram-bot-api ``Client::do_get_updates``
  over td ``TQueue::get``), an ``offset`` more than 10 past the next update id ("in the
  future") reads from the oldest pending update instead, and a long poll woken by a new update
  applies its ``offset`` again. ``restart_numbering`` models "if there are no new updates for
  at least a week, then identifier of the next update will be chosen randomly".
* ``sendMessage`` / ``editMessageText`` validate ``parse_mode=HTML`` as td's ``parse_html`` does
  (tags, their nesting, ``span`` only as a spoiler; ``&lt; &gt; &amp; &quot;`` and numeric
  references decoded, other ``&…;`` shown as written) and answer with the real error texts
  (``can't parse entities``, ``message is not modified``).

Tests drive it through Python methods: ``inject_*`` to create updates, ``fail`` to schedule
faults, and the ``sent`` / ``edits`` / ``actions`` / ``answered`` records plus ``wait_until``.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

FaultKind = Literal["retry_after", "server_error", "parse_entities", "forbidden"]
_SUPPORTED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
}
_TOKEN_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)?([^<>]*)(>?)|&(#?[A-Za-z0-9]+);")
_QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass(slots=True)
class SentMessage:
    chat_id: int
    message_id: int
    text: str
    """The text as sent (with HTML tags when ``parse_mode`` is HTML)."""
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to: int | None = None
    thread_id: int | None = None
    deleted: bool = False

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


@dataclass(slots=True, frozen=True)
class Edit:
    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None
    reply_markup: dict[str, Any] | None


@dataclass(slots=True, frozen=True)
class ChatAction:
    chat_id: int
    action: str
    thread_id: int | None


@dataclass(slots=True, frozen=True)
class CallbackAnswer:
    callback_query_id: str
    text: str | None


@dataclass(slots=True)
class _Fault:
    method: str
    remaining: int
    kind: FaultKind
    retry_after: int


@dataclass(slots=True)
class _File:
    file_id: str
    path: str
    content: bytes


@dataclass(slots=True)
class _Poll:
    cancelled: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)


def parse_html(text: str) -> str:
    """Validate Telegram HTML like the Bot API does; return the visible text or raise ``ApiError``."""
    stack: list[str] = []
    out: list[str] = []
    pos = 0
    for m in _TOKEN_RE.finditer(text):
        out.append(text[pos : m.start()])
        pos = m.end()
        offset = len(text[: m.start()].encode())
        if m.group(5) is not None:  # an entity: only these four and numeric ones (td parse_html);
            name = m.group(5)  # any other, such as &nbsp;, is shown as written
            known = name.startswith("#") or name in ("lt", "gt", "amp", "quot")
            out.append(html.unescape(m.group(0)) if known else m.group(0))
            continue
        closing, name, attrs, end = m.group(1), (m.group(2) or "").lower(), m.group(3), m.group(4)
        if not end:
            _bad(f"Unclosed start tag at byte offset {offset}")
        if closing:
            if not stack:
                _bad(f"Unexpected end tag at byte offset {offset}")
            expected = stack.pop()
            if name != expected:
                found = f'expected "</{expected}>", found "</{name}>"'
                _bad(f"Unmatched end tag at byte offset {offset}, {found}")
            continue
        if name not in _SUPPORTED_TAGS:
            _bad(f'Unsupported start tag "{name}" at byte offset {offset}')
        if name == "span" and not re.search(r"""class\s*=\s*["']?tg-spoiler""", attrs):
            _bad(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
        stack.append(name)
    if stack:
        _bad(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    out.append(text[pos:])
    return "".join(out)


def _bad(detail: str) -> None:
    raise ApiError(400, f"Bad Request: can't parse entities: {detail}")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _Params:
    """Request parameters with Bot API coercion (form values arrive as strings)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def raw(self) -> dict[str, Any]:
        return dict(self._data)

    def has(self, name: str) -> bool:
        return self._data.get(name) is not None

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self._data.get(name)
        return default if value is None else str(value)

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self._data.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"Bad Request: invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        value = self._data.get(name)
        return value is True or str(value).lower() == "true"

    def json(self, name: str) -> Any:
        value = self._data.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
        return value


class FakeTelegram:
    """The fake Bot API server plus its control API for tests. Use ``async with FakeTelegram()``."""

    def __init__(
        self,
        *,
        token: str = "123456:AAFakeTokenForTests_abcdefghijklmno",
        bot_username: str = "autohands_bot",
        bot_id: int = 123456,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.pending: list[dict[str, Any]] = []
        self.sent: list[SentMessage] = []
        self.edits: list[Edit] = []
        self.actions: list[ChatAction] = []
        self.answered: list[CallbackAnswer] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.commands: list[dict[str, Any]] = []
        self.confirmed_offset = 0
        """Highest positive offset any ``getUpdates`` call carried (updates below it are confirmed)."""
        self.empty_answers = 0
        """``getUpdates`` calls answered with no updates (the bot is idle, its long poll ran out)."""
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.dropped_pending = 0
        self._next_update_id = 100_000
        self._next_message_id = 1
        self._next_callback = 1
        self._messages: dict[tuple[int, int], SentMessage | None] = {}
        self._callbacks: set[str] = set()
        self._files: dict[str, _File] = {}
        self._faults: list[_Fault] = []
        self._poll: _Poll | None = None
        self._changed = asyncio.Event()  # set and replaced on every state change
        self._server: TestServer | None = None

    # ---------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server(access_log=None)  # its lines would carry the token
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._poll is not None:
            self._poll.wake.set()
        if self._server is not None:
            await self._server.close()

    @property
    def root(self) -> str:
        assert self._server is not None, "use `async with FakeTelegram()`"
        return str(self._server.make_url("")).rstrip("/")

    @property
    def base_url(self) -> str:
        """Value for PTB's ``base_url`` (the token is appended to it)."""
        return f"{self.root}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.root}/file/bot"

    # ---------------------------------------------------------------- control API
    def inject_message(
        self,
        *,
        chat_id: int,
        user_id: int | None = None,
        text: str = "",
        chat_type: Literal["private", "group", "supergroup"] = "private",
        username: str | None = "alice",
        first_name: str = "Alice",
        reply_to_message_id: int | None = None,
        thread_id: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Queue a user's message; bot_command and @mention entities are computed from ``text``."""
        user_id = chat_id if user_id is None else user_id
        message_id = self._new_message_id(chat_id)
        self._messages[(chat_id, message_id)] = None
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat.update(first_name=first_name, username=username)
        else:
            chat.update(title=f"Group {chat_id}", is_forum=thread_id is not None)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": first_name,
                **({"username": username} if username else {}),
            },
        }
        if text:
            message["text"] = text
            entities = self._entities(text)
            if entities:
                message["entities"] = entities
        if thread_id is not None:
            message.update(message_thread_id=thread_id, is_topic_message=True)
        if reply_to_message_id is not None:
            message["reply_to_message"] = self._message_stub(chat, reply_to_message_id)
        message.update(extra or {})
        return self.inject_update({"message": message})

    def inject_callback(
        self, *, chat_id: int, message_id: int, data: str, user_id: int | None = None, username: str | None = "alice"
    ) -> dict[str, Any]:
        """Queue a button tap on the bot's message ``message_id``."""
        user_id = chat_id if user_id is None else user_id
        query_id = f"cbq{self._next_callback}"
        self._next_callback += 1
        self._callbacks.add(query_id)
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        query = {
            "id": query_id,
            "chat_instance": str(chat_id),
            "data": data,
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": "Alice",
                **({"username": username} if username else {}),
            },
            "message": self._message_stub(chat, message_id),
        }
        return self.inject_update({"callback_query": query})

    def inject_document(
        self,
        *,
        chat_id: int,
        file_name: str,
        content: bytes,
        mime_type: str = "text/plain",
        caption: str = "",
        user_id: int | None = None,
        chat_type: Literal["private", "group", "supergroup"] = "private",
    ) -> dict[str, Any]:
        file = self._add_file(f"documents/{file_name}", content)
        doc = {
            "file_id": file.file_id,
            "file_unique_id": f"u{file.file_id}",
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(content),
        }
        extra: dict[str, Any] = {"document": doc}
        if caption:
            extra["caption"] = caption
        return self.inject_message(chat_id=chat_id, user_id=user_id, chat_type=chat_type, extra=extra)

    def inject_photo(
        self,
        *,
        chat_id: int,
        content: bytes = b"\x89PNG fake",
        user_id: int | None = None,
        chat_type: Literal["private", "group", "supergroup"] = "private",
    ) -> dict[str, Any]:
        file = self._add_file("photos/file_0.jpg", content)
        size = {
            "file_id": file.file_id,
            "file_unique_id": f"u{file.file_id}",
            "width": 90,
            "height": 90,
            "file_size": len(content),
        }
        return self.inject_message(chat_id=chat_id, user_id=user_id, chat_type=chat_type, extra={"photo": [size]})

    def inject_update(self, body: dict[str, Any]) -> dict[str, Any]:
        """Queue any update body; ``update_id`` is assigned sequentially."""
        update = {"update_id": self._next_update_id, **body}
        self._next_update_id += 1
        self.pending.append(update)
        self._notify()
        return update

    def restart_numbering(self, at: int) -> None:
        """Give the next update ``at`` as its id, lower than before if need be: what Telegram does
        after a week without updates ("chosen randomly instead of sequentially")."""
        self._next_update_id = at

    def redeliver(self, update: dict[str, Any]) -> None:
        """Queue an update again with its original id (Telegram delivers at least once)."""
        self.pending.append(dict(update))
        self._notify()

    def fail(self, method: str, *, times: int = 1, kind: FaultKind = "retry_after", retry_after: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail with the given fault."""
        self._faults.append(_Fault(method, times, kind, retry_after))

    def outage(self, *methods: str, kind: FaultKind = "server_error") -> None:
        """Fail every call of ``methods`` until ``end_outage()``: the Bot API (or the way to it) is down."""
        for method in methods:
            self.fail(method, times=2**62, kind=kind)

    def end_outage(self) -> None:
        """The Bot API is back: every scheduled fault is dropped."""
        self._faults.clear()

    def messages(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id and not m.deleted]

    def method_calls(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds after some state change; raise TimeoutError otherwise."""
        async with asyncio.timeout(within):
            while not predicate():
                await self._changed.wait()

    async def post_webhook(
        self, update: dict[str, Any], *, url: str | None = None, secret_token: str | None = "<configured>"
    ) -> int:
        """POST one update as Telegram would; a 2XX confirms it. Returns the HTTP status."""
        headers = {"Content-Type": "application/json"}
        secret = self.webhook_secret if secret_token == "<configured>" else secret_token
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        async with (
            ClientSession() as session,
            session.post(url or self.webhook_url, data=json.dumps(update), headers=headers) as resp,
        ):
            await resp.read()
            if 200 <= resp.status < 300 and update in self.pending:
                self.pending.remove(update)
            return resp.status

    # ---------------------------------------------------------------- internals
    def _notify(self) -> None:
        if self._poll is not None:
            self._poll.wake.set()
        self._changed.set()
        self._changed = asyncio.Event()

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _message_stub(self, chat: dict[str, Any], message_id: int) -> dict[str, Any]:
        stub: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "chat": chat}
        record = self._messages.get((chat["id"], message_id))
        if record is not None:  # one of the bot's own messages
            stub["from"] = self._me()
            stub["text"] = record.text
        return stub

    def _add_file(self, path: str, content: bytes) -> _File:
        file_id = f"F{len(self._files) + 1}"
        stem, dot, ext = path.rpartition(".")
        file = _File(file_id, f"{stem}_{file_id}{dot}{ext}" if dot else f"{path}_{file_id}", content)
        self._files[file_id] = file
        return file

    def _entities(self, text: str) -> list[dict[str, Any]]:
        entities = []
        for m in re.finditer(r"(?<![\w/])(/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?)|(@[A-Za-z0-9_]{3,})", text):
            if m.group(1) and m.start() != 0:
                continue
            offset = _utf16_len(text[: m.start()])
            kind = "bot_command" if m.group(1) else "mention"
            entities.append({"type": kind, "offset": offset, "length": _utf16_len(m.group(0))})
        return entities

    def _me(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "AutoHands",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _params(self, request: web.Request) -> _Params:
        data: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: request body must be a JSON object")
                data.update(body)
            else:
                data.update((await request.post()).items())
        return _Params(data)

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method.lower() == method.lower() and fault.remaining > 0:
                fault.remaining -= 1
                return fault
        return None

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            return _error(404, "Not Found")
        try:
            params = await self._params(request)
            self.calls.append((method, params.raw()))
            fault = self._take_fault(method)
            if fault is not None:
                _raise_fault(fault)
            result = await handler(params)
        except ApiError as exc:
            return _error(exc.code, exc.description, exc.parameters)
        finally:
            self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        for file in self._files.values():
            if file.path == request.match_info["path"]:
                return web.Response(body=file.content, content_type="application/octet-stream")
        return web.Response(status=404, text="Not Found")

    # ---------------------------------------------------------------- Bot API methods
    async def _api_getme(self, p: _Params) -> Any:
        return self._me()

    async def _api_getupdates(self, p: _Params) -> Any:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        if self._poll is not None:  # the newer poller wins, as on the real server
            self._poll.cancelled = True
            self._poll.wake.set()
        offset = p.integer("offset", 0) or 0
        limit = max(1, min(100, p.integer("limit", 100) or 100))
        timeout = max(0, p.integer("timeout", 0) or 0)
        if offset < 0:
            self.pending = self.pending[offset:]
        self._confirm(offset)
        self._notify()
        poll = self._poll = _Poll()
        try:
            if not self.pending and timeout:
                try:
                    async with asyncio.timeout(timeout):
                        await poll.wake.wait()
                except TimeoutError:
                    pass
                self._confirm(offset)  # the server runs the same request again once woken
            if poll.cancelled:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                )
            if not self.pending:
                self.empty_answers += 1
            return self.pending[:limit]
        finally:
            if self._poll is poll:
                self._poll = None

    def _confirm(self, offset: int) -> None:
        """Forget the updates a positive ``offset`` confirms, unless it lies in the future."""
        if offset <= 0 or offset > self._next_update_id + 10:
            return  # "Specified from_id is in the future": the server reads from the head
        self.confirmed_offset = max(self.confirmed_offset, offset)
        self.pending = [u for u in self.pending if u["update_id"] >= offset]

    async def _api_sendmessage(self, p: _Params) -> Any:
        chat_id = self._chat_id(p)
        text = p.string("text") or ""
        parse_mode = p.string("parse_mode")
        visible = parse_html(text) if (parse_mode or "").lower() == "html" else text
        _check_text(visible)
        reply_to = p.integer("reply_to_message_id")
        allow_without = p.flag("allow_sending_without_reply")
        reply_params = p.json("reply_parameters")
        if isinstance(reply_params, dict):
            reply_to = reply_params.get("message_id")
            allow_without = bool(reply_params.get("allow_sending_without_reply"))
        if reply_to is not None and (chat_id, reply_to) not in self._messages:
            if not allow_without:
                raise ApiError(400, "Bad Request: message to be replied not found")
            reply_to = None
        markup = p.json("reply_markup")
        record = SentMessage(
            chat_id, self._new_message_id(chat_id), text, parse_mode, markup, reply_to, p.integer("message_thread_id")
        )
        self.sent.append(record)
        self._messages[(chat_id, record.message_id)] = record
        return self._message_json(record, visible)

    async def _api_editmessagetext(self, p: _Params) -> Any:
        chat_id, message_id = self._chat_id(p), p.integer("message_id")
        record = self._messages.get((chat_id, message_id or 0))
        if record is None or record.deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        text = p.string("text") or ""
        parse_mode = p.string("parse_mode")
        visible = parse_html(text) if (parse_mode or "").lower() == "html" else text
        _check_text(visible)
        markup = p.json("reply_markup")
        if text == record.text and parse_mode == record.parse_mode and markup == record.reply_markup:
            raise ApiError(400, _NOT_MODIFIED)
        record.text, record.parse_mode, record.reply_markup = text, parse_mode, markup
        self.edits.append(Edit(chat_id, record.message_id, text, parse_mode, markup))
        return self._message_json(record, visible)

    async def _api_deletemessage(self, p: _Params) -> Any:
        record = self._messages.get((self._chat_id(p), p.integer("message_id") or 0))
        if record is None or record.deleted:
            raise ApiError(400, "Bad Request: message to delete not found")
        record.deleted = True
        return True

    async def _api_sendchataction(self, p: _Params) -> Any:
        action = p.string("action") or ""
        if action not in {
            "typing",
            "upload_photo",
            "record_video",
            "upload_video",
            "record_voice",
            "upload_voice",
            "upload_document",
            "choose_sticker",
            "find_location",
            "record_video_note",
            "upload_video_note",
        }:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self.actions.append(ChatAction(self._chat_id(p), action, p.integer("message_thread_id")))
        return True

    async def _api_answercallbackquery(self, p: _Params) -> Any:
        query_id = p.string("callback_query_id") or ""
        if query_id not in self._callbacks:
            raise ApiError(400, _QUERY_TOO_OLD)
        self._callbacks.discard(query_id)
        self.answered.append(CallbackAnswer(query_id, p.string("text")))
        return True

    async def _api_getfile(self, p: _Params) -> Any:
        file = self._files.get(p.string("file_id") or "")
        if file is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(file.content) > 20 * 1024 * 1024:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": file.file_id,
            "file_unique_id": f"u{file.file_id}",
            "file_size": len(file.content),
            "file_path": file.path,
        }

    async def _api_setwebhook(self, p: _Params) -> Any:
        secret = p.string("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook_url, self.webhook_secret = p.string("url") or "", secret
        if p.flag("drop_pending_updates"):
            self._drop_pending()
        return True

    async def _api_deletewebhook(self, p: _Params) -> Any:
        self.webhook_url, self.webhook_secret = "", None
        if p.flag("drop_pending_updates"):
            self._drop_pending()
        return True

    async def _api_getwebhookinfo(self, p: _Params) -> Any:
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": len(self.pending)}

    async def _api_setmycommands(self, p: _Params) -> Any:
        commands = p.json("commands")
        if not isinstance(commands, list) or any(
            not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", ""))) for c in commands
        ):
            raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands = commands
        return True

    async def _api_getmycommands(self, p: _Params) -> Any:
        return self.commands

    def _drop_pending(self) -> None:
        self.dropped_pending += len(self.pending)
        self.pending.clear()

    def _chat_id(self, p: _Params) -> int:
        chat_id = p.integer("chat_id")
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _message_json(self, record: SentMessage, visible: str) -> dict[str, Any]:
        chat_type = "private" if record.chat_id > 0 else "supergroup"
        message: dict[str, Any] = {
            "message_id": record.message_id,
            "date": int(time.time()),
            "from": self._me(),
            "chat": {"id": record.chat_id, "type": chat_type},
            "text": visible,
        }
        if record.reply_markup:
            message["reply_markup"] = record.reply_markup
        if record.thread_id is not None:
            message["message_thread_id"] = record.thread_id
        return message


def _check_text(visible: str) -> None:
    if not visible.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if _utf16_len(visible) > 4096:
        raise ApiError(400, "Bad Request: message is too long")


def _raise_fault(fault: _Fault) -> None:
    if fault.kind == "retry_after":
        raise ApiError(429, f"Too Many Requests: retry after {fault.retry_after}", {"retry_after": fault.retry_after})
    if fault.kind == "server_error":
        raise ApiError(500, "Internal Server Error")
    if fault.kind == "forbidden":
        raise ApiError(403, "Forbidden: bot was blocked by the user")
    _bad("Can't find end of the entity starting at byte offset 0")


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)
