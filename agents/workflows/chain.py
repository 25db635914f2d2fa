"""``chain``: one planning call returns ordered steps; ``{{name}}`` in a step's argument is
replaced by the output of the earlier step of that name. A step that fails ends the chain and
the model takes over from what is known (``react``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from pydantic import JsonValue

from hub.messages import Outbound

from ..providers.base import AssistantMessage, ToolCall
from ._base import Run
from ._checklist import Checklist, step_label
from ._plans import TEMPLATE, ChainPlan, json_arguments, request_plan
from .react import react

INSTRUCTION = (
    "Plan the tool calls that answer the user's last message, in order. A step may use an "
    "earlier step's output (its whole text) by writing {{name}} inside a string argument. Shape: "
    '{"steps": [{"name": "<identifier>", "tool": "<tool name>", "arguments": {...}}, ...]}.'
)


def fill(value: JsonValue, outputs: Mapping[str, str]) -> JsonValue:
    """``value`` with every ``{{name}}`` in its strings replaced by that step's output."""
    if isinstance(value, str):
        return TEMPLATE.sub(lambda m: outputs.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: fill(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, outputs) for v in value]
    return value


async def chain(run: Run) -> AsyncIterator[Outbound]:
    plan = await request_plan(run, ChainPlan, INSTRUCTION)
    if plan is not None:
        labels = [step_label(s.tool, s.arguments) for s in plan.steps]
        checklist = Checklist(run.ctx, f"Plan ({len(labels)} steps, in order):", labels)
        await checklist.show()
        outputs: dict[str, str] = {}
        for i, step in enumerate(plan.steps):
            arguments = fill(step.arguments, outputs)
            call = ToolCall(id=f"chain_{i + 1}", name=step.tool, arguments=json_arguments(arguments))
            await run.add(AssistantMessage(tool_calls=(call,)), label=f"chain step {i + 1}/{len(labels)}")
            results = await run.run_tools([call])
            await run.add(results, label=f"tool {step.tool}")
            result = results.results[0]
            if result.is_error:
                await checklist.mark(i, "failed", result.content)
                await checklist.finish("Stopped: a step failed.")
                break
            outputs[step.name] = result.content
            await checklist.mark(i, "done")
    async for out in react(run, typing_first=True):
        yield out
