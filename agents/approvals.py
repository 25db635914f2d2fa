"""Running the model's tool calls: parse, look up, approve, execute — errors become results.

A turn's calls go through two phases. ``authorize`` parses each call's arguments, finds the
tool and, where the risk level requires it, asks the user (one question at a time, so a "yes"
typed in a terminal can only mean one call). ``execute`` then runs the approved calls
concurrently. The runtime keeps the two apart so that time spent waiting for a human does not
count against the run's timeout.

Whether a call needs a person is decided per call: the tool's ``assess`` reads the arguments
(the exact command, a host not asked about before, a job that repeats), else its risk level
does. The question shows every argument whole — never cut — and what exactly will run. An
approval the tool marks ``remember_as`` (``egress:example.com``) is kept as a setting of the
conversation once given. A run nobody watches (a scheduled job) never asks and never waits: a
call that needs a person is denied at once, unless the job's creator granted that tool when the
job was created (and the tool allows such a grant).

Whatever goes wrong — malformed JSON, an unknown tool, ``ToolFailed``, ``ToolDenied``, a tool's
own timeout or an unexpected exception — becomes an error ``ToolResult`` for the model; only
cancellation propagates.

Pending approvals live only in the awaiting run (``RunContext.ask``). If the hub restarts
while one is pending, the run is gone with it: nothing was approved, so the call never runs
(fail closed); the inbound is re-run after the restart and asks again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.agent import RunContext
from hub.answers import ANSWER_HINT, read_answer
from hub.errors import ToolDenied, ToolFailed
from hub.messages import Button, Inbound, Outbound, new_id
from hub.questions import is_operator
from hub.tool_calls import CallStatus

from .providers.base import ToolCall, ToolResult
from .tools.base import READS_DATA, Approval, Tool, ToolContext, ToolRegistry, needs_approval

log = logging.getLogger(__name__)

GRANT_SETTING = "grant:"
"""Prefix of the conversation settings that keep approvals (``grant:egress:example.com``)."""
_HINT = ANSWER_HINT


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    reason: str
    """Why, in words the model (and the user, on the edited question) can read."""


def decide(answer: Inbound | None, *, approval_id: str, user_id: str, timeout: float) -> Decision:
    """Interpret the answer to an approval question; anything unclear is a denial."""
    if answer is None:
        return Decision(False, f"no answer from the user within {timeout:g} s")
    operator = is_operator(answer.sender)  # an admin on the dashboard may answer any run's question
    if answer.sender.id != user_id and not operator:
        return Decision(False, "the answer came from someone other than the user who asked")
    if answer.kind == "button":
        if answer.button == f"approve:{approval_id}":
            return Decision(True, "approved by the operator" if operator else "approved by the user")
        return Decision(False, "the operator denied the call" if operator else "the user denied the call")
    said = read_answer(answer.text)
    if said is True:
        return Decision(True, "approved by the user")
    if said is False:
        return Decision(False, "the user denied the call")
    return Decision(False, "the user did not approve (the reply was not yes or no)")


def grants_in(settings: Mapping[str, str]) -> set[str]:
    """The approvals a conversation keeps, from its settings."""
    return {name.removeprefix(GRANT_SETTING) for name in settings if name.startswith(GRANT_SETTING)}


def visible(text: str) -> str:
    """``text`` with every character a reader cannot see (controls, bidirectional overrides,
    zero-width and other format characters) written as an escape, so nothing hides in it."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch in "\n\t" or unicodedata.category(ch)[0] not in "CZ" or ch == " " else f"\\u{ord(ch):04x}"
        for ch in text
    )


def _argument_lines(name: str, value: Any) -> Iterable[str]:
    if isinstance(value, str) and "\n" in value:
        lines = value.split("\n")
        yield f"{name} ({len(value)} characters, {len(lines)} lines):"
        yield from (f"  | {visible(line)}" for line in lines)
    else:
        yield f"{name}: {visible(json.dumps(value, ensure_ascii=False))}"


def question_text(tool: Tool, args: Mapping[str, Any], approval: Approval) -> str:
    """The whole approval question: why, every argument in full, and what exactly will run."""
    reason = approval.reason.rstrip(".")
    lines = [f"Approve running {tool.name}? {reason[:1].upper()}{reason[1:]}."]
    for name, value in args.items():
        lines.extend(_argument_lines(name, value))
    if approval.detail:
        lines.append(visible(approval.detail))
    lines.append(_HINT)
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Authorized:
    """A call cleared to run."""

    call: ToolCall
    tool: Tool
    args: dict[str, Any]


