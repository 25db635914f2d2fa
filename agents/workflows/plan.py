"""``plan`` (Plan-and-Execute): one planning call returns a plan (``_plans.Plan``); this
executor runs it step by step without the model — references (``_refs``), conditions, and each
step's ``on_error``: ``retry(n)`` (a denied call is not retried: the person said no), ``skip``
(its output is null) or ``fail``. The model is asked again only where the plan says so (an
``ask`` step) and once more when a step fails past its policy: one replan of what remains.
Then the model writes the answer from the steps' results (``react``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pydantic import JsonValue

from hub.messages import Outbound

from ..providers.base import AssistantMessage, ToolCall, UserMessage
from ._base import Run
from ._checklist import Checklist, step_label
from ._plans import Plan, PlanStep, json_arguments, request_plan
from ._refs import RefMissing, holds, resolve
from .react import react

INSTRUCTION = (
    "Make a plan that answers the user's last message; it runs step by step without you. Shape: "
    '{"steps": [{"id": "<identifier>", "tool": "<tool name>", "arguments": {...}, '
    '"when": {"$ref": "<id>.output.<path>", "op": "truthy|falsy|equals|not_equals|contains", "value": ...}, '
    '"on_error": "retry(<1-9>)|skip|fail"}, ...]}. '
    'An argument may be {"$ref": "<earlier id>.output"} (that step\'s whole result) or '
    '{"$ref": "<earlier id>.output.<key>.<index>"} (a value inside a JSON result). '
    "when and on_error are optional (on_error defaults to fail). A step that needs your judgement "
    'instead of a tool is {"id": ..., "ask": "<question>", "inputs": {"<name>": {"$ref": ...}}}.'
)
ASK_SYSTEM = "Answer the question from the inputs given, briefly. Plain text, no preamble."
_SHOWN = 2000
"""Characters of each step's output a replan request carries."""


@dataclass
class _Executor:
    run: Run
    checklist: Checklist
    outputs: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    offset: int = 0
    """The checklist line of the current plan's first step."""

    async def execute(self, plan: Plan) -> tuple[int, PlanStep, str] | None:
        """Run ``plan``; the failed step (its index) and error when one failed past its policy."""
        for i, step in enumerate(plan.steps):
            line = self.offset + i
            if step.when is not None and not holds(step.when, self.outputs):
                self.outputs[step.id] = None
                await self.checklist.mark(line, "skipped", "condition not met")
                continue
            ok, text = await self._step(step, f"plan step {line + 1}/{len(self.checklist.labels)}")
            if ok:
                self.outputs[step.id] = text
                await self.checklist.mark(line, "done")
            elif step.on_error == "skip":
                self.outputs[step.id] = None
                await self.checklist.mark(line, "skipped", text)
            else:
                await self.checklist.mark(line, "failed", text)
                return i, step, text
        return None

    async def _step(self, step: PlanStep, label: str) -> tuple[bool, str]:
        try:
            arguments = resolve(step.arguments, self.outputs)
            inputs = resolve(step.inputs, self.outputs)
        except RefMissing as exc:
            return False, str(exc)
        if step.ask is not None:
            return True, await self._ask(step.ask, inputs, label)
        assert step.tool is not None and isinstance(arguments, dict)
        content = ""
        for attempt in range(step.retries + 1):
            call = ToolCall(id=f"plan_{step.id}_{attempt + 1}", name=step.tool, arguments=json_arguments(arguments))
            await self.run.add(AssistantMessage(tool_calls=(call,)), label=label)
            results = await self.run.run_tools([call])
            await self.run.add(results, label=f"tool {step.tool}")
            result = results.results[0]
            if not result.is_error:
                return True, result.content
            content = result.content
            if content.startswith("denied:"):
                break
        return False, content

    async def _ask(self, question: str, inputs: JsonValue, label: str) -> str:
        prompt = f"{question}\n\nInputs:\n{json.dumps(inputs, ensure_ascii=False)}"
        answer = await self.run.complete(ASK_SYSTEM, [UserMessage(text=prompt)])
        await self.run.checkpoint(label)
        self.notes.append(f"{question}\n→ {answer.strip()}")
        return answer

    def replan_request(self, step: PlanStep, error: str) -> str:
        done = {k: (v[:_SHOWN] if v is not None else None) for k, v in self.outputs.items()}
        return (
            f"[The plan's step {step.id!r} ({step.tool or 'ask'}) failed: {error}]\n"
            f"Outputs of the steps done so far, by id: {json.dumps(done, ensure_ascii=False)}\n"
            "Make a new plan for what remains (new step ids; refer to the outputs above by their ids)."
        )


async def plan(run: Run) -> AsyncIterator[Outbound]:
    first = await request_plan(run, Plan, INSTRUCTION)
    if first is not None:
        checklist = Checklist(run.ctx, f"Plan ({len(first.steps)} steps):", _labels(first))
        await checklist.show()
        executor = _Executor(run, checklist)
        failed = await executor.execute(first)
        if failed is not None:
            await _replan(run, executor, *failed)
        if executor.notes:  # the model steps' answers, for the answer call (not kept in history)
            run.messages.append(UserMessage(text="[Answers of the plan's model steps]\n" + "\n\n".join(executor.notes)))
    async for out in react(run, typing_first=True):
        yield out


async def _replan(run: Run, executor: _Executor, index: int, step: PlanStep, error: str) -> None:
    """One new plan for what remains after ``step`` failed; run it. A second failure ends the
    plan: the model then answers from what is known."""
    extra = executor.replan_request(step, error)
    known = [k for k in executor.outputs]
    again = await request_plan(run, Plan, INSTRUCTION, extra=extra, known=known)
    checklist = executor.checklist
    if again is None:
        await checklist.finish(f"Stopped: step {step.id} failed.")
        return
    executor.offset += index + 1
    await checklist.replace(f"Plan, revised after step {step.id} failed:", _labels(again), keep=executor.offset)
    if await executor.execute(again) is not None:
        await checklist.finish("Stopped: a step of the revised plan failed.")


def _labels(plan: Plan) -> list[str]:
    return [step_label(s.tool, s.arguments, s.ask) for s in plan.steps]
