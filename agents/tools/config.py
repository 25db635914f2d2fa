"""The ``[tools]`` config section.

    [tools]
    workspace = "~/autohands-workspace"   # default: <data_dir>/workspace
    enabled = ["file", "search", "math", "time", "web", "shell"]
    approve_medium = false

    [tools.shell]
    allow_commands = ["ls", "cat", "grep"]

Validate with ``hub.config.validate_section(ToolsConfig, raw, "tools")`` so errors name the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, field_validator

from .base import Risk

Category = Literal["file", "shell", "web", "search", "math", "time", "schedule"]
ALL_CATEGORIES: tuple[Category, ...] = ("file", "shell", "web", "search", "math", "time", "schedule")

# Read-only inspection commands only. Deliberately absent, because each can run arbitrary code
# or write files and so would make the allowlist meaningless: sh/bash, python3, env, xargs,
# find (-exec, -delete), sed (-i, the `e` command), awk (system()), git (hooks, -c core.pager),
# tee, cp/mv/rm (the file tools cover writes with size caps and the workspace jail).
DEFAULT_SHELL_COMMANDS: tuple[str, ...] = (
    "ls", "cat", "echo", "grep", "wc", "head", "tail", "date", "sort", "uniq", "cut", "tr",
    "pwd", "stat", "du", "diff", "basename", "dirname", "sha256sum", "md5sum",
)  # fmt: skip


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileToolsConfig(_Section):
    max_read_bytes: int = Field(default=200_000, gt=0)
    """Largest slice ``read_file`` returns at once (the model may continue with ``offset``)."""
    max_write_bytes: int = Field(default=1_000_000, gt=0)
    max_list_entries: int = Field(default=500, gt=0)


class ShellToolsConfig(_Section):
    allow_commands: tuple[str, ...] = DEFAULT_SHELL_COMMANDS
    """Executable names (no paths) the ``run_command`` tool may start."""
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    max_output_bytes: int = Field(default=16_000, gt=0)
    pass_env: tuple[str, ...] = ()
    """Names of environment variables handed to commands; none by default (secrets stay out)."""
    risk: Risk = Risk.HIGH
    """High: every command asks the user first. Lower it only for a trusted allowlist."""

    @field_validator("allow_commands")
    @classmethod
    def _bare_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name or "/" in name or name.strip() != name:
                raise ValueError(f"{name!r} is not a bare executable name (no paths or spaces)")
        return value


class WebToolsConfig(_Section):
    allow_hosts: tuple[str, ...] = ()
    """If non-empty, only these hosts (and their subdomains) may be fetched."""
    deny_hosts: tuple[str, ...] = ()
    """Never fetched, even if allowed (subdomains included)."""
    allow_private: bool = False
    """Allow private, loopback, link-local and reserved addresses (the hub's own network)."""
    allow_networks: tuple[IPvAnyNetwork, ...] = ()
    """Networks allowed even when ``allow_private`` is false (e.g. one LAN service)."""
    max_bytes: int = Field(default=2_000_000, gt=0)
    """Body bytes read before the download stops."""
    max_chars: int = Field(default=20_000, gt=0)
    """Characters of text returned to the model."""
    timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    max_redirects: int = Field(default=5, ge=0, le=20)
    user_agent: str = "AutoHands/0.1 (+web tool)"


class SearchToolsConfig(_Section):
    max_results: int = Field(default=100, gt=0)
    max_file_bytes: int = Field(default=2_000_000, gt=0)
    """Files larger than this are skipped by ``grep``."""


class ToolsConfig(_Section):
    workspace: Path | None = None
    """Where file, shell and search tools work; None means ``<data_dir>/workspace``."""
    enabled: tuple[Category, ...] = ALL_CATEGORIES
    approve_medium: bool = False
    """Ask the user before medium-risk tools too (high-risk ones always ask)."""
    file: FileToolsConfig = FileToolsConfig()
    shell: ShellToolsConfig = ShellToolsConfig()
    web: WebToolsConfig = WebToolsConfig()
    search: SearchToolsConfig = SearchToolsConfig()

    @field_validator("workspace")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    def workspace_for(self, data_dir: Path) -> Path:
        """The workspace path: the configured one, else ``data_dir/workspace``."""
        return self.workspace if self.workspace is not None else Path(data_dir) / "workspace"
