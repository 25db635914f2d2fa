"""``TaskRunContext``: ``RunContext`` + ``Checkpointing`` for one run of a task.

The run is the task's own session (its history is the checkpoint, nothing else); what it says
and asks goes to the task's origin conversation, whose settings (model, time zone, approvals
kept) it reads, with the task's workflow mode as the setting ``mode``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ..agent import HistoryItem, Usage
from ..messages import ConversationRef, Inbound, Outbound, Sender
from ..store import StoreAPI
from .base import Task

__all__ = ["Conversations", "StepHook", "TaskRunContext"]


class Conversations(Protocol):
    """What a task's run needs of the conversations (``hub.sessions.SessionManager``)."""

    async def send_during_run(self, outbound: Outbound) -> None:
        """Send durably (finals through the outbox) without ending any run."""
        ...

    async def publish(self, outbound: Outbound) -> None:
        """Put an outbound already in the outbox on the bus (the outbox sends it)."""
        ...

    async def ask_in(
        self, conversation: ConversationRef, outbound: Outbound, *, user_id: str, timeout: float
    ) -> Inbound | None:
        """Ask in ``conversation`` and wait for ``user_id``'s answer (None: timed out)."""
        ...


StepHook = Callable[[Sequence[HistoryItem], str], Awaitable[None]]
"""Told the whole checkpoint and the step's label at each step boundary; may raise
``PauseRequested``."""


class TaskRunContext:
    """One run of ``task``; ``on_step`` saves the checkpoint (``TaskService``)."""

    def __init__(
        self,
        task: Task,
        *,
        settings: dict[str, str],
        conversations: Conversations,
        store: StoreAPI,
        on_step: StepHook,
    ) -> None:
        self.task = task
        self._settings = {**settings, "mode": task.mode}
        self._conversations = conversations
        self._store = store
        self._on_step = on_step
        self.base: list[HistoryItem] = list(task.checkpoint)
        self.new_items: list[HistoryItem] = []
        self.usage: list[tuple[str, str, Usage]] = []
        self._inbound = Inbound(
            kind="message",
            conversation=task.conversation,
            sender=task.owner,
            text=task.text,
            platform_id=f"task:{task.id}",
            received_at=task.created_at,
        )
        self._resuming = bool(task.checkpoint)
        self.model_error: str | None = None
        """Why the model failed the run (``ReportsErrors``): the agent still ends it with a reply
        explaining the failure, but the task then failed rather than completed."""

    @property
    def checkpoint(self) -> tuple[HistoryItem, ...]:
        """The run's history so far: what it started from and what it has remembered."""
        return (*self.base, *self.new_items)

    # ----------------------------------------------------------------- ReportsErrors
    def record_error(self, provider: str, error: str) -> None:
        self.model_error = f"the model provider {provider} failed ({error})"

    # ----------------------------------------------------------------- Checkpointing
    @property
    def resuming(self) -> bool:
        return self._resuming

    async def step(self, done: Sequence[HistoryItem], *, label: str) -> None:
        base = self.base
        # A resumed run may count its checkpoint as done (it is the run's history so far).
        starts_with_base = len(done) >= len(base) and tuple(done[: len(base)]) == tuple(base)
        await self._on_step(tuple(done) if base and starts_with_base else (*base, *done), label)

    # ----------------------------------------------------------------- RunContext
    @property
    def inbound(self) -> Inbound:
        return self._inbound

    @property
    def conversation(self) -> ConversationRef:
        return self.task.conversation

    @property
    def sender(self) -> Sender:
        return self.task.owner

    @property
    def history(self) -> Sequence[HistoryItem]:
        return tuple(self.base)

    @property
    def settings(self) -> dict[str, str]:
        return dict(self._settings)

    def remember(self, *items: HistoryItem) -> None:
        self.new_items.extend(items)

    def replace_history(self, items: Sequence[HistoryItem]) -> None:
        self.base = list(items)
        self.new_items = []

    def record_usage(self, provider: str, model: str, usage: Usage) -> None:
        self.usage.append((provider, model, usage))

    async def send(self, outbound: Outbound) -> None:
        await self._conversations.send_during_run(outbound)

    async def set_setting(self, name: str, value: str | None) -> None:
        settings = await self._store.set_setting(self.task.conversation.key, name, value)
        self._settings = {**settings, "mode": self.task.mode}

    async def ask(self, outbound: Outbound, *, user_id: str, timeout: float) -> Inbound | None:
        return await self._conversations.ask_in(self.task.conversation, outbound, user_id=user_id, timeout=timeout)
