"""The ``[mcp]`` config section: MCP servers as tool sources.

    [mcp.servers.files]                     # stdio: the hub starts the program
    command = "npx"
    args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv/shared"]
    env = { API_TOKEN = "${FILES_TOKEN}" }  # the child's whole environment, besides PATH/HOME…

    [mcp.servers.wiki]                      # streamable HTTP
    url = "https://wiki.example.com/mcp"
    headers = { Authorization = "Bearer ${WIKI_TOKEN}" }
    risk = "low"                            # default "high": every call asks first
    deny_tools = ["delete_page"]

Validate with ``hub.config.validate_section(McpConfig, raw, "mcp")`` so errors name the key.
Imports nothing of the ``mcp`` SDK: ``autohands config reference`` reads this module.
"""

from __future__ import annotations

import re
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ..tools.base import Risk

SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
"""A server's name: it prefixes its tools' names (``NAME__tool``), which models limit to these characters."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class McpServerConfig(_Section):
    """One MCP server: a program the hub starts (``command``) or a URL it connects to (``url``)."""

    command: str | None = None
    """The program to start (stdio transport), found on PATH; exactly one of ``command`` and ``url``."""
    args: tuple[str, ...] = ()
    """The program's arguments."""
    env: dict[str, SecretStr] = {}
    """The program's environment: these variables plus PATH, HOME, USER, LOGNAME, SHELL and TERM
    (the MCP SDK's safe list) — nothing else of the hub's environment reaches it."""
    cwd: str | None = None
    """The program's working directory; default: the hub's."""
    url: str | None = None
    """The server's streamable-HTTP endpoint (``https://host/mcp``); exactly one of ``command`` and ``url``."""
    headers: dict[str, SecretStr] = {}
    """HTTP headers sent with every request to ``url`` (and nowhere else), e.g. ``Authorization``."""
    enabled: bool = True
    """``false`` keeps the table but starts nothing."""
    risk: Risk = Risk.HIGH
    """The risk of every tool of this server: ``high`` asks the user before each call,
    ``medium`` asks when ``[agent] approve_medium`` is set, ``low`` runs."""
    allow_tools: tuple[str, ...] | None = None
    """Only these of the server's tools (their names on the server); default: all of them."""
    deny_tools: tuple[str, ...] = ()
    """Never these of the server's tools (their names on the server)."""
    timeout_seconds: float = Field(default=60.0, gt=0)
    """The longest one tool call may take; the model then hears that it timed out."""
    start_timeout_seconds: float = Field(default=30.0, gt=0)
    """The longest starting (or connecting to) the server and listing its tools may take."""
    max_output_chars: int | None = Field(default=None, gt=0)
    """A result longer than this is cut, with a note; default: ``[agent] max_tool_result_chars``."""

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError("set exactly one of command (a program to start) or url (a streamable-HTTP endpoint)")
        if self.url is not None and (self.args or self.env or self.cwd):
            raise ValueError("args, env and cwd are for a started program (command), not a url")
        if self.command is not None and self.headers:
            raise ValueError("headers are for a url, not a started program (command): use env")
        return self

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url

    def offers(self, tool: str) -> bool:
        """Whether the server's tool ``tool`` joins the registry (``allow_tools`` / ``deny_tools``)."""
        return tool not in self.deny_tools and (self.allow_tools is None or tool in self.allow_tools)


class McpConfig(_Section):
    """The ``[mcp]`` section."""

    servers: dict[str, McpServerConfig] = {}
    """The MCP servers, by name (``[mcp.servers.NAME]``); each server's tools are the category
    ``mcp:NAME``, named ``NAME__tool`` so two servers never collide."""
    restart_first_seconds: float = Field(default=1.0, gt=0)
    """The pause before restarting a server that failed or died; it doubles on each failure in a row."""
    restart_max_seconds: float = Field(default=300.0, gt=0)
    """The longest pause between restarts."""
    ping_seconds: float = Field(default=30.0, gt=0)
    """How often a running server is pinged, so one that died between calls is restarted."""

    @field_validator("servers")
    @classmethod
    def _names(cls, servers: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in servers:
            if not SERVER_NAME.fullmatch(name) or "__" in name:
                raise ValueError(
                    f"server name {name!r}: use letters, digits, '-' and '_' (no '__'), at most 32 characters"
                )
        return servers

    def enabled(self) -> dict[str, McpServerConfig]:
        return {name: server for name, server in self.servers.items() if server.enabled}
