"""The agent's run (``agents.build`` assembles the agent from config).

One run: the intent step (``agents.intent.analyse``: the tools offered, a suggested mode), then
the workflow mode the run's setting ``mode`` picks (``agents.workflows``) drives this run's
shared parts: the model call, the tool calls, the history and its checkpoints (``ctx.step`` at
every step boundary when the run is a task's; a ``resuming`` run goes on from its history).
In ``react``: history (compacted first if it nears the context budget) + the user's message →
model (streamed: text goes out as coalesced partial outbounds; ``agents.streaming`` says when a
failed stream starts over unseen and what a failed turn's reply is) → tool calls (authorized one
by one, executed concurrently; each shown as a line, ``agents.tool_lines``) → results back to
the model → … until a final answer,
``max_turns``, the run's timeout, or cancellation (``/stop`` cancels the task iterating
``run``; ``CancelledError`` propagates untouched).

The timeout is a deadline checked around each await on the model or the tools, never around
a ``yield``: the consumer's own work while the generator is suspended must not be cancelled
by our clock. Time spent waiting for a user's approval moves the deadline back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import assert_never

from hub.agent import Check, Checkpointing, HistoryItem, ReportsErrors, RunContext
from hub.errors import ConfigError, PluginError, ProviderError
from hub.messages import Inbound, Outbound, new_id, new_incident_id, utcnow

from . import history, intent, workflows
from .approvals import Planned, ToolExecutor, grants_in
from .compaction import compact, estimate_tokens, tools_chars
from .config import AgentConfig
from .memory import AgentMemory
from .persona import SkillInfo, render_system_prompt, user_turn
from .providers.base import (
    ChatMessage,
    Finished,
    ModelRequest,
    ModelResponse,
    Provider,
    Restarted,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    ToolSpec,
    UserMessage,
    closing,
)
from .streaming import StreamedText, failure_reply, provider_failure_reason, timeout_reason
from .tool_lines import ToolLines
from .tools.base import Exposure, ToolContext, ToolRegistry, ToolServices
from .tools.config import ToolsConfig
from .tools.workspace import workspace_path
from .workflows._base import ResultSeen

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """The provider (and model override) one run talks to."""

    provider: Provider
    model: str | None = None
    context_window: int | None = None


ModelResolver = Callable[[str | None], ResolvedModel]
"""The session's ``model`` setting (``/model``) → what to call. May raise ``ConfigError``."""

ToolContextFactory = Callable[[RunContext], ToolContext]


def default_tool_context(
    root: Path,
    tools_config: ToolsConfig | None = None,
    services: ToolServices | None = None,
    protected: tuple[Path, ...] = (),
) -> ToolContextFactory:
    """Each run's ``ToolContext``: its workspace under ``root`` by ``[tools] workspace_scope``,
    the conversation's kept approvals, and what the model has read so far (its history)."""
    config = tools_config or ToolsConfig()

    def make(ctx: RunContext) -> ToolContext:
        settings = ctx.settings
        return ToolContext(
            conversation=ctx.conversation,
            sender=ctx.sender,
            workspace=workspace_path(root, config.workspace_scope, ctx.conversation, ctx.sender),
            timezone=settings.get("tz") or "UTC",
            config=config,
            services=services,
            protected=protected,
            exposure=Exposure(history.texts(ctx.history)),
            grants=grants_in(settings),
        )

    return make


