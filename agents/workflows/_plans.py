"""The plans the planning modes ask the model for, and the one planning call they share.

A plan is JSON the model writes in answer to a system instruction that lists the run's tools
(``Run.specs``). It is validated by a pydantic model; tool names and references are checked
against the validation context (``tools``: the names offered, ``known``: step ids whose
outputs already exist, for a replan). An invalid plan gets one repair round trip carrying the
validation error; a second invalid one makes ``request_plan`` return None (the caller falls
back to ``react``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, ValidationInfo, model_validator

from ..providers.base import AssistantMessage, ChatMessage, ToolResultsMessage, ToolSpec, UserMessage
from ._base import Run

log = logging.getLogger(__name__)

_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,39}$"
TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
"""``{{name}}`` in a chain step's argument: that earlier step's output."""
ON_ERROR = re.compile(r"^(retry\((?P<n>[1-9])\)|skip|fail)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _tools(info: ValidationInfo) -> frozenset[str]:
    context = info.context if isinstance(info.context, dict) else {}
    tools = context.get("tools", frozenset())
    return tools if isinstance(tools, frozenset) else frozenset()


def _check_tool(name: str, info: ValidationInfo) -> None:
    tools = _tools(info)
    if tools and name not in tools:
        raise ValueError(f"unknown tool {name!r}; the tools are: {', '.join(sorted(tools))}")


class BatchCall(_Strict):
    tool: str
    arguments: dict[str, JsonValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_tool(self, info: ValidationInfo) -> BatchCall:
        _check_tool(self.tool, info)
        return self


class BatchPlan(_Strict):
    """``batch``: independent calls, run at once."""

    calls: list[BatchCall] = Field(default_factory=list, max_length=16)


class ChainStep(_Strict):
    name: str = Field(pattern=_NAME)
    tool: str
    arguments: dict[str, JsonValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_tool(self, info: ValidationInfo) -> ChainStep:
        _check_tool(self.tool, info)
        return self


class ChainPlan(_Strict):
    """``chain``: ordered calls; ``{{name}}`` in an argument is that earlier step's output."""

    steps: list[ChainStep] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _names(self) -> ChainPlan:
        seen: set[str] = set()
        for step in self.steps:
            for used in TEMPLATE.findall(json.dumps(step.arguments)):
                if used not in seen:
                    raise ValueError(f"step {step.name!r} uses {{{{{used}}}}}, which is not an earlier step")
            if step.name in seen:
                raise ValueError(f"two steps are named {step.name!r}")
            seen.add(step.name)
        return self


class Condition(_Strict):
    """Run the step only if the value at ``$ref`` passes ``op`` (with ``value``)."""

    ref: str = Field(alias="$ref")
    op: Literal["truthy", "falsy", "equals", "not_equals", "contains"] = "truthy"
    value: JsonValue = None


class PlanStep(_Strict):
    id: str = Field(pattern=_NAME)
    tool: str | None = None
    arguments: dict[str, JsonValue] = Field(default_factory=dict)
    ask: str | None = None
    """Instead of a tool: a question for the model, answered from the referenced ``inputs``."""
    inputs: dict[str, JsonValue] = Field(default_factory=dict)
    when: Condition | None = None
    on_error: str = Field(default="fail", pattern=ON_ERROR.pattern)

    @property
    def retries(self) -> int:
        match = ON_ERROR.match(self.on_error)
        return int(match.group("n")) if match and match.group("n") else 0

    @model_validator(mode="after")
    def _one_action(self, info: ValidationInfo) -> PlanStep:
        if (self.tool is None) == (self.ask is None):
            raise ValueError(f"step {self.id!r} needs either a tool or an ask, not both or neither")
        if self.tool is not None:
            _check_tool(self.tool, info)
        return self


class Plan(_Strict):
    """``plan``: steps run in order by the executor, with references, conditions and an error policy."""

    steps: list[PlanStep] = Field(min_length=1, max_length=24)

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> Plan:
        context = info.context if isinstance(info.context, dict) else {}
        seen: set[str] = set(context.get("known", ()))
        for step in self.steps:
            refs = [*refs_in(step.arguments), *refs_in(step.inputs)]
            if step.when is not None:
                refs.append(step.when.ref)
            for ref in refs:
                if ref.split(".", 1)[0] not in seen:
                    raise ValueError(f"step {step.id!r} refers to {ref!r}, which is not an earlier step")
            if step.id in seen:
                raise ValueError(f"two steps have the id {step.id!r}")
            seen.add(step.id)
        return self


def refs_in(value: JsonValue) -> Iterator[str]:
    """Every ``{"$ref": "..."}`` inside ``value``."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if len(value) == 1 and isinstance(ref, str):
            yield ref
            return
        for item in value.values():
            yield from refs_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs_in(item)


class PlanInvalid(ValueError):
    """The model's plan is not valid JSON of the asked shape; the message says why."""


P = TypeVar("P", BatchPlan, ChainPlan, Plan)


def parse_plan(text: str, shape: type[P], *, tools: frozenset[str], known: Sequence[str] = ()) -> P:
    """The plan in ``text`` (code fences and prose around the JSON object are ignored)."""
    body = strip_fences(text)
    try:
        return shape.model_validate_json(body, context={"tools": tools, "known": tuple(known)})
    except ValidationError as exc:
        raise PlanInvalid(_errors(exc)) from None


def strip_fences(text: str) -> str:
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    return body[start : end + 1] if 0 <= start < end else body.strip()


def _errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return "; ".join(parts)


def catalogue(specs: Sequence[ToolSpec]) -> str:
    rows = [{"name": s.name, "description": s.description, "parameters": s.parameters} for s in specs]
    return json.dumps(rows, ensure_ascii=False)


def planning_system(instruction: str, specs: Sequence[ToolSpec]) -> str:
    return (
        f"{instruction}\nReply with one JSON object and nothing else (no prose, no code fence).\n"
        f"The tools you may use (name, description, JSON schema of the arguments):\n{catalogue(specs)}"
    )


def text_only(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The conversation as plain user/assistant text: a planning call offers no tools, so it
    must not carry tool calls or results (a vendor rejects those without tool definitions)."""
    out: list[UserMessage | AssistantMessage] = []
    for message in messages:
        if isinstance(message, ToolResultsMessage) or not message.text.strip():
            continue
        text = message.text
        if out and out[-1].role == message.role:
            text = f"{out.pop().text}\n\n{text}"
        out.append(UserMessage(text=text) if isinstance(message, UserMessage) else AssistantMessage(text=text))
    return list(out)


async def request_plan(
    run: Run, shape: type[P], instruction: str, *, extra: str = "", known: Sequence[str] = ()
) -> P | None:
    """Ask for a plan; one repair round trip; None when the second answer is invalid too."""
    specs = run.specs
    tools = frozenset(s.name for s in specs)
    system = planning_system(instruction, specs)
    messages: list[ChatMessage] = text_only(run.messages)
    if extra:
        messages.append(UserMessage(text=extra))
    for attempt in range(2):
        text = await run.complete(system, messages)
        await run.checkpoint("plan" if not attempt else "plan repaired")
        try:
            return parse_plan(text, shape, tools=tools, known=known)
        except PlanInvalid as exc:
            log.info("conversation %s: invalid %s: %s", run.ctx.conversation.key, shape.__name__, exc)
            messages += [
                AssistantMessage(text=text or "(empty)"),
                UserMessage(text=f"That plan is not valid: {exc}. Reply with the corrected JSON object only."),
            ]
    return None


def json_arguments(arguments: JsonValue) -> str:
    return json.dumps(arguments, ensure_ascii=False)
