"""Splitting a long Markdown reply into parts that each fit a platform's length limit.

Breaks are chosen on paragraph, then line, then word boundaries; only a single word longer than
the room left is cut hard, and then between two characters as a reader sees them (never inside
an emoji ZWJ sequence, a flag, a skin tone or a letter with its accents). A fenced code block is
never left open in a part: it is closed at the end of the part and reopened, with the same
language tag, at the start of the next, so every part renders on its own. When there is more
than one part, each is numbered ``(1/3) ``, and the number counts toward the limit.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["NUMBER_RESERVE", "numbering", "split_text"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_BLOCK_START = re.compile(r"^(#|```|~~~|>|[-*+] |\d+[.)] )")

NUMBER_RESERVE = len("(999/999) ")
"""Room to leave for a numbering prefix when the part count is not known yet."""

_MIN_BODY = 8
"""Below this many characters of text per part, numbering is left out rather than crowd the text."""


@dataclass(frozen=True, slots=True)
class _Fence:
    char: str
    length: int
    reopen: str
    """The opening line to repeat at the start of the next part, with its newline."""

    @property
    def close(self) -> str:
        return "\n" + self.char * self.length


def _fence_line(line: str) -> tuple[str, str] | None:
    """``(marker, info)`` if ``line`` opens or closes a fence."""
    m = _FENCE.match(line)
    if m is None:
        return None
    marker, info = m.group(1), m.group(2)
    if marker[0] == "`" and "`" in info:  # CommonMark: a backtick fence's info has no backticks
        return None
    return marker, info.strip()


def _scan(text: str, fence: _Fence | None, at_line_start: bool) -> _Fence | None:
    """The fence still open after ``text``, given the one open before it."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if i == 0 and not at_line_start:
            continue
        found = _fence_line(line)
        if found is None:
            continue
        marker, info = found
        if fence is None:
            lang = info.split(maxsplit=1)[0] if info else ""
            fence = _Fence(marker[0], len(marker), marker + lang + "\n")
        elif marker[0] == fence.char and len(marker) >= fence.length and not info:
            fence = None
    return fence


_MARKER_RUN = re.compile(r"`{3,}|~{3,}")


def _max_marker(text: str) -> int:
    """The longest fence marker a part could ever have to close.

    Every run of backticks or tildes counts, not only today's fence lines: a hard cut can
    turn the start of a line (``````aaaa` ``) into a fence line of its own."""
    return max((len(m.group()) for m in _MARKER_RUN.finditer(text)), default=3)


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _avoid_fence_line(rest: str, cut: int) -> int:
    """Move a mid-line cut to the start of its line when that line is a fence marker."""
    start = _line_start(rest, cut)
    if start < cut and start > 0:
        end = rest.find("\n", cut)
        if _fence_line(rest[start : end if end >= 0 else len(rest)]) is not None:
            return start
    return cut


def _find_cut(rest: str, window: int) -> tuple[int, int]:
    """Where to end this part (``cut``) and where the next begins (``resume``) within ``window``.

    Breaks in the second half of the window are preferred, so parts stay well filled: a
    paragraph break there beats a line break there, which beats a space there; failing all of
    those, the latest break of any kind; failing that, a hard cut (a single overlong word).
    """
    head = rest[: window + 1]  # a separator may sit just past the room: it is dropped anyway
    half = window // 2
    found: list[tuple[int, int]] = []
    for sep in ("\n\n", "\n", " "):
        idx = head.rfind(sep, 1, window + len(sep))
        if idx > 0:
            resume = idx + len(sep)
            if sep == "\n\n":
                while resume < len(rest) and rest[resume] == "\n":
                    resume += 1
            found.append((idx, resume))
            if idx >= half:
                return idx, resume
    if found:
        return max(found)
    cut = _avoid_fence_line(rest, _grapheme_start(rest, window))
    return cut, cut


def _is_regional(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def _joined(text: str, i: int) -> bool:
    """Whether ``text[i - 1]`` and ``text[i]`` belong to one user-perceived character (a
    simplified UAX #29: joiners, modifiers, variation selectors, combining marks, flag pairs)."""
    prev, ch = text[i - 1], text[i]
    if prev == "\u200d" or ch == "\u200d" or (prev == "\r" and ch == "\n"):
        return True
    if (
        "\ufe00" <= ch <= "\ufe0f"  # variation selectors (emoji / text presentation)
        or "\U0001f3fb" <= ch <= "\U0001f3ff"  # skin tones
        or "\U000e0020" <= ch <= "\U000e007f"  # tags (subdivision flags)
        or unicodedata.category(ch) in ("Mn", "Mc", "Me")  # accents, keycap
    ):
        return True
    if _is_regional(ch) and _is_regional(prev):
        run = 0
        while i - run > 0 and _is_regional(text[i - run - 1]):
            run += 1
        return run % 2 == 1  # an odd count before: ``ch`` completes a flag
    return False


def _grapheme_start(text: str, index: int) -> int:
    """``index``, moved back to the start of the character it would cut; unchanged when that
    character fills everything before it (no other place to cut)."""
    at = index
    while 0 < at < len(text) and _joined(text, at):
        at -= 1
    return at if at > 0 else index


def _chunks(text: str, limit: int) -> list[str]:
    parts: list[str] = []
    close_room = 1 + _max_marker(text)
    fence: _Fence | None = None
    at_line_start = True
    pos = 0
    while pos < len(text):
        rest = text[pos:]
        if fence is not None and len(fence.reopen) + close_room + 1 > limit:
            fence = None  # no room to carry a fence at this limit: keep the length promise instead
        head = fence.reopen if fence is not None else ""
        if len(head) + len(rest) <= limit:
            parts.append(head + rest)
            break
        closing = limit - len(head) - close_room >= 1
        window = limit - len(head) - (close_room if closing else 0)
        cut, resume = _find_cut(rest, window)
        piece = rest[:cut]
        fence = _scan(piece, fence, at_line_start)
        if fence is not None and closing:
            parts.append(head + piece + fence.close)
        else:
            parts.append(head + piece)
            fence = fence if closing else None
        at_line_start = resume > cut and rest[resume - 1] == "\n"
        pos += resume
    # Whitespace between two breaks would make an empty message, which platforms refuse.
    return [p for p in parts if p.strip()] or [text[:limit]]


def numbering(index: int, total: int, part: str) -> str:
    """Prefix ``part`` with ``(index/total)``; on its own line when the part opens a block
    (a fence, heading, quote or list), so the prefix does not break that block."""
    sep = "\n" if _BLOCK_START.match(part) else " "
    return f"({index}/{total}){sep}{part}"


def split_text(text: str, limit: int, *, number: bool = True) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters.

    Args:
        text: Markdown (or plain) text.
        limit: the platform's maximum message length, in characters.
        number: prefix each part with ``(i/n)`` when there is more than one.

    Returns:
        At least one part; ``[text]`` when it already fits.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if len(text) <= limit:
        return [text]
    if not number:
        return _chunks(text, limit)
    digits = 1
    while True:
        reserve = len(f"({'9' * digits}/{'9' * digits}) ")
        if limit - reserve < _MIN_BODY:
            return _chunks(text, limit)
        parts = _chunks(text, limit - reserve)
        if len(str(len(parts))) <= digits:
            break
        digits = len(str(len(parts)))
    total = len(parts)
    return [numbering(i, total, part) for i, part in enumerate(parts, 1)]
