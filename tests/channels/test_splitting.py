"""split_text: boundaries, code fences carried across parts, numbering, and the length promise."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from channels.splitting import NUMBER_RESERVE, numbering, split_text

_NUM = re.compile(r"^\((\d+)/(\d+)\)[ \n]")
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _unnumber(part: str) -> str:
    return _NUM.sub("", part, count=1)


def _fence_lines(part: str) -> list[str]:
    return [line for line in part.split("\n") if _FENCE_LINE.match(line)]


def _words(text: str) -> str:
    """Non-whitespace content, minus fence marker lines (which splitting may add)."""
    kept = [line for line in text.split("\n") if not _FENCE_LINE.match(line)]
    return "".join("".join(kept).split())


def test_short_text_is_one_unnumbered_part() -> None:
    assert split_text("hello", 10) == ["hello"]
    assert split_text("", 10) == [""]


def test_rejects_a_nonsense_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        split_text("abc", 0)


def test_prefers_paragraph_breaks() -> None:
    text = "first paragraph here.\n\nsecond one, a bit longer.\n\nthird."
    parts = split_text(text, 40, number=False)
    assert parts == ["first paragraph here.", "second one, a bit longer.\n\nthird."]


def test_falls_back_to_lines_then_words() -> None:
    text = "line one is here\nline two is here\nline three"
    assert split_text(text, 20, number=False) == ["line one is here", "line two is here", "line three"]
    words = "alpha beta gamma delta epsilon zeta"
    parts = split_text(words, 12, number=False)
    assert all(len(p) <= 12 for p in parts)
    assert " ".join(parts) == words


def test_hard_cuts_only_an_overlong_word() -> None:
    text = "short " + "x" * 25 + " end"
    parts = split_text(text, 10, number=False)
    assert all(len(p) <= 10 for p in parts)
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")
    assert parts[0] == "short"


def test_numbering_counts_within_the_limit() -> None:
    text = " ".join(f"word{i}" for i in range(200))
    parts = split_text(text, 50)
    n = len(parts)
    assert n > 10
    for i, part in enumerate(parts, 1):
        assert len(part) <= 50
        assert part.startswith(f"({i}/{n}) ")
    assert " ".join(_unnumber(p) for p in parts) == text


def test_code_fence_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"print({i})  # line {i}" for i in range(30))
    text = f"Here is code:\n\n```python\n{code}\n```\n\nDone."
    parts = split_text(text, 200)
    assert len(parts) > 2
    for part in parts:
        assert len(part) <= 200
        assert len(_fence_lines(part)) % 2 == 0, part
    # Every part after the first that continues the block reopens it with the tag.
    middle = [_unnumber(p) for p in parts[1:-1]]
    assert all(m.startswith("```python\n") for m in middle)
    # The numbering goes on its own line before a fence, so the fence still opens a line.
    assert parts[1].startswith(f"(2/{len(parts)})\n```python\n")
    assert _words("\n".join(_unnumber(p) for p in parts)) == _words(text)


def test_tilde_fence_and_longer_markers() -> None:
    text = "~~~~\n" + "\n".join("x" * 15 for _ in range(10)) + "\n~~~~\nafter"
    parts = split_text(text, 60, number=False)
    for part in parts:
        assert len(part) <= 60
        assert len(_fence_lines(part)) % 2 == 0
    assert parts[1].startswith("~~~~\n")


def test_numbering_goes_on_its_own_line_before_blocks() -> None:
    assert numbering(1, 2, "# Title") == "(1/2)\n# Title"
    assert numbering(2, 2, "- item") == "(2/2)\n- item"
    assert numbering(2, 2, "plain") == "(2/2) plain"
    assert len("(999/999) ") == NUMBER_RESERVE


def test_whitespace_only_parts_are_dropped() -> None:
    parts = split_text("a" + " " * 50 + "b", 10, number=False)
    assert parts == ["a", "b"] or all(p.strip() for p in parts)


_alphabet = st.sampled_from([*"ab c\n`~*_#>-", "```", "```py\n", "\n```\n", "~~~\n", "word ", "\n\n"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_alphabet, max_size=120).map("".join), st.integers(min_value=1, max_value=120), st.booleans())
def test_every_part_fits_any_limit(text: str, limit: int, number: bool) -> None:
    parts = split_text(text, limit, number=number)
    assert parts
    assert all(len(p) <= limit for p in parts)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(["word", "longerword", " ", " ", "\n", "\n\n", "x" * 30, "&<>", "**b**"]),
        max_size=150,
    ).map("".join),
    st.integers(min_value=20, max_value=200),
)
def test_prose_content_is_preserved(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert _words("\n".join(_unnumber(p) for p in parts)) == _words(text)
    if len(parts) > 1:
        assert [int(_NUM.match(p).group(1)) for p in parts] == list(range(1, len(parts) + 1))  # type: ignore[union-attr]


@st.composite
def _markdown_with_code(draw: st.DrawFn) -> str:
    blocks = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            lang = draw(st.sampled_from(["", "python", "js", "c++"]))
            lines = draw(st.lists(st.text("abc xyz(){}=;", max_size=40), max_size=12))
            blocks.append(f"```{lang}\n" + "\n".join(lines) + "\n```")
        else:
            blocks.append(draw(st.text("abcdef ghij\n*_", min_size=1, max_size=200)))
    return "\n\n".join(blocks)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_markdown_with_code(), st.integers(min_value=40, max_value=300))
def test_fences_balanced_in_every_part(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    for part in parts:
        assert len(part) <= limit
        assert len(_fence_lines(part)) % 2 == 0, (parts, part)
    assert _words("\n".join(_unnumber(p) for p in parts)) == _words(text)


def test_a_hard_cut_that_makes_a_fence_line_still_fits() -> None:
    """Regression (found by hypothesis in CI): cutting ````aaaa` after the backticks made a
    fence line whose closing marker was longer than the room kept for it."""
    parts = split_text("````aaaa`", 8, number=False)
    assert all(len(p) <= 8 for p in parts)