class LLMAgent:
    """``hub.agent.Agent`` backed by a model provider and a tool registry.

    Args:
        resolve: picks the provider for a run from the session's ``model`` setting.
        tools: the tools offered to the model.
        config: the validated ``[agent]`` section.
        tool_context: builds each run's ``ToolContext`` (``agents.build`` passes the configured
            workspace root; the default, ``workspaces`` under the current directory, is for tests).
        skills: skills listed (name and description) in the system prompt.
        clock: the current time (tests pin it).
        closers: called by ``aclose`` (the providers' clients).
        checks: doctor's rows for the agent's parts (``checks``).
    """

    def __init__(
        self,
        resolve: ModelResolver,
        tools: ToolRegistry,
        config: AgentConfig,
        *,
        tool_context: ToolContextFactory | None = None,
        skills: Sequence[SkillInfo] = (),
        memory: AgentMemory | None = None,
        clock: Callable[[], datetime] = utcnow,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
        checks: Sequence[Check] = (),
    ) -> None:
        self.resolve = resolve
        self.tools = tools
        self.config = config
        self.tool_context = tool_context or default_tool_context(Path.cwd() / "workspaces")
        self.skills = skills  # read every turn: a catalogue that reloads (agents.skills) is a live view
        self.memory = memory
        """Automatic recall and compaction summaries; None: the hub runs without memory."""
        self.clock = clock
        self._closers = tuple(closers)
        self._checks = tuple(checks)
        self.use_tools(tools)

    def use_tools(self, tools: ToolRegistry) -> None:
        """Offer ``tools`` from the next run on (a tool extension was reloaded). A run reads
        ``tools`` and ``tool_specs`` once, as it starts, so one in flight keeps the set it began
        with; ``tools`` must be a new registry, never the old one changed."""
        self.tools = tools
        self.tool_specs = tuple(
            ToolSpec(name=t.name, description=t.description, parameters=t.parameters) for t in tools
        )
        self._categories = {cat: [t.name for t in ts] for cat, ts in tools.by_category().items()}
        self.tool_chars = tools_chars(self.tool_specs)

    def system_prompt(self, channel: str) -> str:
        return render_system_prompt(
            self.config.identity, channel=channel, tool_categories=self._categories, skills=self.skills
        )

    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        run = _Run(self, ctx)  # the run's clock starts now, not when the consumer comes back
        yield Outbound(conversation=ctx.conversation, text="", typing=True, final=False)
        async for out in run.steps():
            yield out

    def checks(self) -> Sequence[Check]:
        """Doctor's rows for this agent's parts: the workspace and the command sandbox."""
        return self._checks

    async def aclose(self) -> None:
        """Close the providers' clients (the hub calls this on shutdown)."""
        for close in self._closers:
            await close()


