"""Provider-neutral chat messages ⇄ the session's ``HistoryItem`` records.

Kinds: ``user`` ``{"text"}``, ``assistant`` ``{"text", "tool_calls": [{"id", "name",
"arguments"}]}``, ``tool_results`` ``{"results": [{"call_id", "name", "content", "is_error"}]}``
and ``summary`` ``{"text", "replaced"}`` (written by compaction).

Decoding repairs what a vendor would reject: a tool call without a result (a run stopped
between the two) gets an error result, results without their call are dropped, and adjacent
user messages are merged so roles keep alternating.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from hub.agent import HistoryItem

from .providers.base import (
    AssistantMessage,
    ChatMessage,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
)

log = logging.getLogger(__name__)

USER = "user"
ASSISTANT = "assistant"
TOOL_RESULTS = "tool_results"
SUMMARY = "summary"

SUMMARY_PREFIX = "[Summary of the earlier conversation]\n"
_INTERRUPTED = "(no result: the run was interrupted before this tool finished)"


def encode(message: ChatMessage) -> HistoryItem:
    """One chat message as a history item."""
    match message:
        case UserMessage():
            return HistoryItem(kind=USER, data={"text": message.text})
        case AssistantMessage():
            calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls]
            return HistoryItem(kind=ASSISTANT, data={"text": message.text, "tool_calls": calls})
        case ToolResultsMessage():
            results = [
                {"call_id": r.call_id, "name": r.name, "content": r.content, "is_error": r.is_error}
                for r in message.results
            ]
            return HistoryItem(kind=TOOL_RESULTS, data={"results": results})
    raise TypeError(f"not a chat message: {type(message).__name__}")


def summary_item(text: str, replaced: int) -> HistoryItem:
    return HistoryItem(kind=SUMMARY, data={"text": text, "replaced": replaced})


def decode_one(item: HistoryItem) -> ChatMessage | None:
    """The chat message of one item, or None for a kind or shape this agent does not know."""
    try:
        return _decode(item.kind, item.data)
    except (KeyError, TypeError, ValueError):
        log.warning("skipping a malformed history item of kind %r", item.kind)
        return None


def _decode(kind: str, data: dict[str, Any]) -> ChatMessage | None:
    if kind == USER:
        return UserMessage(text=str(data["text"]))
    if kind == SUMMARY:
        return UserMessage(text=SUMMARY_PREFIX + str(data["text"]))
    if kind == ASSISTANT:
        calls = tuple(
            ToolCall(id=str(c["id"]), name=str(c["name"]), arguments=str(c["arguments"]))
            for c in data.get("tool_calls") or ()
        )
        return AssistantMessage(text=str(data.get("text") or ""), tool_calls=calls)
    if kind == TOOL_RESULTS:
        results = tuple(
            ToolResult(
                call_id=str(r["call_id"]),
                name=str(r["name"]),
                content=str(r["content"]),
                is_error=bool(r.get("is_error", False)),
            )
            for r in data["results"]
        )
        return ToolResultsMessage(results=results)
    log.debug("skipping history item of unknown kind %r", kind)
    return None


def texts(items: Iterable[HistoryItem]) -> Iterator[str]:
    """Every text the history holds: messages, summaries, tool arguments and tool results."""
    for message in (decode_one(i) for i in items):
        if isinstance(message, UserMessage | AssistantMessage):
            yield message.text
        if isinstance(message, AssistantMessage):
            yield from (c.arguments for c in message.tool_calls)
        elif isinstance(message, ToolResultsMessage):
            yield from (r.content for r in message.results)


def decode(items: Iterable[HistoryItem]) -> list[ChatMessage]:
    """The history as a message list every vendor accepts (see the module docstring)."""
    raw = [m for m in (decode_one(i) for i in items) if m is not None]
    return _merge_users(_pair_tool_results(raw))


def _pair_tool_results(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    i = 0
    while i < len(messages):
        msg = messages[i]
        i += 1
        if isinstance(msg, ToolResultsMessage):
            continue  # orphaned: its assistant call message was not directly before it
        out.append(msg)
        if not (isinstance(msg, AssistantMessage) and msg.tool_calls):
            continue
        given: dict[str, ToolResult] = {}
        if i < len(messages) and isinstance(messages[i], ToolResultsMessage):
            nxt = messages[i]
            assert isinstance(nxt, ToolResultsMessage)
            given = {r.call_id: r for r in nxt.results}
            i += 1
        results = tuple(
            given.get(c.id) or ToolResult(call_id=c.id, name=c.name, content=_INTERRUPTED, is_error=True)
            for c in msg.tool_calls
        )
        out.append(ToolResultsMessage(results=results))
    return out


def _merge_users(messages: list[ChatMessage]) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for msg in messages:
        prev = out[-1] if out else None
        if isinstance(msg, UserMessage) and isinstance(prev, UserMessage):
            out[-1] = UserMessage(text=f"{prev.text}\n\n{msg.text}")
        else:
            out.append(msg)
    return out
