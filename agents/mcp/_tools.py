"""An MCP server's tools as the registry's ``Tool``s, and a call's result as the model reads it."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, assert_never

from mcp_types import (
    AudioContent,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from hub.errors import ToolFailed

from ..tools.base import Tool, ToolContext
from ._connection import Connection, RemoteTool

log = logging.getLogger(__name__)

Caller = Callable[[Connection, str, dict[str, Any]], Awaitable[CallToolResult]]
"""Sends one call to a connection (across to the loop the connections live on)."""

SEPARATOR = "__"
"""Between a server's name and its tool's: ``files__read_file``."""
_NAME_LIMIT = 64  # the longest function name the OpenAI and Anthropic APIs accept
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def category(server: str) -> str:
    return f"mcp:{server}"


def tool_name(server: str, tool: str) -> str:
    """The registry's name of ``server``'s ``tool``: prefixed, with characters models refuse replaced."""
    return _UNSAFE.sub("_", f"{server}{SEPARATOR}{tool}")[:_NAME_LIMIT]


def build_tools(connection: Connection, remote: tuple[RemoteTool, ...], call: Caller) -> list[Tool]:
    """The tools ``connection``'s config offers (``allow_tools`` / ``deny_tools``), each sent through ``call``."""
    config, out, seen = connection.config, [], set[str]()
    for rt in remote:
        if not config.offers(rt.name):
            continue
        name = tool_name(connection.name, rt.name)
        if name in seen:
            log.warning(
                "MCP server %s: tool %r skipped: its name clashes with another as %s", connection.name, rt.name, name
            )
            continue
        seen.add(name)
        out.append(
            Tool(
                name=name,
                description=rt.description or f"{rt.name} (from the MCP server {connection.name})",
                parameters=_schema(rt.schema),
                invoke=_invoker(connection, rt.name, call),
                category=category(connection.name),
                risk=config.risk,
                permissions=("mcp",),
                timeout_seconds=config.timeout_seconds,
            )
        )
    return out


def _schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The server's input schema, as an object schema even when the server left ``properties`` out."""
    if schema.get("type") != "object":
        return {"type": "object", "properties": {}}
    return {"properties": {}, **schema}


def _invoker(
    connection: Connection, remote: str, call: Caller
) -> Callable[[dict[str, Any], ToolContext], Awaitable[str]]:
    limit = connection.config.max_output_chars

    async def invoke(args: dict[str, Any], ctx: ToolContext) -> str:
        text = result_text(await call(connection, remote, args))
        if limit is not None and len(text) > limit:
            return text[:limit] + f"\n…[truncated: the result had {len(text)} characters]"
        return text

    return invoke


def result_text(result: CallToolResult) -> str:
    """The result's content as text; ``ToolFailed`` with it when the server says the call failed."""
    text = "\n".join(_block_text(block) for block in result.content)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    if result.is_error:
        raise ToolFailed(text or "the MCP tool failed without saying why")
    return text


def _block_text(block: ContentBlock) -> str:
    if isinstance(block, TextContent):
        return block.text
    if isinstance(block, ImageContent | AudioContent):
        return f"[{block.type}: {block.mime_type}, {len(block.data)} base64 characters, not shown]"
    if isinstance(block, ResourceLink):
        return f"[resource link: {block.uri}]"
    if isinstance(block, EmbeddedResource):
        res = block.resource
        if isinstance(res, TextResourceContents):
            return res.text
        return f"[binary resource {res.uri}, not shown]"
    assert_never(block)