class _Run:
    """The state of one run; ``steps`` is the loop."""

    def __init__(self, agent: LLMAgent, ctx: RunContext) -> None:
        self.agent = agent
        self.config = agent.config
        self.ctx = ctx
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + self.config.timeout_seconds
        self._messages: list[ChatMessage] = []
        self.added: list[HistoryItem] = []
        """What this run remembered (a resumed run: from its checkpoint on): ``Checkpointing.step``'s ``done``."""
        self.tool_output: list[str] = []
        self.choice: ResolvedModel
        self.intent: intent.Intent
        self.toolset: intent.ToolSet
        self.system = ""
        self.executor: ToolExecutor
        self.stream_id: str | None = None
        self.turn = self._new_turn()
        """The open stream's text, so a failure can finish that message."""
        self.tool_lines: ToolLines | None = None

    def out(self, text: str, *, final: bool = True, stream: str | None = None) -> Outbound:
        inbound = self.ctx.inbound
        return Outbound(
            conversation=self.ctx.conversation,
            text=text,
            final=final,
            stream=stream,
            reply_to_platform_id=inbound.reply_to_platform_id,
            inbound_id=inbound.id,
        )

    async def steps(self) -> AsyncIterator[Outbound]:
        try:
            choice = self.agent.resolve(self.ctx.settings.get("model"))
        except (ConfigError, PluginError) as exc:
            log.warning("conversation %s: model choice unusable: %s", self.ctx.conversation.key, exc)
            yield self.out(
                f"The model chosen for this conversation cannot be used ({exc}). Switch back with /model default."
            )
            return
        try:
            async for out in self._loop(choice):
                yield out
        except TimeoutError:
            if self.loop.time() < self.deadline:
                raise  # not our deadline: a bug below, let the session manager report it
            log.info("conversation %s: run timed out", self.ctx.conversation.key)
            yield self._finish_stream(timeout_reason(self.config.timeout_seconds))
        except ProviderError as exc:
            incident = new_incident_id()
            log.error(
                "conversation %s: provider failed (incident %s): %s: %s",
                self.ctx.conversation.key,
                incident,
                type(exc).__name__,
                exc,
            )
            if isinstance(self.ctx, ReportsErrors):
                self.ctx.record_error(choice.provider.name, type(exc).__name__)
            yield self._finish_stream(provider_failure_reason(exc, incident))

    def _new_turn(self) -> StreamedText:
        return StreamedText(self.config.stream_min_chars, self.config.stream_interval_seconds)

    def _finish_stream(self, reason: str) -> Outbound:
        """The failed run's final reply: it finishes the open stream's message only when part
        of it was shown (text received but not shown is dropped, never sent as a fragment)."""
        if self.turn.shown:
            return self.out(failure_reply(self.turn.text, reason), stream=self.stream_id)
        return self.out(failure_reply("", reason))

    async def _loop(self, choice: ResolvedModel) -> AsyncIterator[Outbound]:
        ctx, config, agent = self.ctx, self.config, self.agent
        self.choice = choice
        self.intent, self.toolset = await intent.analyse(
            ctx, agent.tools, agent.tool_specs, *self._intent_model(choice), intent=config.intent
        )
        system = agent.system_prompt(ctx.conversation.channel)
        self.system = system
        resuming = isinstance(ctx, Checkpointing) and ctx.resuming
        if resuming:  # the checkpoint ends the history: go on from there, no new request
            self._messages = history.decode(ctx.history)
            self.added = list(ctx.history)
        else:
            user = UserMessage(text=await self._user_text_recalled())
            await self._compact_if_needed(choice, system, user)
            self._messages = history.decode(ctx.history)
            await self.add(user, label="request", step=False)
        self.tool_lines = ToolLines.for_run(ctx, config)
        self.executor = ToolExecutor(
            self.toolset.registry,
            ctx=ctx,
            tool_context=agent.tool_context(ctx),
            approve_medium=config.approve_medium,
            approval_timeout=config.approval_timeout_seconds,
            max_result_chars=config.max_tool_result_chars,
            report=self.tool_lines.report if self.tool_lines is not None else None,
        )
        mode = workflows.choose_mode(ctx.settings.get(workflows.MODE_SETTING), self.intent.mode, resuming=resuming)
        async for out in workflows.run_mode(mode, self):
            yield out

    def _intent_model(self, choice: ResolvedModel) -> tuple[Provider, str | None]:
        """Who answers the intent call: ``[agent] intent_model`` when it resolves, else the run's model."""
        if self.config.intent_model:
            try:
                other = self.agent.resolve(self.config.intent_model)
                return other.provider, other.model
            except (ConfigError, PluginError) as exc:
                log.warning("[agent] intent_model unusable (%s); the run's model answers", exc)
        return choice.provider, choice.model

    # ------------------------------------------------------------------ what a mode uses
    @property
    def messages(self) -> list[ChatMessage]:
        return self._messages

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return self.toolset.specs

    def typing(self) -> Outbound:
        return Outbound(conversation=self.ctx.conversation, text="", typing=True, final=False)

    async def call_model(self) -> AsyncIterator[Outbound | ModelResponse]:
        choice = self.choice
        request = ModelRequest(
            system=self.system,
            messages=tuple(self._messages),
            tools=self.toolset.specs,  # read each call: the model may have widened the set
            model=choice.model,
            max_tokens=self.config.max_output_tokens,
        )
        async for item in self._call_model(choice.provider, request):
            if isinstance(item, ModelResponse):
                self._record(item)
            yield item

    async def complete(self, system: str, messages: Sequence[ChatMessage]) -> str:
        choice = self.choice
        request = ModelRequest(
            system=system, messages=tuple(messages), model=choice.model, max_tokens=self.config.max_output_tokens
        )
        self._check_deadline()
        async with asyncio.timeout_at(self.deadline):
            response = await choice.provider.complete(request)
        self._record(response)
        return response.text

    def _record(self, response: ModelResponse) -> None:
        choice = self.choice
        self.ctx.record_usage(
            choice.provider.name, response.model or choice.model or choice.provider.model, response.usage
        )

    async def add(self, message: ChatMessage, *, label: str, step: bool = True) -> None:
        self._messages.append(message)
        item = history.encode(message)
        self.ctx.remember(item)
        self.added.append(item)
        if isinstance(message, ToolResultsMessage):
            self.tool_output.extend(r.content for r in message.results if not r.is_error)
        if step:
            await self.checkpoint(label)

    async def checkpoint(self, label: str) -> None:
        if isinstance(self.ctx, Checkpointing):
            await self.ctx.step(tuple(self.added), label=label)  # PauseRequested propagates

    def text_shown(self) -> None:
        if self.turn.shown and self.tool_lines is not None:
            self.tool_lines.after_text()
        self.stream_id, self.turn = None, self._new_turn()

    async def answer(self, text: str) -> Outbound:
        choice = self.choice
        formatted = await intent.format_answer(
            self.ctx, self.intent, text, *self._intent_model(choice), tool_output=tuple(self.tool_output)
        )
        return self.out(formatted, stream=self.stream_id)

    def _check_deadline(self) -> None:
        """An await that completes without suspending never trips ``timeout_at``: check first."""
        if self.loop.time() >= self.deadline:
            raise TimeoutError

    async def _user_text_recalled(self) -> str:
        """The user turn, with automatic recall's note after it: memories go into the user
        message, never the system prompt, which stays byte-stable for prompt caches."""
        text = self._user_text()
        memory = self.agent.memory
        if memory is None:
            return text
        note = await memory.note(self.ctx)
        return f"{text}\n\n{note.text}" if note.text else text

    def _user_text(self) -> str:
        inbound: Inbound = self.ctx.inbound
        text = inbound.text
        if inbound.kind == "command" and inbound.command:
            text = f"/{inbound.command} {text}".rstrip()
        elif inbound.kind == "button" and inbound.button:
            text = f"[the user tapped the button {inbound.button!r}]"
        elif inbound.kind == "job" and inbound.job is not None:
            text = f"[a scheduled task fired: {inbound.job.description or inbound.job.job_id}]\n{text}"
        return user_turn(text, now=self.agent.clock(), tz=self.ctx.settings.get("tz"), attachments=inbound.attachments)

    async def _call_model(self, provider: Provider, request: ModelRequest) -> AsyncIterator[Outbound | ModelResponse]:
        """Yields partial outbounds, then the response (last)."""
        self._check_deadline()
        self.stream_id, self.turn = new_id(), self._new_turn()
        if not self.config.stream:
            async with asyncio.timeout_at(self.deadline):
                complete = await provider.complete(request)
            yield complete  # outside the timeout block: never yield under our clock
            return
        response: ModelResponse | None = None
        turn = self.turn
        async with closing(provider.stream(request)) as events:
            while True:
                async with asyncio.timeout_at(self.deadline):
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        break
                if isinstance(event, TextDelta):
                    if event.text and turn.add(event.text, self.loop.time()):
                        yield self.out(turn.text, final=False, stream=self.stream_id)
                elif isinstance(event, Finished):
                    response = event.response
                elif isinstance(event, Restarted):
                    turn.restart(event)  # raises the provider's error once text was shown
                else:
                    assert_never(event)
        if response is None:
            raise ProviderError(f"{provider.name}: the stream ended without a final response")
        yield response

    async def run_tools(
        self, calls: Sequence[ToolCall], *, limit: int | None = None, seen: ResultSeen | None = None
    ) -> ToolResultsMessage:
        started = self.loop.time()
        planned = await self.executor.authorize(calls)
        self.deadline += self.loop.time() - started  # waiting for a human is not the run's time
        self._check_deadline()
        gate = asyncio.Semaphore(limit or len(planned) or 1)

        async def one(index: int, call: Planned) -> ToolResult:
            async with gate:
                (result,) = await self.executor.execute([call])
            if seen is not None:
                await seen(index, result)
            return result

        async with asyncio.timeout_at(self.deadline):
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(one(i, p), name=f"call:{i}") for i, p in enumerate(planned)]
        return ToolResultsMessage(results=tuple(t.result() for t in tasks))

    async def _compact_if_needed(self, choice: ResolvedModel, system: str, user: UserMessage) -> None:
        cfg = self.config.compaction
        if not cfg.enabled:
            return
        items = list(self.ctx.history)
        window = choice.context_window or cfg.context_window
        budget = int(window * cfg.budget_fraction)
        estimate = estimate_tokens(system, [*history.decode(items), user], tool_chars=self.agent.tool_chars)
        if estimate <= budget:
            return
        log.info(
            "conversation %s: ~%d prompt tokens over the budget of %d; compacting",
            self.ctx.conversation.key,
            estimate,
            budget,
        )
        try:
            async with asyncio.timeout_at(self.deadline):
                result = await compact(
                    items,
                    provider=choice.provider,
                    model=choice.model,
                    keep_recent=cfg.keep_recent,
                    max_tokens=cfg.summary_max_tokens,
                )
        except ProviderError as exc:  # answering matters more than compacting: go on uncompacted
            log.warning("compaction failed (%s); continuing with the full history", type(exc).__name__)
            return
        if result is None:
            log.warning("history over budget but no user-message boundary to cut at")
            return
        self.ctx.record_usage(choice.provider.name, result.model, result.usage)
        self.ctx.replace_history(result.history)
        if self.agent.memory is not None:  # what the summary replaced is not lost
            await self.agent.memory.keep_summary(self.ctx, result.summary)
