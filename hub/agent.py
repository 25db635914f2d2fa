"""The small interface between the session manager and whatever answers messages.

The session manager gives an agent one ``RunContext`` per run (the inbound, the session's
history and settings, and a way to ask the user something mid-run) and consumes the
outbounds it yields: partial ones go straight out, final ones are recorded in the outbox.
The last final outbound of a run is recorded in the same transaction that marks the inbound
answered and appends the run's new history, so a crash never yields a second answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .commands import CommandRegistry
from .messages import ConversationRef, Inbound, Outbound, Sender, utcnow

if TYPE_CHECKING:  # hub.scheduler imports the store, which imports this module
    from .extensions import ExtensionSource
    from .memory.access import MemoryAccess
    from .scheduler import Job


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryItem:
    """One entry of a session's history, as the agent encoded it (JSON-serialisable ``data``)."""

    kind: str
    """``user``, ``assistant``, ``tool_result``, ``summary`` … — the agent's own vocabulary."""
    data: dict[str, Any]
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class RunContext(Protocol):
    """What one agent run may see and do."""

    @property
    def inbound(self) -> Inbound: ...
    @property
    def conversation(self) -> ConversationRef: ...
    @property
    def sender(self) -> Sender: ...
    @property
    def history(self) -> Sequence[HistoryItem]:
        """The session's history before this run (oldest first)."""
        ...

    @property
    def settings(self) -> dict[str, str]:
        """Per-conversation settings (``model``, ``tz`` …); read-only view."""
        ...

    def remember(self, *items: HistoryItem) -> None:
        """Append to history; persisted atomically with the run's final answer."""

    def replace_history(self, items: Sequence[HistoryItem]) -> None:
        """Replace the whole history (compaction); persisted with the final answer."""

    def record_usage(self, provider: str, model: str, usage: Usage) -> None:
        """Add token usage to this run's and this conversation's totals."""

    async def send(self, outbound: Outbound) -> None:
        """Send now, durably, without ending the run (e.g. a progress note)."""

    async def set_setting(self, name: str, value: str | None) -> None:
        """Store a per-conversation setting now (None removes it), e.g. an approval to keep."""

    async def ask(self, outbound: Outbound, *, user_id: str, timeout: float) -> Inbound | None:
        """Send ``outbound`` (usually with buttons) and wait for ``user_id``'s answer.

        The answer is a ``button`` inbound whose ``button`` is one of the outbound's button
        ids, or a ``message`` inbound with text (yes/no where buttons don't exist). Answers
        bypass the conversation queue. Returns ``None`` on timeout.
        """
        ...


class PauseRequested(Exception):
    """Raised by ``Checkpointing.step`` at a step boundary when the run's task was asked to
    pause: the agent lets it propagate (its work so far is in the checkpoint), and the run ends
    without an answer. Not an error: nothing is logged or told to the user as a failure."""


@runtime_checkable
class Checkpointing(Protocol):
    """A ``RunContext`` whose run is a task's (``hub/tasks``): it keeps a checkpoint and can
    pause the run between steps.

    The agent calls ``step`` at every step boundary — after each model call and after each
    tool call's result, before the next begins — with every history item the run has added so
    far (cumulative, oldest first), so a resumed run (whose ``RunContext.history`` ends with
    those items) continues without repeating a tool call already done. ``label`` says what the
    step was, for progress (``"model"``, ``"tool read_file"``, ``"plan step 2/5"``).

    Raises:
        PauseRequested: pause was asked for; stop here (a running tool is never interrupted).
    """

    @property
    def resuming(self) -> bool:
        """The run continues a checkpoint: ``history`` already ends with the task's request and
        the steps done; the agent adds no new user message and goes on from there."""
        ...

    async def step(self, done: Sequence[HistoryItem], *, label: str) -> None: ...


@runtime_checkable
class ReportsErrors(Protocol):
    """A ``RunContext`` that counts why runs failed (the hub's: ``GET /metrics``)."""

    def record_error(self, provider: str, error: str) -> None:
        """The run's model ``provider`` failed it; ``error`` names the kind (an exception class)."""


