"""The questions runs wait on (approvals), as the dashboard sees and answers them.

A run asks through ``RunContext.ask``; its session holds the one pending ``Question``
(``hub._session_context``). Only the person who started a request may answer it in the chat,
but an admin may answer any question from the dashboard: an API run has nobody in a chat to
ask, so its approvals are denied at the timeout unless an operator answers there. Such an
answer is a ``button`` inbound from ``operator_sender`` recorded through the hub's inbox like
any other, so it is kept and audited with the conversation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .messages import Button, ConversationRef, Inbound, Sender, utcnow

if TYPE_CHECKING:
    from .sessions import Session

__all__ = [
    "OPERATOR_PREFIX",
    "PendingQuestion",
    "is_operator",
    "operator_answer",
    "operator_sender",
    "pending_questions",
]

OPERATOR_PREFIX = "operator:"
"""Sender ids of answers an admin gives from the dashboard (``operator_sender``)."""


def operator_sender(principal_id: str) -> Sender:
    """The sender of an answer an admin gives from the dashboard (``hub.auth.Principal.id``)."""
    return Sender(id=OPERATOR_PREFIX + principal_id, name="operator (dashboard)", is_admin=True)


def is_operator(sender: Sender) -> bool:
    """Whether ``sender`` is an admin answering from the dashboard, who may answer any
    conversation's question (not only the person who started the request)."""
    return sender.is_admin and sender.id.startswith(OPERATOR_PREFIX)


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingQuestion:
    """A question a run waits on, as the dashboard lists it."""

    id: str
    """The question's outbound id."""
    conversation: ConversationRef
    user_id: str
    """Who was asked (the person who started the request)."""
    text: str
    buttons: tuple[Button, ...]
    asked_at: datetime
    """When it was asked (UTC)."""
    timeout: float
    """Seconds the run waits from ``asked_at``; then the question counts as unanswered."""
    inbound_id: int
    """The store's id of the message whose run asks."""


def pending_questions(sessions: Iterable[Session]) -> list[PendingQuestion]:
    """Every question the ``sessions`` wait on now, oldest first."""
    found = []
    for s in sessions:
        q = s.question
        if q is None or q.asked is None or q.future.done():
            continue
        found.append(
            PendingQuestion(
                id=q.asked.id,
                conversation=s.conversation,
                user_id=q.user_id,
                text=q.asked.text,
                buttons=q.asked.buttons,
                asked_at=q.asked_at or utcnow(),
                timeout=q.timeout,
                inbound_id=q.inbound_id,
            )
        )
    return sorted(found, key=lambda p: p.asked_at)


def operator_answer(sessions: Iterable[Session], question_id: str, button: str, principal_id: str) -> Inbound | None:
    """The button inbound that answers the pending question ``question_id`` with ``button`` as
    an admin from the dashboard; None if no such question waits or it has no such button.

    The caller records it through the hub's inbox; its ``platform_id`` names the question, so
    a second answer to the same question is a redelivery the inbox drops."""
    for s in sessions:
        q = s.question
        if q is None or q.asked is None or q.asked.id != question_id or q.future.done():
            continue
        if button not in q.button_ids:
            return None
        return Inbound(
            kind="button",
            conversation=s.conversation,
            sender=operator_sender(principal_id),
            button=button,
            platform_id=OPERATOR_PREFIX + question_id,
            reply_to_platform_id=q.asked.reply_to_platform_id,
        )
    return None
