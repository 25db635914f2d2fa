"""render / to_plain: each dialect's markup, and above all its escaping."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from channels.formatting import render, to_plain

TG_TAGS = {"b", "i", "s", "code", "pre", "a", "blockquote"}


class _TagChecker(HTMLParser):
    """Fails on any tag Telegram does not know and on unbalanced tags; collects the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in TG_TAGS, tag
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def tg_text(markdown: str) -> str:
    out = render(markdown, "telegram_html")
    checker = _TagChecker()
    checker.feed(out)
    checker.close()
    assert not checker.stack, out
    return "".join(checker.text)


# -- Telegram HTML -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("md", "html"),
    [
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        ("**bold** *it* _it_ ~~gone~~", "<b>bold</b> <i>it</i> <i>it</i> <s>gone</s>"),
        ("`x < *y*`", "<code>x &lt; *y*</code>"),
        ("``a ` b``", "<code>a ` b</code>"),
        ("***both***", "<b><i>both</i></b>"),
        ("**bold *inner* bold**", "<b>bold <i>inner</i> bold</b>"),
        ("# Title", "<b>Title</b>"),
        ("## A **b** c", "<b>A b c</b>"),
        ("> quoted <x>", "<blockquote>quoted &lt;x&gt;</blockquote>"),
        ("- one\n- two", "• one\n• two"),
        ("1. one\n2. two", "1. one\n2. two"),
        ("<b>not a tag</b>", "&lt;b&gt;not a tag&lt;/b&gt;"),
        ("\\*literal\\*", "*literal*"),
        ("---", "———"),
    ],
)
def test_telegram_html(md: str, html: str) -> None:
    assert render(md, "telegram_html") == html


def test_telegram_code_block_keeps_language_and_escapes() -> None:
    md = "```python\nif a < b and c & d:\n    print('**no**')\n```"
    assert render(md, "telegram_html") == (
        "<pre><code class=\"language-python\">if a &lt; b and c &amp; d:\n    print('**no**')</code></pre>"
    )
    assert render("```\nx<y\n```", "telegram_html") == "<pre>x&lt;y</pre>"
    # An unclosed fence runs to the end, still escaped and closed in the output.
    assert render("```js\nlet a = 1 < 2", "telegram_html") == (
        '<pre><code class="language-js">let a = 1 &lt; 2</code></pre>'
    )
    # A language tag cannot inject markup.
    injected = render('```x"><b>\ncode\n```', "telegram_html")
    assert injected == '<pre><code class="language-xb">code</code></pre>'


def test_telegram_links() -> None:
    out = render('[docs & more](https://ex.com/?a=1&b="2")', "telegram_html")
    assert out == '<a href="https://ex.com/?a=1&amp;b=&quot;2&quot;">docs &amp; more</a>'
    assert render("<https://ex.com/x>", "telegram_html") == '<a href="https://ex.com/x">https://ex.com/x</a>'
    # Not a scheme Telegram accepts: shown as text, never as a link.
    assert render("[x](javascript:alert(1))", "telegram_html") == "x (javascript:alert(1))"
    assert render("[rel](/path)", "telegram_html") == "rel (/path)"
    assert render("![alt](https://ex.com/i.png)", "telegram_html") == '<a href="https://ex.com/i.png">alt</a>'


@pytest.mark.parametrize(
    "md",
    [
        "2 * 3 * 4",
        "snake_case_name and a__b__c",
        "a ** b",
        "**unclosed bold",
        "*unclosed",
        "~~not closed",
        "`unclosed code",
        "[text](no close",
        "[](https://x.com)",
        "** spaced **",
    ],
)
def test_unbalanced_markers_stay_literal(md: str) -> None:
    out = render(md, "telegram_html")
    assert "<" not in out.replace("&lt;", "")
    assert tg_text(md) == md


def test_emphasis_does_not_cross_code_spans() -> None:
    assert render("*a `b* c` d*", "telegram_html") == "<i>a <code>b* c</code> d</i>"
    assert render("*a `b*` c", "telegram_html") == "*a <code>b*</code> c"


