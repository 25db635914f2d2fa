"""A tool call in one line, as people read it: in the chat while the agent works
(``agents/tool_lines.py``) and in ``autohands sessions show``.

``🔧 read_file README.md ✓``, ``🔧 run_command rm -r build ✗ refused: the user denied the call``:
the tool's name, its first argument cut short on one line, and how it ended. The line is a
glance, not a record: the approval question shows every argument whole, and the model gets the
full result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from .redact import mask_urls

__all__ = ["CallStatus", "call_line", "call_summary"]

CallStatus = Literal["ok", "refused", "failed"]
"""``ok``: the tool ran and returned; ``refused``: it did not run (not approved, denied by a
rule) or refused the request itself; ``failed``: it could not be run or raised an error."""

TOOL_MARK = "🔧"
_ARG_MAX = 60
_REASON_MAX = 100


def _one_line(text: str, limit: int) -> str:
    """``text`` on one line of at most ``limit`` characters: whitespace runs become one space,
    characters a reader cannot see become ``?``."""
    flat = " ".join(text.split())
    flat = "".join(ch if ch.isprintable() else "?" for ch in flat)
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _first_argument(arguments: Mapping[str, object] | str) -> str:
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return ""
        if not isinstance(parsed, dict):
            return ""
        arguments = parsed
    for value in arguments.values():
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return ""


def call_summary(name: str, arguments: Mapping[str, object] | str) -> str:
    """``🔧 name first-argument``; ``arguments`` as the model sent them (a JSON object's text)
    or parsed. Credentials in URLs are masked: the line may be read by a whole group."""
    first = _one_line(mask_urls(_first_argument(arguments)), _ARG_MAX)
    return f"{TOOL_MARK} {_one_line(name, 40)} {first}".rstrip()


def call_line(name: str, arguments: Mapping[str, object] | str, status: CallStatus | None, reason: str = "") -> str:
    """The summary and how the call ended (``None``: not known, e.g. a run cut short)."""
    head = call_summary(name, arguments)
    if status is None:
        return head
    if status == "ok":
        return f"{head} ✓"
    said = f": {_one_line(reason, _REASON_MAX)}" if reason.strip() else ""
    return f"{head} ✗ {status}{said}"