Planned = Authorized | ToolResult
"""Either cleared to run, or already answered with an error result."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """How one call ended, for people (the chat's tool lines); the model gets the ``ToolResult``."""

    call: ToolCall
    args: Mapping[str, Any] | None
    """The parsed arguments; None when they were not a JSON object."""
    status: CallStatus
    reason: str = ""
    """Why it was refused or failed, in words a user can read."""


ReportOutcome = Callable[[ToolOutcome], Awaitable[None]]
"""Called once per call as soon as its outcome is known (concurrent calls in completion order)."""


class ToolExecutor:
    """Runs one run's tool calls (see the module docstring).

    Args:
        tools: the registry the model's tool definitions came from.
        ctx: the run, for asking the user and addressing the question.
        tool_context: handed to every tool.
        approve_medium: ask before medium-risk tools too.
        approval_timeout: seconds to wait for an answer before denying.
        max_result_chars: longer results are cut, with a note.
        report: told each call's outcome (``agents.tool_lines``); it must not raise.
    """

    def __init__(
        self,
        tools: ToolRegistry,
        *,
        ctx: RunContext,
        tool_context: ToolContext,
        approve_medium: bool = False,
        approval_timeout: float = 300.0,
        max_result_chars: int = 20_000,
        report: ReportOutcome | None = None,
    ) -> None:
        self._tools = tools
        self._report = report
        self._ctx = ctx
        self._tool_context = tool_context
        self._approve_medium = approve_medium
        self._approval_timeout = approval_timeout
        self._max_chars = max_result_chars

    async def authorize(self, calls: Sequence[ToolCall]) -> list[Planned]:
        """Parse, look up and approve each call, in order (questions are asked one at a time)."""
        return [await self._authorize_one(call) for call in calls]

    async def execute(self, planned: Sequence[Planned]) -> list[ToolResult]:
        """Run the authorized calls concurrently; results come back in call order."""
        tasks: dict[int, asyncio.Task[ToolResult]] = {}
        async with asyncio.TaskGroup() as tg:
            for i, p in enumerate(planned):
                if isinstance(p, Authorized):
                    tasks[i] = tg.create_task(self._invoke(p), name=f"tool:{p.tool.name}:{p.call.id}")
        return [p if isinstance(p, ToolResult) else tasks[i].result() for i, p in enumerate(planned)]

    async def run(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        return await self.execute(await self.authorize(calls))

    async def _authorize_one(self, call: ToolCall) -> Planned:
        tool = self._tools.get(call.name)
        if tool is None:
            names = ", ".join(sorted(t.name for t in self._tools)) or "none"
            await self._tell(call, None, "failed", "no such tool")
            return _error(call, f"unknown tool {call.name!r}; available tools: {names}")
        try:
            args = parse_arguments(call.arguments)
        except ToolFailed as exc:
            await self._tell(call, None, "failed", "its arguments were not valid")
            return _error(call, str(exc))
        try:
            approval = self._approval_for(tool, args)
            if approval is not None:
                await self._clear(tool, args, approval)
        except ToolDenied as exc:
            log.info("tool call %s denied: %s", tool.name, exc)
            await self._tell(call, args, "refused", str(exc))
            return _error(call, f"denied: {exc}; the call was not run")
        except ToolFailed as exc:
            await self._tell(call, args, "failed", str(exc))
            return _error(call, f"{exc}; the call was not run")
        return Authorized(call, tool, args)

    async def _tell(self, call: ToolCall, args: Mapping[str, Any] | None, status: CallStatus, reason: str = "") -> None:
        if self._report is not None:
            await self._report(ToolOutcome(call, args, status, reason))

    def _approval_for(self, tool: Tool, args: dict[str, Any]) -> Approval | None:
        """What this call needs before it runs: the tool's own rule first, then its risk."""
        assessed = tool.assess(args, self._tool_context) if tool.assess is not None else None
        if assessed is not None:
            return assessed
        if needs_approval(tool.risk, approve_medium=self._approve_medium):
            return Approval(reason=f"it is a {tool.risk.value}-risk tool")
        return None

    async def _clear(self, tool: Tool, args: dict[str, Any], approval: Approval) -> None:
        """Return once the call may run: kept approval, a job's grant, or the user's yes."""
        grants = self._tool_context.grants
        if approval.remember_as is not None and approval.remember_as in grants:
            return
        inbound = self._ctx.inbound
        if not inbound.attended:
            granted = inbound.job.granted_tools if inbound.job is not None else ()
            if approval.grantable and tool.name in granted:
                log.info("tool call %s runs unattended on its job's grant", tool.name)
                return
            raise ToolDenied(
                f"{approval.reason.rstrip('.')}, and nobody is watching this run (a scheduled job) to approve "
                f"it; a job may use {tool.name} only if it was granted when the job was created"
            )
        await self._approve(tool, args, approval)
        if approval.remember_as is not None:
            grants.add(approval.remember_as)
            try:
                await self._ctx.set_setting(GRANT_SETTING + approval.remember_as, "yes")
            except Exception:  # kept for this run anyway; the next run asks again
                log.warning("could not keep the approval %s", approval.remember_as, exc_info=True)

    async def _approve(self, tool: Tool, args: dict[str, Any], approval: Approval) -> None:
        ctx = self._ctx
        approval_id = new_id()
        user_id = ctx.inbound.sender.id
        question = Outbound(
            conversation=ctx.conversation,
            text=question_text(tool, args, approval),
            buttons=(
                Button(id=f"approve:{approval_id}", label="Approve", style="primary"),
                Button(id=f"deny:{approval_id}", label="Deny", style="danger"),
            ),
            reply_to_platform_id=ctx.inbound.reply_to_platform_id,
            inbound_id=ctx.inbound.id,
            format="plain",
        )
        answer = await ctx.ask(question, user_id=user_id, timeout=self._approval_timeout)
        decision = decide(answer, approval_id=approval_id, user_id=user_id, timeout=self._approval_timeout)
        await self._settle(question, decision)
        if not decision.approved:
            raise ToolDenied(decision.reason)

    async def _settle(self, question: Outbound, decision: Decision) -> None:
        """Replace the question by its outcome, so its buttons cannot be tapped again."""
        mark = "Approved" if decision.approved else "Not run"
        asked = question.text.rsplit("\n", 1)[0]  # without the "reply yes or no" hint
        settled = Outbound(
            conversation=question.conversation,
            text=f"{asked}\n{mark}: {decision.reason}.",
            edit_of=question.id,
            format="plain",
        )
        try:
            await self._ctx.send(settled)
        except Exception:  # cosmetic: the decision stands even if the edit cannot be shown
            log.warning("could not update the approval question %s", question.id, exc_info=True)

    async def _invoke(self, p: Authorized) -> ToolResult:
        result, status = await self._invoke_tool(p)
        reason = "" if status == "ok" else result.content.removeprefix("denied: ")
        await self._tell(p.call, p.args, status, reason)
        return result

    async def _invoke_tool(self, p: Authorized) -> tuple[ToolResult, CallStatus]:
        name = p.tool.name
        try:
            async with asyncio.timeout(p.tool.timeout_seconds):
                content = await p.tool.invoke(p.args, self._tool_context)
        except ToolFailed as exc:
            return _error(p.call, str(exc) or "the tool failed"), "failed"
        except ToolDenied as exc:
            return _error(p.call, f"denied: {exc}"), "refused"
        except TimeoutError:
            return _error(p.call, f"the tool timed out after {p.tool.timeout_seconds:g} s"), "failed"
        except Exception as exc:  # a tool bug must not end the run; the model hears about it
            log.error("tool %s raised %s", name, type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
            return _error(p.call, f"the tool failed unexpectedly ({type(exc).__name__}: {exc})"), "failed"
        text = self._cap(str(content))
        if READS_DATA.intersection(p.tool.permissions):
            self._tool_context.exposure.add(text)
        return ToolResult(call_id=p.call.id, name=name, content=text), "ok"

    def _cap(self, content: str) -> str:
        if len(content) <= self._max_chars:
            return content
        return content[: self._max_chars] + f"\n…[truncated: the result had {len(content)} characters]"


def parse_arguments(raw: str) -> dict[str, Any]:
    """The call's arguments as a dict; ``ToolFailed`` with a fix-it message otherwise."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ToolFailed(
            f"the arguments are not valid JSON ({exc.msg} at position {exc.pos}); "
            "call the tool again with a JSON object matching its schema"
        ) from None
    if not isinstance(value, dict):
        raise ToolFailed(f"the arguments must be a JSON object, not {type(value).__name__}")
    return value


def _error(call: ToolCall, message: str) -> ToolResult:
    return ToolResult(call_id=call.id, name=call.name, content=message, is_error=True)