class Agent(Protocol):
    """Answers one inbound at a time for a session."""

    def run(self, ctx: RunContext) -> AsyncIterator[Outbound]: ...


@dataclass(frozen=True, slots=True)
class Check:
    """One row of ``autohands doctor``."""

    what: str
    """What was checked, e.g. ``tools shell``."""
    status: str
    """``ok``, ``off``, ``WARNING``, ``DISABLED`` or ``ERROR`` (only ``ERROR`` fails doctor)."""
    detail: str
    fix: str = ""
    """What to do about a status other than ``ok``: one sentence a person can act on."""


@runtime_checkable
class SelfChecking(Protocol):
    """An agent that can report on its own parts (the command sandbox, the workspace)."""

    def checks(self) -> Sequence[Check]: ...


@runtime_checkable
class Closable(Protocol):
    """An agent that holds what must be released when it is done (its model SDK clients): the
    hub awaits ``aclose`` as it stops, ``autohands config check`` after building it."""

    async def aclose(self) -> None: ...


class JobScheduler(Protocol):
    """The scheduler as agents use it (the ``schedule`` tool); ``hub.scheduler.Scheduler`` is one.

    ``create_from_phrases`` and ``cancel`` raise ``ScheduleError`` (``hub.scheduler``) with a
    sentence for the user.
    """

    async def create_from_phrases(
        self,
        *,
        conversation: ConversationRef,
        creator: Sender,
        text: str,
        when: str | None = None,
        every: str | None = None,
        action: Literal["send", "agent"] = "send",
        granted_tools: tuple[str, ...] = (),
    ) -> Job:
        """A job in ``conversation`` from ``when`` (a time phrase or ISO time) or ``every``."""
        ...

    async def list_jobs(self, conversation: ConversationRef) -> Sequence[Job]:
        """The conversation's active jobs."""
        ...

    async def cancel(self, job_id: str, by: Sender, *, channel: str | None = None) -> Job:
        """Cancel a job; only its creator (on ``channel``) or an admin may."""
        ...


@dataclass(slots=True, kw_only=True)
class AgentServices:
    """What the hub hands an agent factory (entry point group ``autohands.agents``).

    Sections arrive raw; the agent validates them with ``hub.config.validate_section`` so
    errors name the key (``agent.max_turns: …``).
    """

    agent_config: Mapping[str, object]
    """The ``[agent]`` section."""
    providers_config: Mapping[str, Mapping[str, object]]
    """The ``[providers]`` section: name → provider table."""
    tools_config: Mapping[str, object]
    """The ``[tools]`` section."""
    commands: CommandRegistry
    """Register the agent's commands (``/model``, ``/persona``) here."""
    data_dir: Path
    """The hub's data directory (the default workspace root lives under it)."""
    scheduler: JobScheduler | None = None
    """The hub's scheduler (the ``schedule`` tool), or None when the hub runs without one."""
    protected_paths: tuple[Path, ...] = ()
    """The hub's own files and folders (data directory, config file, database, home): tools
    must never see them, and no workspace may contain them."""
    skills_config: Mapping[str, object] = field(default_factory=dict)
    """The ``[skills]`` section."""
    mcp_config: Mapping[str, object] = field(default_factory=dict)
    """The ``[mcp]`` section (``[mcp.servers.NAME]`` tables)."""
    extensions: ExtensionSource | None = None
    """The hub's extensions: tool extensions to add, and a call when a reload changes them."""
    memory: MemoryAccess | None = None
    """The hub's memory (the ``remember``/``recall``/``forget`` tools, automatic recall,
    compaction summaries); None when ``[memory] enabled = false``."""


class AgentFactory(Protocol):
    """Entry point target in group ``autohands.agents``: builds the agent from the hub's parts."""

    def __call__(self, services: AgentServices) -> Agent: ...
