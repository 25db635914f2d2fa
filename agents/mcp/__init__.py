"""MCP (Model Context Protocol) servers as tool sources: ``[mcp.servers.NAME]``.

Each enabled server is started (stdio) or connected to (streamable HTTP) when the agent is
built; its tools join the registry as ``NAME__tool`` in the category ``mcp:NAME`` and go through
the same executor as the built-in tools (approvals by the server's ``risk``, timeouts, output
caps). A server that fails or dies is restarted with back-off; its tools answer "unavailable"
meanwhile, and ``doctor`` shows a row per server.
"""

from __future__ import annotations

from .config import McpConfig, McpServerConfig
from .servers import McpServers

__all__ = ["McpConfig", "McpServerConfig", "McpServers"]
