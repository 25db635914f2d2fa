"""History compaction: summarise the oldest turns once the prompt nears the context budget.

The cut is made only where a user message starts, so an assistant message with tool calls is
never separated from its tool results (vendors reject an unanswered call), and at least the
newest ``keep_recent`` items stay verbatim. One model call turns everything before the cut —
including an earlier summary — into a new ``summary`` item.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hub.agent import HistoryItem, Usage

from .history import ASSISTANT, SUMMARY, TOOL_RESULTS, USER, summary_item
from .providers.base import (
    AssistantMessage,
    ChatMessage,
    ModelRequest,
    Provider,
    ToolResultsMessage,
    ToolSpec,
    UserMessage,
)

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
_PER_MESSAGE_OVERHEAD = 4
_TEXT_CAP = 4000
_ARGS_CAP = 500
_RESULT_CAP = 1000

SUMMARY_SYSTEM = (
    "You compress chat transcripts. Write a concise summary of the conversation so far that keeps "
    "what later turns need: facts learned, decisions, the user's preferences and names, open tasks, "
    "and the outcome of tool calls. Write in the conversation's language. Output only the summary."
)


def estimate_tokens(
    system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = (), *, tool_chars: int | None = None
) -> int:
    """A vendor-neutral estimate: characters / 4 of the prompt's text and JSON.

    ``tool_chars``: the tools' size measured beforehand with ``tools_chars`` (they are the
    same every run), instead of measuring ``tools`` again."""
    chars = len(system) + (tool_chars if tool_chars is not None else tools_chars(tools))
    for m in messages:
        match m:
            case UserMessage():
                chars += len(m.text)
            case AssistantMessage():
                chars += len(m.text) + sum(len(c.name) + len(c.arguments) + 16 for c in m.tool_calls)
            case ToolResultsMessage():
                chars += sum(len(r.content) + 16 for r in m.results)
    return chars // CHARS_PER_TOKEN + _PER_MESSAGE_OVERHEAD * len(messages)


def tools_chars(tools: Sequence[ToolSpec]) -> int:
    return sum(len(t.name) + len(t.description) + len(json.dumps(t.parameters)) for t in tools)


def find_cut(items: Sequence[HistoryItem], keep_recent: int) -> int:
    """Index of the first item to keep verbatim; 0 when nothing can be summarised.

    Prefers the latest user message at or before ``len - keep_recent``; if there is none,
    the earliest one after it (keeping fewer items is better than not compacting at all).
    """
    target = len(items) - keep_recent
    if target <= 0:
        return 0
    starts = [i for i, it in enumerate(items) if it.kind == USER and i > 0]
    before = [i for i in starts if i <= target]
    cut = before[-1] if before else (starts[0] if starts else 0)
    if cut == 1 and items[0].kind == SUMMARY:
        return 0  # only an existing summary precedes the cut: nothing new to compress
    return cut


def transcript(items: Sequence[HistoryItem]) -> str:
    """Old items as plain text for the summariser (long parts cut)."""
    lines: list[str] = []
    for it in items:
        data = it.data
        if it.kind == SUMMARY:
            lines.append(f"Earlier summary: {_cap(str(data.get('text', '')), _TEXT_CAP)}")
        elif it.kind == USER:
            lines.append(f"User: {_cap(str(data.get('text', '')), _TEXT_CAP)}")
        elif it.kind == ASSISTANT:
            if data.get("text"):
                lines.append(f"Assistant: {_cap(str(data['text']), _TEXT_CAP)}")
            for c in data.get("tool_calls") or ():
                args = _cap(str(c.get("arguments", "")), _ARGS_CAP)
                lines.append(f"Assistant called {c.get('name')}({args})")
        elif it.kind == TOOL_RESULTS:
            for r in data.get("results") or ():
                flag = " (error)" if r.get("is_error") else ""
                content = _cap(str(r.get("content", "")), _RESULT_CAP)
                lines.append(f"Result of {r.get('name')}{flag}: {content}")
    return "\n".join(lines)


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True, slots=True)
class Compacted:
    history: list[HistoryItem]
    summary: str
    """The new summary's text (also the first item of ``history``)."""
    usage: Usage
    model: str


async def compact(
    items: Sequence[HistoryItem],
    *,
    provider: Provider,
    model: str | None,
    keep_recent: int,
    max_tokens: int,
) -> Compacted | None:
    """Summarise everything before the cut; None when there is nothing to cut.

    Raises whatever the provider raises (the caller decides whether to go on without it).
    """
    cut = find_cut(items, keep_recent)
    if cut == 0:
        return None
    request = ModelRequest(
        system=SUMMARY_SYSTEM,
        messages=[UserMessage(text="Summarise this conversation so far:\n\n" + transcript(items[:cut]))],
        model=model,
        max_tokens=max_tokens,
    )
    response = await provider.complete(request)
    text = response.text.strip()
    if not text:
        log.warning("the summariser returned no text; history left as it was")
        return None
    log.info("compacted %d history items into a summary, %d kept", cut, len(items) - cut)
    return Compacted(
        history=[summary_item(text, cut), *items[cut:]],
        summary=text,
        usage=response.usage,
        model=response.model or model or provider.model,
    )
