"""Running the model's tool calls: parse, look up, approve, execute — errors become results.

A turn's calls go through two phases. ``authorize`` parses each call's arguments, finds the
tool and, where the risk level requires it, asks the user (one question at a time, so a "yes"
typed in a terminal can only mean one call). ``execute`` then runs the approved calls
concurrently. The runtime keeps the two apart so that time spent waiting for a human does not
count against the run's timeout.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub.agent import RunContext
from hub.errors import ToolDenied, ToolFailed
from hub.messages import Button, Inbound, Outbound, new_id

from .providers.base import ToolCall, ToolResult
from .tools.base import Risk, Tool, ToolContext, ToolRegistry

log = logging.getLogger(__name__)

YES = frozenset({"yes", "y", "approve", "approved", "ok", "okay", "allow", "sure"})
NO = frozenset({"no", "n", "deny", "denied", "reject", "nope", "cancel", "stop"})
_ARGS_SHOWN = 300


def needs_approval(risk: Risk, *, approve_medium: bool) -> bool:
    return risk is Risk.HIGH or (risk is Risk.MEDIUM and approve_medium)


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    reason: str
    """Why, in words the model (and the user, on the edited question) can read."""


def decide(answer: Inbound | None, *, approval_id: str, user_id: str, timeout: float) -> Decision:
    """Interpret the answer to an approval question; anything unclear is a denial."""
    if answer is None:
        return Decision(False, f"no answer from the user within {timeout:g} s")
    if answer.sender.id != user_id:
        return Decision(False, "the answer came from someone other than the user who asked")
    if answer.kind == "button":
        if answer.button == f"approve:{approval_id}":
            return Decision(True, "approved by the user")
        return Decision(False, "the user denied the call")
    word = answer.text.strip().strip(".!").lower()
    if word in YES:
        return Decision(True, "approved by the user")
    if word in NO:
        return Decision(False, "the user denied the call")
    return Decision(False, "the user did not approve (the reply was not yes or no)")


def compact_args(args: dict[str, Any]) -> str:
    text = json.dumps(args, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= _ARGS_SHOWN else text[: _ARGS_SHOWN - 1] + "…"


@dataclass(frozen=True, slots=True)
class Authorized:
    """A call cleared to run."""

    call: ToolCall
    tool: Tool
    args: dict[str, Any]


Planned = Authorized | ToolResult
"""Either cleared to run, or already answered with an error result."""


class ToolExecutor:
    """Runs one run's tool calls (see the module docstring).

    Args:
        tools: the registry the model's tool definitions came from.
        ctx: the run, for asking the user and addressing the question.
        tool_context: handed to every tool.
        approve_medium: ask before medium-risk tools too.
        approval_timeout: seconds to wait for an answer before denying.
        max_result_chars: longer results are cut, with a note.
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
    ) -> None:
        self._tools = tools
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
            return _error(call, f"unknown tool {call.name!r}; available tools: {names}")
        try:
            args = parse_arguments(call.arguments)
        except ToolFailed as exc:
            return _error(call, str(exc))
        if needs_approval(tool.risk, approve_medium=self._approve_medium):
            try:
                await self._approve(tool, call, args)
            except ToolDenied as exc:
                log.info("tool call %s denied: %s", tool.name, exc)
                return _error(call, f"denied: {exc}; the call was not run")
        return Authorized(call, tool, args)

    async def _approve(self, tool: Tool, call: ToolCall, args: dict[str, Any]) -> None:
        ctx = self._ctx
        approval_id = new_id()
        user_id = ctx.inbound.sender.id
        question = Outbound(
            conversation=ctx.conversation,
            text=(
                f"Approve running {tool.name} ({tool.risk.value} risk)?\n{compact_args(args)}\n"
                "Reply yes or no if you cannot tap a button."
            ),
            buttons=(
                Button(id=f"approve:{approval_id}", label="Approve", style="primary"),
                Button(id=f"deny:{approval_id}", label="Deny", style="danger"),
            ),
            reply_to=ctx.inbound.reply_to,
            in_reply_to=ctx.inbound.id,
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
        name = p.tool.name
        try:
            async with asyncio.timeout(p.tool.timeout_seconds):
                content = await p.tool.invoke(p.args, self._tool_context)
        except ToolFailed as exc:
            return _error(p.call, str(exc) or "the tool failed")
        except ToolDenied as exc:
            return _error(p.call, f"denied: {exc}")
        except TimeoutError:
            return _error(p.call, f"the tool timed out after {p.tool.timeout_seconds:g} s")
        except Exception as exc:  # a tool bug must not end the run; the model hears about it
            log.error("tool %s raised %s", name, type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
            return _error(p.call, f"the tool failed unexpectedly ({type(exc).__name__}: {exc})")
        return ToolResult(call_id=p.call.id, name=name, content=self._cap(str(content)))

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
