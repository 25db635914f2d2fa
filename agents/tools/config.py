"""The ``[tools]`` config section.

    [tools]
    workspace = "~/autohands-workspaces"   # the root of the workspaces; default: <data_dir>/workspaces
    workspace_scope = "user"               # one workspace per user | "conversation" | "shared"
    enabled = ["file", "search", "math", "time", "web", "shell"]
    approve_medium = false

    [tools.shell]
    sandbox = "bwrap"                       # or "off": every program must declare its arguments
    allow_commands = ["ls", "cat", "grep"]

Validate with ``hub.config.validate_section(ToolsConfig, raw, "tools")`` so errors name the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, field_validator

from hub.config import StrictBool

from .base import Risk

Category = Literal["file", "shell", "web", "search", "math", "time", "schedule", "memory"]
ALL_CATEGORIES: tuple[Category, ...] = ("file", "shell", "web", "search", "math", "time", "schedule", "memory")

WorkspaceScope = Literal["user", "conversation", "shared"]
SandboxKind = Literal["bwrap", "off"]
ArgKind = Literal["path", "text", "number"]
"""What an argument of a declared program is: a workspace path (checked to stay inside), free
text (a pattern, a message), or a number."""

# Inside the bubblewrap sandbox a program can reach only the workspace (the one writable path),
# a read-only system and a private /tmp, with no network and resource limits, so the allowlist
# can offer programs that run code or write files. Every command still asks the user first.
DEFAULT_SHELL_COMMANDS: tuple[str, ...] = (
    "ls", "cat", "echo", "grep", "wc", "head", "tail", "date", "sort", "uniq", "cut", "tr",
    "pwd", "stat", "du", "diff", "basename", "dirname", "sha256sum", "md5sum",
    "find", "sed", "awk", "file", "tree", "jq", "cp", "mv", "mkdir", "rm", "touch",
    "tar", "gzip", "gunzip", "zip", "unzip", "git", "python3",
)  # fmt: skip

# Refused by the file, search and shell tools in every workspace (fnmatch patterns on a file's
# name, or on its workspace-relative path when the pattern has a "/"); [tools.file]
# deny_patterns adds to them.
DEFAULT_DENY_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.ppk", ".netrc", "_netrc", ".npmrc", ".pypirc",
    ".pgpass", ".git-credentials", ".htpasswd", "*.kdbx", "credentials", "credentials.json",
    "*.tfvars", "*.tfstate", "secrets.*", ".ssh/*", ".aws/*", ".gnupg/*", ".docker/config.json",
    ".kube/config",
)  # fmt: skip


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileToolsConfig(_Section):
    max_read_bytes: int = Field(default=200_000, gt=0)
    """Largest slice ``read_file`` returns at once (the model may continue with ``offset``)."""
    max_write_bytes: int = Field(default=1_000_000, gt=0)
    """Largest content, in bytes (UTF-8), one ``write_file`` call may write or append; a larger
    one fails and the model is told the limit."""
    max_list_entries: int = Field(default=500, gt=0)
    """Entries ``list_dir`` shows of one directory; the rest are only counted. Raise it for
    directories with many files (each entry costs context)."""
    deny_patterns: tuple[str, ...] = ()
    """More credential-looking names to refuse, added to ``DEFAULT_DENY_PATTERNS``."""

    @property
    def denied(self) -> tuple[str, ...]:
        """Every pattern refused: the defaults plus ``deny_patterns``."""
        return (*DEFAULT_DENY_PATTERNS, *self.deny_patterns)


class ProgramArgs(_Section):
    """The arguments a program accepts when ``sandbox = "off"``; anything else is refused.

    Options are matched exactly as written here: an abbreviated long option, a short option
    with its value attached, or a cluster of short options that are not all ``flags`` is refused.
    """

    flags: tuple[str, ...] = ()
    """Options that take no value, e.g. ``-l``, ``--count``."""
    options: dict[str, ArgKind] = {}
    """Options that take one value (given as the next argument or ``--name=value``)."""
    operands: ArgKind | None = "path"
    """What the positional arguments are; None: the program takes none."""
    first_operand: ArgKind | None = None
    """A different kind for the first positional argument (grep's pattern is text)."""


class ShellToolsConfig(_Section):
    sandbox: SandboxKind = "bwrap"
    """``bwrap``: every command runs in a bubblewrap sandbox (the tool is disabled where bwrap
    cannot run). ``off``: commands run unconfined, and only with the arguments each program
    declares (``programs`` and the built-in declarations) — an operator's explicit choice."""
    allow_commands: tuple[str, ...] = DEFAULT_SHELL_COMMANDS
    """Executable names (no paths) the ``run_command`` tool may start."""
    network: StrictBool = False
    """Let sandboxed commands use the network (off: they see only a loopback of their own)."""
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    """Seconds a command may run before it is killed with the processes it started; raise it for
    long builds or test runs. Waiting for the user's approval is not counted."""
    max_output_bytes: int = Field(default=16_000, gt=0)
    """Bytes of a command's output (stdout and stderr together) returned to the model; the rest is
    dropped with a note of the total. Raise it for commands with long output, at a cost in context."""
    max_processes: int = Field(default=64, ge=1)
    """Processes and threads one command may run at once (RLIMIT_NPROC inside the sandbox)."""
    max_memory_mb: int = Field(default=1024, ge=16)
    """Address space per process (RLIMIT_AS)."""
    max_cpu_seconds: int = Field(default=60, ge=1)
    """CPU time per process (RLIMIT_CPU)."""
    max_file_mb: int = Field(default=256, ge=1)
    """Largest file a command may write (RLIMIT_FSIZE)."""
    max_open_files: int = Field(default=256, ge=16)
    """Open file descriptors per process (RLIMIT_NOFILE)."""
    pass_env: tuple[str, ...] = ()
    """Names of environment variables handed to commands; none by default (secrets stay out)."""
    programs: dict[str, ProgramArgs] = {}
    """Argument declarations for ``sandbox = "off"``, beside (or replacing) the built-in ones."""
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
    """Hosts the operator trusts (and their subdomains): fetched without asking. Any other public
    host is asked about once per conversation; a URL carrying text the model read always asks."""
    deny_hosts: tuple[str, ...] = ()
    """Never fetched, even if allowed (subdomains included)."""
    allow_private: StrictBool = False
    """Allow private, loopback, link-local and reserved addresses (the hub's own network)."""
    allow_networks: tuple[IPvAnyNetwork, ...] = ()
    """Networks allowed even when ``allow_private`` is false (e.g. one LAN service)."""
    max_bytes: int = Field(default=2_000_000, gt=0)
    """Body bytes read before the download stops."""
    max_chars: int = Field(default=20_000, gt=0)
    """Characters of text returned to the model."""
    timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    """Seconds one fetch may take in all (connecting, redirects, download) before it fails; raise it
    for slow sites."""
    max_redirects: int = Field(default=5, ge=0, le=20)
    """Redirects followed per fetch, each target checked like the first URL; one more fails the
    fetch. ``0`` follows none."""
    user_agent: str = "AutoHands/0.1 (+web tool)"
    """The ``User-Agent`` header of every fetch; change it when a site blocks the default or wants
    bots to name a contact."""


class SearchToolsConfig(_Section):
    max_results: int = Field(default=100, gt=0)
    """Matches one ``grep`` or ``glob`` call returns; past it the list stops with a note to narrow
    the search."""
    max_file_bytes: int = Field(default=2_000_000, gt=0)
    """Files larger than this are skipped by ``grep``."""


class ToolsConfig(_Section):
    workspace: Path | None = None
    """The root of the workspaces where file, shell and search tools work; None means
    ``<data_dir>/workspaces``. It must not hold the hub's own files."""
    workspace_scope: WorkspaceScope = "user"
    """One workspace per user (``users/<channel>/<id>``), per conversation
    (``conversations/<key>``), or one ``shared`` by everyone (the root itself)."""
    enabled: tuple[Category, ...] = ALL_CATEGORIES
    """The tool categories the model may use; leave one out to remove its tools (e.g. ``shell``
    and ``web`` for an agent that only talks). ``schedule`` also needs ``[scheduler] enabled``."""
    approve_medium: StrictBool = False
    """Ask the user before medium-risk tools too (high-risk ones always ask)."""
    file: FileToolsConfig = FileToolsConfig()
    """Limits of ``read_file``, ``write_file`` and ``list_dir``, and more names the tools refuse."""
    shell: ShellToolsConfig = ShellToolsConfig()
    """The ``run_command`` tool: its sandbox, the programs it may start, and their limits."""
    web: WebToolsConfig = WebToolsConfig()
    """The ``fetch_url`` tool: the hosts and networks it may reach, and its limits."""
    search: SearchToolsConfig = SearchToolsConfig()
    """Limits of the ``grep`` and ``glob`` tools."""

    @field_validator("workspace")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    def workspace_root(self, data_dir: Path) -> Path:
        """The root of the workspaces: the configured one, else ``data_dir/workspaces``."""
        return self.workspace if self.workspace is not None else Path(data_dir) / "workspaces"
