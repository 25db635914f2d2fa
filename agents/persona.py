"""The system prompt: identity, channel, tool categories and skills — and nothing volatile.

The system prompt is the cached prefix (Anthropic caches tools → system → messages; OpenAI
caches the longest repeated prefix), so it must be byte-identical from turn to turn: its parts
are sorted and it holds no clock. The current time goes into the user's turn instead
(``user_turn``), and that exact text is what the history keeps, so earlier turns also stay
byte-identical and the whole conversation so far remains a cache hit. A side benefit: the
model sees when each message was written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.messages import Attachment

from .config import IdentityConfig

log = logging.getLogger(__name__)


class SkillInfo(Protocol):
    """What the prompt lists of a skill until it is used."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...


def render_system_prompt(
    identity: IdentityConfig,
    *,
    channel: str,
    tool_categories: Mapping[str, Sequence[str]] = {},
    skills: Iterable[SkillInfo] = (),
) -> str:
    """The stable system prompt for one conversation.

    Args:
        identity: the ``[agent.identity]`` settings.
        channel: the channel the conversation lives in (``telegram``, ``terminal`` …).
        tool_categories: category → tool names available to the model.
        skills: skills whose name and description the model may ask to use.
    """
    parts = [_identity_block(identity)]
    parts.append(
        f"You are talking with people through the {channel} channel. Reply in concise Markdown "
        "suited to a chat; each user message starts with a [sent …] line giving the time it was "
        "written in the user's time zone."
    )
    if tool_categories:
        lines = [f"- {cat}: {', '.join(sorted(names))}" for cat, names in sorted(tool_categories.items())]
        parts.append(
            "You can call tools, grouped by category:\n" + "\n".join(lines) + "\n"
            "Use a tool when it gives a better answer than guessing. A tool error is information: "
            "fix the arguments or explain the problem. Some tools need the user's approval; if the "
            "user denies a call, do not retry it — say what you could not do."
        )
    skill_lines = sorted(f"- {s.name}: {s.description}" for s in skills)
    if skill_lines:
        parts.append(
            "Skills: when a request fits one, call use_skill with its name and follow the instructions "
            "it returns.\n" + "\n".join(skill_lines)
        )
    return "\n\n".join(parts)


def _identity_block(identity: IdentityConfig) -> str:
    lines = [f"You are {identity.name}, {identity.role}."]
    if identity.personality:
        lines.append(f"Personality: {identity.personality}.")
    if identity.tone:
        lines.append(f"Tone: {identity.tone}.")
    if identity.knowledge_scope:
        lines.append(f"Knowledge scope: {identity.knowledge_scope}. Say so when a question is outside it.")
    if identity.catchphrase:
        lines.append(f'Your catchphrase, used sparingly: "{identity.catchphrase}".')
    if identity.taboos:
        lines.append("Never: " + "; ".join(identity.taboos) + ".")
    if identity.lang:
        lines.append(f"Reply in the language '{identity.lang}' unless the user asks otherwise.")
    else:
        lines.append("Reply in the language the user writes in.")
    return "\n".join(lines)


def describe_persona(identity: IdentityConfig) -> str:
    """A human-readable view of the persona (for ``/persona``)."""
    rows = [
        ("Name", identity.name),
        ("Role", identity.role),
        ("Personality", identity.personality),
        ("Tone", identity.tone),
        ("Knowledge scope", identity.knowledge_scope),
        ("Catchphrase", identity.catchphrase),
        ("Taboos", ", ".join(identity.taboos)),
        ("Language", identity.lang or "the user's"),
    ]
    return "\n".join(f"{label}: {value}" for label, value in rows if value)


def zone(tz: str | None) -> ZoneInfo:
    """The named zone, or UTC for a missing or unknown name."""
    if tz:
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            log.debug("unknown time zone %r, using UTC", tz)
    return ZoneInfo("UTC")


def user_turn(text: str, *, now: datetime, tz: str | None, attachments: Sequence[Attachment] = ()) -> str:
    """The user's message as the model sees it: a minute-precision time line, the text, text files."""
    z = zone(tz)
    local = now.astimezone(z)
    head = f"[sent {local:%Y-%m-%d %H:%M} ({local:%a}) {z.key}]"
    body = [head, text] if text else [head]
    for att in attachments:
        if att.text is not None:
            body.append(f'<attachment name="{att.name}" type="{att.mime_type}">\n{att.text}\n</attachment>')
        else:
            body.append(f"[attachment {att.name} ({att.mime_type}, {att.size} bytes) — not readable as text]")
    return "\n".join(body)
