"""A ``hub.agent.RunContext`` for agent tests, with the session manager's observable rules.

``replace_history`` drops what was remembered before it (as ``hub.sessions`` does), and
``ask`` resolves only on an answer from the asking user — a tapped button must be one of the
question's — unless ``strict=False`` (to test the agent's own double-check).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from hub.agent import Agent, HistoryItem, Usage
from hub.messages import ConversationRef, Inbound, Outbound, Sender

CONV = ConversationRef(channel="test", chat="chat-1")
USER = Sender(id="u1", name="Ada")


def inbound(
    text: str = "hi",
    *,
    sender: Sender = USER,
    kind: Any = "message",
    button: str | None = None,
    id: int = 7,
    platform_id: str = "p7",
    **kw: Any,
) -> Inbound:
    kw.setdefault("reply_to_platform_id", platform_id or None)  # the user's own message, as channels set it
    return Inbound(
        kind=kind, conversation=CONV, sender=sender, text=text, button=button, id=id, platform_id=platform_id, **kw
    )


def button(button_id: str, *, sender: Sender = USER) -> Inbound:
    return inbound("", kind="button", button=button_id, sender=sender, id=0, platform_id="")


class FakeRunContext:
    def __init__(
        self,
        message: Inbound | None = None,
        *,
        history: Sequence[HistoryItem] = (),
        settings: dict[str, str] | None = None,
        strict: bool = True,
    ) -> None:
        self._inbound = message or inbound()
        self._history = list(history)
        self._settings = dict(settings or {})
        self.strict = strict
        self.remembered: list[HistoryItem] = []
        self.replaced: list[HistoryItem] | None = None
        self.usage: list[tuple[str, str, Usage]] = []
        self.sent: list[Outbound] = []
        self.asked: list[Outbound] = []
        self.question = asyncio.Event()
        """Set while a question waits for its answer."""
        self._answers: asyncio.Queue[Inbound] = asyncio.Queue()

    @property
    def inbound(self) -> Inbound:
        return self._inbound

    @property
    def conversation(self) -> ConversationRef:
        return self._inbound.conversation

    @property
    def sender(self) -> Sender:
        return self._inbound.sender

    @property
    def history(self) -> Sequence[HistoryItem]:
        return tuple(self.replaced if self.replaced is not None else self._history)

    @property
    def settings(self) -> dict[str, str]:
        return dict(self._settings)

    def remember(self, *items: HistoryItem) -> None:
        self.remembered.extend(items)

    def replace_history(self, items: Sequence[HistoryItem]) -> None:
        self.replaced = list(items)
        self.remembered = []

    def record_usage(self, provider: str, model: str, usage: Usage) -> None:
        self.usage.append((provider, model, usage))

    async def send(self, outbound: Outbound) -> None:
        self.sent.append(outbound)

    async def set_setting(self, name: str, value: str | None) -> None:
        if value is None:
            self._settings.pop(name, None)
        else:
            self._settings[name] = value

    async def ask(self, outbound: Outbound, *, user_id: str, timeout: float) -> Inbound | None:
        self.asked.append(outbound)
        ids = {b.id for b in outbound.buttons}
        self.question.set()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    answer = await self._answers.get()
                    if not self.strict:
                        return answer
                    if answer.sender.id != user_id:
                        continue
                    if answer.kind == "button" and answer.button not in ids:
                        continue
                    return answer
        except TimeoutError:
            return None
        finally:
            self.question.clear()

    def answer(self, answer: Inbound) -> None:
        self._answers.put_nowait(answer)

    async def answer_when_asked(self, make: Any) -> None:
        """Wait for the next question, then answer it with ``make(question)``."""
        await self.question.wait()
        self.answer(make(self.asked[-1]))

    @property
    def new_history(self) -> list[HistoryItem]:
        """The session's history after the run, as the store would persist it."""
        return [*self.history, *self.remembered]


async def collect(agent: Agent, ctx: FakeRunContext) -> list[Outbound]:
    out: list[Outbound] = []
    stream: AsyncIterator[Outbound] = agent.run(ctx)
    async for item in stream:
        out.append(item)
    return out


def approve_button(question: Outbound) -> Inbound:
    return button(next(b.id for b in question.buttons if b.id.startswith("approve:")))


def deny_button(question: Outbound) -> Inbound:
    return button(next(b.id for b in question.buttons if b.id.startswith("deny:")))
