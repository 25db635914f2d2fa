"""The ``[agent]`` section: which provider answers, the loop's limits, approvals, persona.

Validated once at start-up with ``hub.config.validate_section(AgentConfig, raw, "agent")`` so
a bad value names its key (``agent.max_turns: Input should be greater than 0``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.config import StrictBool

from .mcp.config import McpConfig
from .providers.config import ProviderConfig
from .tools.config import ToolsConfig

ShowToolCalls = Literal["all", "refused", "off"]
"""Which tool calls the conversation shows a line for (``[agent] show_tool_calls``)."""


class IdentityConfig(BaseModel):
    """``[agent.identity]``: who the agent is; rendered into the system prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "AutoHands"
    """What the agent calls itself: the system prompt opens with "You are <name>, <role>."
    (``/persona`` shows the whole identity)."""
    role: str = "a helpful assistant that can use tools to get things done"
    """What the agent is for, completing that sentence (e.g. "the support desk of Example Ltd")."""
    personality: str = ""
    """Character traits (e.g. "patient, curious"); empty states none."""
    tone: str = ""
    """How the agent writes (e.g. "friendly and brief"); empty states none."""
    knowledge_scope: str = ""
    """What the agent knows about or should stick to (e.g. "our product docs")."""
    catchphrase: str = ""
    """A phrase the agent is told to use sparingly; empty: none."""
    taboos: list[str] = Field(default_factory=list)
    """Things the agent must never do or talk about."""
    lang: str = ""
    """Preferred reply language (e.g. ``en``, ``de``); empty means: the user's language."""


class CompactionConfig(BaseModel):
    """``[agent.compaction]``: when and how older turns are summarised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = True
    """Summarise older turns once the prompt nears the context window (``budget_fraction``).
    ``false`` always sends the whole history, which a long conversation can push past the window."""
    budget_fraction: float = Field(default=0.75, gt=0.0, le=1.0)
    """Compact once the estimated prompt exceeds this share of the model's context window."""
    keep_recent: int = Field(default=8, ge=1)
    """At least this many of the newest history messages stay verbatim."""
    context_window: int = Field(default=128_000, ge=1024)
    """Used when the provider's config does not state its model's ``context_window``."""
    summary_max_tokens: int = Field(default=1024, ge=64)
    """Most tokens the model may write for that summary; raise it to keep more detail of long
    conversations."""


class AgentConfig(BaseModel):
    """``[agent]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str | None = None
    """Name of a ``[providers.<name>]`` table; None: no provider configured."""
    fallback: list[str] = Field(default_factory=list)
    """Providers tried in order when the primary fails after its retries."""
    max_turns: int = Field(default=12, ge=1)
    """Model calls per run before the run stops with a note."""
    timeout_seconds: float = Field(default=300.0, gt=0)
    """Wall time of one run, not counting time spent waiting for the user's approval."""
    stream: StrictBool = True
    """Show the answer while the model writes it (partial messages, edited into one where the
    platform edits). ``false`` waits for the whole answer, e.g. for an endpoint that cannot stream."""
    approval_timeout_seconds: float = Field(default=300.0, gt=0)
    """Seconds to wait for the user's yes or no to a tool call before it is denied (the model is
    told why). Raise it when people answer late; the wait is not counted in ``timeout_seconds``."""
    approve_medium: StrictBool = False
    """Ask before medium-risk tools too (high-risk tools always ask)."""
    max_output_tokens: int = Field(default=4096, ge=16)
    """Most tokens the model may write per call (each step of a run), sent as ``max_tokens``;
    the provider's own ``max_output_tokens`` caps it. Raise both for long answers or files."""
    max_tool_result_chars: int = Field(default=20_000, ge=100)
    """Longer tool results are cut (with a note to the model) to protect the context window."""
    stream_min_chars: int = Field(default=120, ge=1)
    """A partial outbound (the first one too) is emitted once this many new characters arrived …"""
    stream_interval_seconds: float = Field(default=1.0, ge=0)
    """… or this long after the previous partial (or the first text), whichever comes first; an
    answer complete before either arrives as one message, with no partials."""
    show_tool_calls: ShowToolCalls = "all"
    """One line per tool call in the conversation while the agent works (``🔧 read_file
    README.md ✓``; ``✗ refused: …`` for a call that was not run): ``all`` of them, only the
    ``refused`` ones, or ``off``. The lines are progress, edited into one message per answer
    where the platform edits messages (shown as they come in ``autohands chat``; not shown on a
    platform without edits); they stay out of the answer and of the model's history."""
    intent: Literal["off", "auto"] = "off"
    """``auto``: a short first model call picks the tool categories a request needs (and a workflow
    mode, and the form the answer must take), so each model call carries only those tools'
    definitions; the model can still ask for every tool, at the cost of one more step. ``off``
    offers every tool and makes no extra call (``bench/intent.py`` measures both)."""
    intent_model: str | None = None
    """The model that makes that first call (and reformats an answer into a form the user asked
    for): ``provider/model`` or a model name on the default provider, as ``/model`` takes;
    unset: the conversation's own model. A small, fast model suits it."""
    compaction: CompactionConfig = Field(default_factory=CompactionConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)


def config_models() -> dict[str, type[BaseModel]]:
    """Entry point ``autohands.config:agents``: the model of each section this package validates,
    by its key (``<name>`` stands for any table name), so the hub can document them
    (``autohands config reference``) without importing ``agents``."""
    return {"agent": AgentConfig, "providers.<name>": ProviderConfig, "tools": ToolsConfig, "mcp": McpConfig}