# -- Slack mrkdwn --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("md", "out"),
    [
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        ("**bold** *it* ~~s~~ `c<d`", "*bold* _it_ ~s~ `c&lt;d`"),
        ("# Head **b**", "*Head b*"),
        ("[site](https://ex.com/?a=1&b=2)", "<https://ex.com/?a=1&amp;b=2|site>"),
        ("[**bold label**](https://ex.com)", "<https://ex.com|bold label>"),
        ("[a|b](https://ex.com/x|y)", "<https://ex.com/x%7Cy|a¦b>"),
        ("<https://ex.com>", "<https://ex.com>"),
        ("- item\n  - nested", "• item\n  • nested"),
        ("> one\n> two", "> one\n> two"),
        ("<!channel> hi", "&lt;!channel&gt; hi"),
    ],
)
def test_slack_mrkdwn(md: str, out: str) -> None:
    assert render(md, "slack_mrkdwn") == out


def test_slack_code_block_drops_language_and_escapes() -> None:
    assert render("```py\nx = a<b\n```", "slack_mrkdwn") == "```\nx = a&lt;b\n```"


# -- Discord -------------------------------------------------------------------------------


def test_discord_passes_markdown_and_defuses_mass_mentions() -> None:
    md = "# Hi @everyone\n**b** and @here, `@everyone` stays in code\n```\n@here\n```"
    out = render(md, "discord_markdown")
    assert out == ("# Hi @\u200beveryone\n**b** and @\u200bhere, `@everyone` stays in code\n```\n@here\n```")
    assert render("#### deep", "discord_markdown") == "**deep**"
    assert render("a < b & c", "discord_markdown") == "a < b & c"
    assert render("mail@here.com", "discord_markdown") == "mail@\u200bhere.com"


# -- plain and markdown --------------------------------------------------------------------


def test_to_plain() -> None:
    md = "# Title\n**b** _i_ `c*d` [site](https://ex.com) <https://a.b> [m](mailto:x@y.z)\n- one"
    assert to_plain(md) == "Title\nb i c*d site (https://ex.com) https://a.b m (x@y.z)\n• one"
    assert render(md, "plain") == to_plain(md)
    assert to_plain("```py\nx = 1\n```") == "x = 1"


def test_markdown_dialect_is_unchanged() -> None:
    md = "**x** <y> & z"
    assert render(md, "markdown") == md


# -- properties ----------------------------------------------------------------------------

_pieces = st.sampled_from(
    [
        "a",
        "b ",
        " ",
        "\n",
        "\n\n",
        "*",
        "**",
        "_",
        "__",
        "~~",
        "`",
        "```",
        "```py\n",
        "[",
        "]",
        "(",
        ")",
        "https://x.y/?a&b",
        "<",
        ">",
        "&",
        "#",
        "# ",
        "> ",
        "- ",
        "1. ",
        "\\",
        "@everyone",
        "|",
        '"',
    ]
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_pieces, max_size=60).map("".join))
def test_any_input_gives_wellformed_output(md: str) -> None:
    tg_text(md)  # only known tags, balanced, escaped
    slack = render(md, "slack_mrkdwn")
    # Every < in Slack output starts one of our links; raw text can never open one.
    assert "<" not in slack.replace("<https://", "").replace("<http", "") or "<" not in md
    assert "\u200b" not in to_plain(md)
    render(md, "discord_markdown")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abc <>&\"'\n.,", max_size=80))
def test_text_without_markers_round_trips(text: str) -> None:
    assume(not any(line.lstrip().startswith(">") for line in text.split("\n")))  # a quote marker
    # No Markdown at all: Telegram shows exactly the text, plain returns it (blank lines emptied).
    expected = "\n".join(line if line.strip() else "" for line in text.split("\n"))
    assert tg_text(text) == expected
    assert to_plain(text) == expected
