"""``@tool``: schema from hints and docstring, argument validation, timeout, result encoding."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from agents.tools.base import Risk, Tool, ToolContext
from agents.tools.decorator import configure, parse_docstring, tool
from hub.errors import ToolDenied, ToolFailed

from .conftest_tools import make_ctx


class Point(BaseModel):
    x: int
    y: int = 0


@tool(category="demo", risk=Risk.MEDIUM, permissions=("demo.use",), timeout_seconds=5)
async def sample(
    ctx: ToolContext,
    count: int,
    mode: Literal["fast", "slow"] = "fast",
    tags: list[str] | None = None,
    weights: dict[str, float] | None = None,
    ratio: Annotated[float, Field(ge=0, le=1, description="share between 0 and 1")] = 0.5,
    where: Point | None = None,
) -> dict[str, object]:
    """Do a sample thing.

    It has a second paragraph
    wrapped over two lines.

    Args:
        count: how many times,
            at least one.
        mode: how fast.
        tags: labels to attach.
        ratio: overridden by the Field description.

    Returns:
        a summary.
    """
    return {"count": count, "mode": mode, "tags": tags, "where": where, "user": ctx.sender.id}


@tool
async def no_ctx(a: int, b: int = 2) -> int:
    """Add.

    Args:
        a: first.
        b: second.
    """
    return a + b


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return make_ctx(tmp_path)


def test_decorator_builds_a_tool() -> None:
    assert isinstance(sample, Tool)
    assert sample.name == "sample"
    assert sample.category == "demo"
    assert sample.risk is Risk.MEDIUM
    assert sample.permissions == ("demo.use",)
    assert sample.timeout_seconds == 5
    assert sample.description == "Do a sample thing.\n\nIt has a second paragraph wrapped over two lines."
    assert no_ctx.category == "general" and no_ctx.risk is Risk.LOW


def test_schema_types_defaults_enums_descriptions() -> None:
    schema = sample.parameters
    props = schema["properties"]
    assert schema["type"] == "object"
    assert schema["required"] == ["count"]
    assert props["count"] == {"type": "integer", "description": "how many times, at least one."}
    assert props["mode"] == {
        "type": "string",
        "enum": ["fast", "slow"],
        "default": "fast",
        "description": "how fast.",
    }
    # Optional[X] = None collapses to X, not required: the model may omit it.
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "description": "labels to attach."}
    assert props["weights"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["ratio"]["description"] == "share between 0 and 1"
    assert props["ratio"]["minimum"] == 0 and props["ratio"]["maximum"] == 1
    # Nested models are inlined, not referenced.
    assert props["where"]["properties"]["x"] == {"type": "integer"}
    assert "ctx" not in props


def test_schema_is_compact() -> None:
    text = str(sample.parameters)
    for redundant in ("title", "$defs", "$ref", "'default': None"):
        assert redundant not in text
    assert "additionalProperties" not in sample.parameters


def test_property_named_title_is_kept() -> None:
    @tool
    async def titled(title: str) -> str:
        """Use a title.

        Args:
            title: the title.
        """
        return title

    assert titled.parameters["properties"] == {"title": {"type": "string", "description": "the title."}}


async def test_invoke_validates_and_passes_context(ctx: ToolContext) -> None:
    out = await sample.invoke({"count": "3", "where": {"x": 1}}, ctx)
    assert out == '{"count":3,"mode":"fast","tags":null,"where":{"x":1,"y":0},"user":"u1"}'
    assert await no_ctx.invoke({"a": 1}, ctx) == "3"
    assert await no_ctx.invoke('{"a": 5, "b": 5}', ctx) == "10"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, "count: Field required"),
        ({"count": "many"}, "count: Input should be a valid integer"),
        ({"count": 1, "mode": "medium"}, "mode: Input should be 'fast' or 'slow'"),
        ({"count": 1, "colour": "red"}, "colour: unexpected argument"),
        ({"count": 1, "ratio": 2}, "ratio: Input should be less than or equal to 1"),
        ("{not json", "not valid JSON"),
        ([1, 2], "expected a JSON object, got list"),
    ],
)
async def test_bad_arguments_raise_tool_failed(ctx: ToolContext, args: object, expected: str) -> None:
    with pytest.raises(ToolFailed) as info:
        await sample.invoke(args, ctx)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("invalid arguments for tool 'sample'")
    assert expected in message
    assert "Traceback" not in message and "https://errors.pydantic.dev" not in message


async def test_timeout_becomes_tool_failed(ctx: ToolContext) -> None:
    never = asyncio.Event()

    @tool(timeout_seconds=0.05)
    async def hang() -> str:
        """Wait forever."""
        await never.wait()
        return "unreachable"

    with pytest.raises(ToolFailed, match=r"tool 'hang' timed out after 0.05s"):
        await hang.invoke({}, ctx)
    longer = configure(hang, timeout_seconds=0.1, risk=Risk.HIGH)
    assert longer.timeout_seconds == 0.1 and longer.risk is Risk.HIGH
    with pytest.raises(ToolFailed, match=r"timed out after 0.1s"):
        await longer.invoke({}, ctx)


async def test_errors_inside_the_tool(ctx: ToolContext) -> None:
    @tool
    async def broken() -> str:
        """Fail."""
        raise KeyError("missing")

    @tool
    async def refuses() -> str:
        """Refuse."""
        raise ToolDenied("no")

    with pytest.raises(ToolFailed, match=r"tool 'broken' failed: KeyError: 'missing'"):
        await broken.invoke({}, ctx)
    with pytest.raises(ToolDenied, match="no"):
        await refuses.invoke({}, ctx)


async def test_result_encoding(ctx: ToolContext) -> None:
    @dataclasses.dataclass
    class Pair:
        a: int
        b: str

    @tool
    async def pair() -> Pair:
        """Return a pair."""
        return Pair(1, "x")

    @tool
    async def nothing() -> None:
        """Return nothing."""

    assert await pair.invoke({}, ctx) == '{"a":1,"b":"x"}'
    assert await nothing.invoke({}, ctx) == ""


def test_rejects_sync_functions_and_untyped_parameters() -> None:
    def sync(a: int) -> int:
        return a

    async def untyped(a) -> int:
        return 1

    with pytest.raises(TypeError, match="async def"):
        tool(sync)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a type hint"):
        tool(untyped)


def test_parse_docstring_variants() -> None:
    doc = parse_docstring(
        """Summary line.

        Args:
            first (int): typed style.
            *rest: star args.

        Raises:
            ValueError: not an argument.
        """
    )
    assert doc.description == "Summary line."
    assert doc.params == {"first": "typed style.", "rest": "star args."}
    assert parse_docstring(None).description == ""
