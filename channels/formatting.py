"""Converting the agent's Markdown to each platform's dialect.

The models emit a CommonMark subset: ``**bold**``, ``*italic*``/``_italic_``, ``~~strike~~``,
```code``` spans, fenced blocks with a language, ``[links](url)``, headings, bullet and numbered
lists, ``>`` quotes. We parse that subset into a small tree and render the tree, so:

* text is escaped exactly once, everywhere outside the tags we emit (Telegram HTML and Slack
  mrkdwn both need ``& < >`` escaped), and the output's tags are always balanced;
* code spans and fenced blocks are taken out first: their content is escaped but never
  formatted, so ``*`` inside code stays a ``*``;
* a marker without a partner (``2 * 3``, ``snake_case``, a lone ``**``) stays literal text.

Discord renders Markdown itself, so its dialect is the source with two repairs: ``@everyone`` /
``@here`` are defused with a zero-width space (adapters should still send ``allowed_mentions``),
and headings deeper than Discord's ``###`` become bold lines.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import assert_never

from hub.channel import Dialect

__all__ = ["render", "to_plain"]

# -- the tree ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Text:
    text: str


@dataclass(frozen=True, slots=True)
class _Code:
    text: str


@dataclass(frozen=True, slots=True)
class _Span:
    kind: str  # "b", "i" or "s"
    children: tuple[_Inline, ...]


@dataclass(frozen=True, slots=True)
class _Link:
    children: tuple[_Inline, ...]
    url: str


_Inline = _Text | _Code | _Span | _Link


@dataclass(frozen=True, slots=True)
class _Para:
    text: str


@dataclass(frozen=True, slots=True)
class _Heading:
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class _Fence:
    lang: str
    code: str


@dataclass(frozen=True, slots=True)
class _Quote:
    blocks: tuple[_Block, ...]


@dataclass(frozen=True, slots=True)
class _Item:
    indent: str
    marker: str
    """``-``/``*``/``+`` for a bullet, ``3.`` or ``3)`` for a numbered item."""
    text: str


@dataclass(frozen=True, slots=True)
class _Rule:
    pass


@dataclass(frozen=True, slots=True)
class _Blank:
    pass


_Block = _Para | _Heading | _Fence | _Quote | _Item | _Rule | _Blank

# -- block parsing -------------------------------------------------------------------------

_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADING_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_RULE_RE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_QUOTE_RE = re.compile(r"^ {0,3}> ?(.*)$")
_ITEM_RE = re.compile(r"^( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$")


def _fence_open(line: str) -> tuple[str, str] | None:
    m = _FENCE_RE.match(line)
    if m is None or (m.group(1)[0] == "`" and "`" in m.group(2)):
        return None
    return m.group(1), m.group(2).strip()


def _starts_block(line: str) -> bool:
    return bool(
        _fence_open(line)
        or _HEADING_RE.match(line)
        or _RULE_RE.match(line)
        or _QUOTE_RE.match(line)
        or _ITEM_RE.match(line)
    )


def _parse_blocks(markdown: str) -> list[_Block]:
    lines = markdown.split("\n")
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if (fence := _fence_open(line)) is not None:
            marker, info = fence
            body: list[str] = []
            i += 1
            while i < len(lines):
                closing = _FENCE_RE.match(lines[i])
                if (
                    closing
                    and closing.group(1)[0] == marker[0]
                    and len(closing.group(1)) >= len(marker)
                    and not closing.group(2).strip()
                ):
                    i += 1
                    break
                body.append(lines[i])
                i += 1
            blocks.append(_Fence(info.split(maxsplit=1)[0] if info else "", "\n".join(body)))
            continue
        if not line.strip():
            blocks.append(_Blank())
        elif (m := _HEADING_RE.match(line)) is not None:
            blocks.append(_Heading(len(m.group(1)), m.group(2) or ""))
        elif _RULE_RE.match(line):
            blocks.append(_Rule())
        elif _QUOTE_RE.match(line):
            quoted: list[str] = []
            while i < len(lines) and (q := _QUOTE_RE.match(lines[i])) is not None:
                quoted.append(q.group(1))
                i += 1
            blocks.append(_Quote(tuple(_parse_blocks("\n".join(quoted)))))
            continue
        elif (m := _ITEM_RE.match(line)) is not None:
            blocks.append(_Item(m.group(1), m.group(2), m.group(3)))
        else:
            para = [line]
            while i + 1 < len(lines) and lines[i + 1].strip() and not _starts_block(lines[i + 1]):
                i += 1
                para.append(lines[i])
            blocks.append(_Para("\n".join(para)))
        i += 1
    return blocks


# -- inline parsing ------------------------------------------------------------------------

_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_AUTOLINK_RE = re.compile(r"<((?:https?|mailto|tg):[^\s<>]+)>")


def _run(s: str, i: int) -> int:
    j = i
    while j < len(s) and s[j] == s[i]:
        j += 1
    return j - i


def _code_end(s: str, i: int) -> tuple[int, int] | None:
    """For a backtick run at ``i``: (start of the closing run, its length), if it is closed."""
    n = _run(s, i)
    j = s.find("`" * n, i + n)
    while j >= 0:
        if _run(s, j) == n:
            return j, n
        j = s.find("`" * n, j + _run(s, j))
    return None


def _skip(s: str, j: int) -> int | None:
    """If ``s[j]`` starts an escape or a code span, the index just past it."""
    if s[j] == "\\":
        return j + 2
    if s[j] == "`":
        end = _code_end(s, j)
        return end[0] + end[1] if end else j + _run(s, j)
    return None


def _find_closer(s: str, start: int, delim: str) -> int:
    """Index of the closing ``delim`` for an opener ending at ``start``, or -1.

    A closer belongs to the nearest opener before it (CommonMark), so a run that can only open
    (``**half and **bold**``) takes the next closer for itself, and this opener the one after."""
    depth = 0
    j = start
    while j < len(s):
        if (nxt := _skip(s, j)) is not None:
            j = nxt
            continue
        if s[j] == delim[0]:
            n = _run(s, j)
            # A run of three can close "**" + "*" together (***both***).
            fits = n == len(delim) or n == 3
            flanked = j > start and not s[j - 1].isspace()
            if delim[0] == "_" and j + n < len(s) and s[j + n].isalnum():
                flanked = False  # snake_case_names are not emphasis
            if fits and flanked:
                if depth == 0:
                    return j + n - len(delim)
                depth -= 1
            elif fits and j > start and j + n < len(s) and not s[j + n].isspace():
                depth += 1  # preceded by a space, followed by text: it can only open
            j += n
            continue
        j += 1
    return -1


def _parse_link(s: str, i: int) -> tuple[str, str, int] | None:
    """``[text](url)`` at ``i``: (text, url, index past it)."""
    depth, j = 0, i
    while j < len(s):
        if s[j] in "\\`":
            j = _skip(s, j) or j + 1
            continue
        if s[j] == "[":
            depth += 1
        elif s[j] == "]":
            depth -= 1
            if depth == 0:
                break
        j += 1
    else:
        return None
    if j + 1 >= len(s) or s[j + 1] != "(":
        return None
    depth, k = 0, j + 1
    while k < len(s):
        if s[k] == "(":
            depth += 1
        elif s[k] == ")":
            depth -= 1
            if depth == 0:
                break
        elif s[k] == "\n":
            return None
        k += 1
    else:
        return None
    target = s[j + 2 : k].strip()
    url = target.split(maxsplit=1)[0] if target else ""  # drop an optional "title"
    url = url[1:-1] if url.startswith("<") and url.endswith(">") else url
    text = s[i + 1 : j]
    if not url or not text.strip():
        return None
    return text, url, k + 1


def _parse_inline(s: str) -> tuple[_Inline, ...]:
    out: list[_Inline] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.append(_Text("".join(buf)))
            buf.clear()

    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in _PUNCT:
            buf.append(s[i + 1])
            i += 2
        elif c == "`":
            end = _code_end(s, i)
            n = _run(s, i)
            if end is None:
                buf.append("`" * n)
                i += n
                continue
            code = s[i + n : end[0]]
            if len(code) > 2 and code[0] == code[-1] == " " and code.strip():
                code = code[1:-1]
            flush()
            out.append(_Code(code))
            i = end[0] + end[1]
        elif (c == "[" or s.startswith("![", i)) and (link := _parse_link(s, i + (c == "!"))) is not None:
            text, url, i = link
            flush()
            out.append(_Link(_parse_inline(text), url))
        elif c == "<" and (m := _AUTOLINK_RE.match(s, i)) is not None:
            flush()
            out.append(_Link((_Text(m.group(1)),), m.group(1)))
            i = m.end()
        elif c in "*_~":
            n = _run(s, i)
            delim = c * 2 if (n >= 2 or c == "~") else c
            after = i + len(delim)
            opens = (
                n >= len(delim)
                and after < len(s)
                and not s[after].isspace()
                and not (c == "_" and i > 0 and s[i - 1].isalnum())
            )
            close = _find_closer(s, after, delim) if opens else -1
            if close < 0:
                buf.append(s[i : i + n])
                i += n
                continue
            flush()
            kind = {"~": "s", "*": "b", "_": "b"}[c] if len(delim) == 2 else "i"
            out.append(_Span(kind, _parse_inline(s[after:close])))
            i = close + len(delim)
        else:
            buf.append(c)
            i += 1
    flush()
    return tuple(out)


# -- rendering -----------------------------------------------------------------------------

_SAFE_SCHEMES = ("http://", "https://", "mailto:", "tg://")


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _plain_inline(nodes: Sequence[_Inline]) -> str:
    return "".join(n.text if isinstance(n, _Text | _Code) else _plain_inline(n.children) for n in nodes)


@dataclass(frozen=True, slots=True)
class _Style:
    """How one dialect writes each piece of the tree."""

    text: Callable[[str], str]
    code: Callable[[str], str]
    span: Callable[[str, str], str]
    link: Callable[[str, str, Sequence[_Inline]], str]
    fence: Callable[[str, str], str]
    heading: Callable[[str], str]
    quote: Callable[[str], str]
    bullet: str = "•"
    rule: str = "———"


def _inline(nodes: Sequence[_Inline], style: _Style, open_kinds: frozenset[str] = frozenset()) -> str:
    parts: list[str] = []
    for node in nodes:
        if isinstance(node, _Text):
            parts.append(style.text(node.text))
        elif isinstance(node, _Code):
            parts.append(style.code(node.text))
        elif isinstance(node, _Span):
            inner = _inline(node.children, style, open_kinds | {node.kind})
            # The same style nested in itself adds nothing and breaks Slack's markers.
            parts.append(inner if node.kind in open_kinds else style.span(node.kind, inner))
        elif isinstance(node, _Link):
            parts.append(style.link(_inline(node.children, style, open_kinds), node.url, node.children))
        else:
            assert_never(node)
    return "".join(parts)


def _render_blocks(blocks: Sequence[_Block], style: _Style) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, _Para):
            lines.append(_inline(_parse_inline(block.text), style))
        elif isinstance(block, _Heading):
            lines.append(style.heading(_inline(_parse_inline(block.text), style, frozenset({"b"}))))
        elif isinstance(block, _Fence):
            lines.append(style.fence(block.lang, block.code))
        elif isinstance(block, _Quote):
            lines.append(style.quote(_render_blocks(block.blocks, style)))
        elif isinstance(block, _Item):
            marker = style.bullet if block.marker in "-*+" else block.marker
            lines.append(f"{block.indent}{marker} {_inline(_parse_inline(block.text), style)}")
        elif isinstance(block, _Rule):
            lines.append(style.rule)
        elif isinstance(block, _Blank):
            lines.append("")
        else:
            assert_never(block)
    return "\n".join(lines)


def _tg_link(inner: str, url: str, children: Sequence[_Inline]) -> str:
    if url.startswith(_SAFE_SCHEMES):
        return f'<a href="{html.escape(url, quote=True)}">{inner}</a>'
    return f"{inner} ({_esc(url)})"  # Telegram refuses relative and unknown-scheme links


def _tg_fence(lang: str, code: str) -> str:
    lang = re.sub(r"[^\w+#.-]", "", lang)
    if lang:
        return f'<pre><code class="language-{lang}">{_esc(code)}</code></pre>'
    return f"<pre>{_esc(code)}</pre>"


_TELEGRAM = _Style(
    text=_esc,
    code=lambda t: f"<code>{_esc(t)}</code>",
    span=lambda kind, inner: f"<{kind}>{inner}</{kind}>",
    link=_tg_link,
    fence=_tg_fence,
    heading=lambda inner: f"<b>{inner}</b>",
    quote=lambda inner: f"<blockquote>{inner}</blockquote>",
)


_SLACK_MARK = {"b": "*", "i": "_", "s": "~"}


def _slack_url(url: str) -> str:
    return _esc(url).replace("|", "%7C")


def _slack_link(inner: str, url: str, children: Sequence[_Inline]) -> str:
    label = _plain_inline(children)  # Slack shows link labels unformatted
    if label == url or not url.startswith(_SAFE_SCHEMES):
        return f"<{_slack_url(url)}>" if label == url else f"{_esc(label)} ({_esc(url)})"
    return f"<{_slack_url(url)}|{_esc(label).replace('|', '¦')}>"


_SLACK = _Style(
    text=_esc,
    code=lambda t: f"`{_esc(t)}`",
    span=lambda kind, inner: _SLACK_MARK[kind] + inner + _SLACK_MARK[kind],
    link=_slack_link,
    fence=lambda lang, code: f"```\n{_esc(code)}\n```",
    heading=lambda inner: f"*{inner}*",
    quote=lambda inner: "\n".join(f"> {line}" for line in inner.split("\n")),
)


def _plain_link(inner: str, url: str, children: Sequence[_Inline]) -> str:
    shown = url.removeprefix("mailto:")
    return inner if inner in (url, shown) else f"{inner} ({shown})"


_PLAIN = _Style(
    text=lambda t: t,
    code=lambda t: t,
    span=lambda kind, inner: inner,
    link=_plain_link,
    fence=lambda lang, code: code,
    heading=lambda inner: inner,
    quote=lambda inner: "\n".join(f"> {line}" for line in inner.split("\n")),
)

# -- Discord: the source, repaired ---------------------------------------------------------

_MASS_MENTION = re.compile(r"@(everyone|here)\b")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)(?<!`)\1(?!`)", re.DOTALL)


def _defuse(text: str) -> str:
    """Insert a zero-width space after ``@`` of ``@everyone``/``@here`` outside code spans."""
    out, last = [], 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_MASS_MENTION.sub("@\u200b\\1", text[last : m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_MASS_MENTION.sub("@\u200b\\1", text[last:]))
    return "".join(out)


def _discord(markdown: str) -> str:
    out: list[str] = []
    fence: str | None = None
    prose: list[str] = []

    def flush() -> None:
        if prose:
            out.append(_defuse("\n".join(prose)))
            prose.clear()

    for line in markdown.split("\n"):
        if fence is not None:
            out.append(line)
            m = _FENCE_RE.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2).strip():
                fence = None
        elif (opened := _fence_open(line)) is not None:
            flush()
            out.append(line)
            fence = opened[0]
        elif (h := _HEADING_RE.match(line)) is not None and len(h.group(1)) > 3 and h.group(2):
            flush()
            out.append(_defuse(f"**{h.group(2)}**"))
        else:
            prose.append(line)
    flush()
    return "\n".join(out)


# -- public --------------------------------------------------------------------------------


def render(markdown: str, dialect: Dialect) -> str:
    """Convert the agent's Markdown to what a platform shows in ``dialect``.

    ``telegram_html`` is for Telegram's ``parse_mode="HTML"``; ``slack_mrkdwn`` for Slack text
    with ``mrkdwn: true``; ``discord_markdown`` for Discord; ``markdown`` returns the text
    unchanged; ``plain`` is ``to_plain``.
    """
    if dialect == "telegram_html":
        return _render_blocks(_parse_blocks(markdown), _TELEGRAM)
    if dialect == "slack_mrkdwn":
        return _render_blocks(_parse_blocks(markdown), _SLACK)
    if dialect == "discord_markdown":
        return _discord(markdown)
    if dialect == "markdown":
        return markdown
    if dialect == "plain":
        return to_plain(markdown)
    assert_never(dialect)


def to_plain(markdown: str) -> str:
    """The text without Markdown markers: what a user should read where nothing is rendered.

    Links keep their address (``text (url)``); code keeps its content verbatim.
    """
    return _render_blocks(_parse_blocks(markdown), _PLAIN)
