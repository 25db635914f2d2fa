"""``batch``: one planning call returns independent tool calls; they run concurrently (at most
``LIMIT`` at once), each authorized as in every mode; then one call writes the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

from hub.messages import Outbound

from ..providers.base import AssistantMessage, ToolCall, ToolResult
from ._base import Run
from ._checklist import Checklist, step_label
from ._plans import BatchPlan, json_arguments, request_plan
from .react import react

LIMIT = 4
"""Calls of one batch running at the same time."""

INSTRUCTION = (
    "Plan the tool calls that answer the user's last message. They run at the same time, so "
    "none may need another's result. Shape: "
    '{"calls": [{"tool": "<tool name>", "arguments": {...}}, ...]}; '
    '{"calls": []} when no tool is needed.'
)


async def batch(run: Run) -> AsyncIterator[Outbound]:
    plan = await request_plan(run, BatchPlan, INSTRUCTION)
    if plan is None:
        async for out in react(run, typing_first=True):
            yield out
        return
    if plan.calls:
        calls = [
            ToolCall(id=f"batch_{i}", name=c.tool, arguments=json_arguments(c.arguments))
            for i, c in enumerate(plan.calls, 1)
        ]
        checklist = Checklist(
            run.ctx, f"Running {len(calls)} calls at once:", [step_label(c.tool, c.arguments) for c in plan.calls]
        )
        await checklist.show()

        async def seen(index: int, result: ToolResult) -> None:
            await checklist.mark(index, "failed" if result.is_error else "done")

        await run.add(AssistantMessage(tool_calls=tuple(calls)), label="plan")
        results = await run.run_tools(calls, limit=LIMIT, seen=seen)
        await run.add(results, label=f"batch of {len(calls)}")
    async for out in react(run, typing_first=True):
        yield out
