"""What a command handler and an agent run see of their session (``hub.sessions``).

``SessionControl`` is the ``SessionControl`` protocol of ``hub.commands`` for one session;
``SessionRunContext`` is ``hub.agent.RunContext`` for one run; ``Question`` is the one
question a run may have pending.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .agent import HistoryItem, Usage
from .messages import ConversationRef, Inbound, Outbound, Sender, utcnow

if TYPE_CHECKING:
    from .sessions import Session, SessionManager


@dataclass(slots=True)
class Question:
    button_ids: frozenset[str]
    user_id: str
    future: asyncio.Future[Inbound]
    inbound_id: int = 0
    """The inbound whose run asks."""
    asked: Outbound | None = None
    """The question as sent (its text and buttons: the dashboard lists it)."""
    asked_at: datetime | None = None
    timeout: float = 0.0
    """Seconds the run waits for the answer (then the question is settled as unanswered)."""


class SessionControl:
    """``SessionControl`` for command handlers."""

    def __init__(self, manager: SessionManager, session: Session) -> None:
        self._m = manager
        self._s = session

    @property
    def settings(self) -> dict[str, str]:
        return dict(self._s.settings)

    async def set_setting(self, key: str, value: str | None) -> None:
        self._s.settings = await self._m.store.set_setting(self._s.key, key, value)

    async def reset(self) -> None:
        await self._m.store.clear_history(self._s.key)
        self._s.history = []

    def stop_run(self) -> bool:
        s = self._s
        if not s.running or s.worker is None or s.stop_requested:
            return False
        s.stop_requested = True
        s.worker.cancel()
        return True

    def status(self) -> str:
        s = self._s
        state = "answering" if s.running else "idle"
        if s.question is not None:
            state = "waiting for your answer"
        return (
            f"Status: {state}; {len(s.queue)} message(s) queued; {len(s.history or ())} history "
            f"item(s); hub: {self._m.active_runs} run(s) in progress."
        )


class SessionRunContext:
    """``hub.agent.RunContext`` for one run."""

    def __init__(self, manager: SessionManager, session: Session, inbound: Inbound) -> None:
        self._m = manager
        self.session = session
        self._inbound = inbound
        self.new_items: list[HistoryItem] = []
        self.replaced: list[HistoryItem] | None = None
        self.usage: list[tuple[str, str, Usage]] = []

    @property
    def inbound(self) -> Inbound:
        return self._inbound

    @property
    def conversation(self) -> ConversationRef:
        return self.session.conversation

    @property
    def sender(self) -> Sender:
        return self._inbound.sender

    @property
    def history(self) -> Sequence[HistoryItem]:
        base = self.replaced if self.replaced is not None else (self.session.history or [])
        return tuple(base)

    @property
    def settings(self) -> dict[str, str]:
        return dict(self.session.settings)

    def remember(self, *items: HistoryItem) -> None:
        self.new_items.extend(items)

    def replace_history(self, items: Sequence[HistoryItem]) -> None:
        self.replaced = list(items)
        self.new_items = []

    def record_usage(self, provider: str, model: str, usage: Usage) -> None:
        self.usage.append((provider, model, usage))

    def record_error(self, provider: str, error: str) -> None:
        """``hub.agent.ReportsErrors``: told to the session manager's observer (``/metrics``)."""
        if self._m.observer is not None:
            self._m.observer.model_error(provider, error)

    async def send(self, outbound: Outbound) -> None:
        await self._m.send_during_run(outbound)

    async def set_setting(self, name: str, value: str | None) -> None:
        s = self.session
        s.settings = await self._m.store.set_setting(s.key, name, value)

    async def ask(self, outbound: Outbound, *, user_id: str, timeout: float) -> Inbound | None:
        s = self.session
        future: asyncio.Future[Inbound] = asyncio.get_running_loop().create_future()
        s.question = Question(
            frozenset(b.id for b in outbound.buttons), user_id, future, self._inbound.id, outbound, utcnow(), timeout
        )
        try:
            await self._m.send_during_run(outbound)
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                return None
        finally:
            s.question = None
