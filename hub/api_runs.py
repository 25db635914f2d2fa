"""What a channel answering HTTP requests (the OpenAI-compatible API) may do with its runs.

An HTTP request is answered once, when its run has ended, with the text of that run; a
platform message is answered by however many sends the run makes. So the API channel needs,
beyond the ``Channel`` contract, three things only the hub knows (``Runs``):

- whether every run slot is taken (``[sessions] max_concurrent_runs``): it answers 429 rather
  than queue a request behind them;
- a conversation's history and model set *before* its first inbound: a stateless request
  brings its own history, recorded in that request's conversation as the run's past;
- the outbounds of one inbound's run as they are published, and the moment it ends (with its
  token usage): ``watch``.

Replies still go the way of every channel (recorded in the outbox, delivered through
``Channel.send``, which marks them sent); ``watch`` only lets the waiting HTTP response see them
as they are published and know when the run is over, which ``send`` alone cannot tell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .agent import HistoryItem, Usage
from .bus import Bus, Subscription
from .messages import ConversationRef, Inbound, Outbound, Sender
from .sessions import Session, SessionManager
from .store import StoreAPI

__all__ = ["HubRuns", "RunEnded", "RunWatch", "Runs", "model_ids"]

DEFAULT_MODEL = "autohands"
MODEL_SETTING = "model"
"""The session setting ``/model`` keeps its choice in (agents/commands.py)."""
MODE_SETTING = "mode"
"""The session setting ``/mode`` keeps the workflow mode in (agents/workflows)."""


@dataclass(frozen=True, slots=True)
class RunEnded:
    """The run of the watched inbound ended; its last reply was published before this."""

    usage: tuple[tuple[str, str, Usage], ...]
    """(provider, model, usage) of every model call the run made."""


class RunWatch:
    """The outbounds of one inbound's run, then ``RunEnded``, in the order they happened."""

    def __init__(self, platform_id: str) -> None:
        self.platform_id = platform_id
        self.events: asyncio.Queue[Outbound | RunEnded] = asyncio.Queue()


class Runs(Protocol):
    """The hub's sessions as the API channel uses them (``HubRuns`` is the hub's)."""

    def saturated(self) -> bool:
        """Every run slot is in use: a new run would wait for one."""
        ...

    def models(self) -> tuple[str, ...]:
        """``autohands`` and one ``provider/model`` per configured provider."""
        ...

    async def prepare(
        self,
        conversation: ConversationRef,
        *,
        history: Sequence[HistoryItem],
        model: str | None,
        mode: str | None = None,
    ) -> None:
        """Set ``model`` (None: the default) and, when given, the workflow ``mode``; unless
        empty, replace the history of ``conversation`` before its next inbound is recorded."""
        ...

    def watch(self, platform_id: str) -> RunWatch:
        """Watch the run of the inbound recorded next with ``platform_id``; ``unwatch`` after."""
        ...

    def unwatch(self, watch: RunWatch) -> None: ...


def model_ids(providers: Mapping[str, Mapping[str, object]]) -> tuple[str, ...]:
    ids = [DEFAULT_MODEL]
    for name, table in providers.items():
        model = table.get("model")
        ids.append(f"{name}/{model}" if isinstance(model, str) and model else name)
    return tuple(ids)


class HubRuns:
    """``Runs`` for one hub: built with the channels, ``attach``-ed once sessions exist."""

    def __init__(self, store: StoreAPI, bus: Bus, providers: Mapping[str, Mapping[str, object]]) -> None:
        self._store = store
        self._bus = bus
        self._models = model_ids(providers)
        self._sessions: SessionManager | None = None
        self._by_platform: dict[str, RunWatch] = {}
        self._by_inbound: dict[int, RunWatch] = {}
        self._subs: list[Subscription[object]] = []

    def attach(self, sessions: SessionManager) -> None:
        """Start observing: inbounds (to learn a watched one's id) and outbounds, as they are
        published. The filters only route to watches and queue nothing on the bus."""
        self._sessions = sessions
        sessions.run_ended = self._ended
        self._subs = [
            self._bus.subscribe("inbound", filter=self._saw_inbound, maxsize=1),
            self._bus.subscribe("outbound", filter=self._saw_outbound, maxsize=1),
        ]

    def close(self) -> None:
        for sub in self._subs:
            sub.close()

    def saturated(self) -> bool:
        s = self._sessions
        return s is not None and s.active_runs >= s.limits.max_concurrent_runs

    def models(self) -> tuple[str, ...]:
        return self._models

    async def prepare(
        self,
        conversation: ConversationRef,
        *,
        history: Sequence[HistoryItem],
        model: str | None,
        mode: str | None = None,
    ) -> None:
        key = conversation.key
        # Writing a setting creates the conversation first, so recording its inbound does not
        # take it for a new (history-less) one; a session already in memory follows too.
        settings = await self._store.set_setting(key, MODEL_SETTING, model)
        if mode is not None:
            settings = await self._store.set_setting(key, MODE_SETTING, None if mode == "auto" else mode)
        if history:
            anchor = Inbound(kind="message", conversation=conversation, sender=Sender(id=""))
            await self._store.finish_run(anchor, reply=None, replace_history=history)
        session = self._sessions.sessions.get(key) if self._sessions is not None else None
        if session is not None and not session.busy:
            self._refresh(session, settings, history)

    @staticmethod
    def _refresh(session: Session, settings: dict[str, str], history: Sequence[HistoryItem]) -> None:
        session.settings = dict(settings)
        if history:
            session.history = list(history)

    def watch(self, platform_id: str) -> RunWatch:
        watch = self._by_platform[platform_id] = RunWatch(platform_id)
        return watch

    def unwatch(self, watch: RunWatch) -> None:
        self._by_platform.pop(watch.platform_id, None)
        for inbound_id, w in list(self._by_inbound.items()):
            if w is watch:
                del self._by_inbound[inbound_id]

    # ------------------------------------------------------------------ observers (sync)
    def _saw_inbound(self, item: object) -> bool:
        if self._by_platform and isinstance(item, Inbound):
            watch = self._by_platform.get(item.platform_id)
            if watch is not None:
                self._by_inbound[item.id] = watch
        return False

    def _saw_outbound(self, item: object) -> bool:
        if self._by_inbound and isinstance(item, Outbound) and item.inbound_id:
            watch = self._by_inbound.get(item.inbound_id)
            if watch is not None:
                watch.events.put_nowait(item)
        return False

    def _ended(self, inbound: Inbound, usage: Sequence[tuple[str, str, Usage]]) -> None:
        watch = self._by_inbound.pop(inbound.id, None)
        if watch is not None:
            watch.events.put_nowait(RunEnded(tuple(usage)))
