"""Intent analysis: which tool categories a request needs and which workflow mode suits it,
and the last formatting step. ``[agent] intent = "off" | "auto"``.

With ``auto``, ``analyse`` makes one short model call (no tools; a system prompt listing the
registry's categories with their one-line descriptions, the same bytes every run so prompt
caches hit) that answers with JSON: the request restated, the categories it needs, a mode, and
the form the answer must take. The run then offers only those categories' tools plus
``more_tools``: one call of it widens the set to every tool from the next model call, so a wrong
guess costs a round trip, never a failure. Anything unusable in the reply (no JSON, a category
the registry does not have) and any provider error fall back to every tool.

How the run uses it (agents/runtime.py, agents/workflows/):

- ``analyse(ctx, registry, specs, provider, model, intent=config.intent)`` once at the start;
  ``provider``/``model`` answer the intent call: those ``[agent] intent_model`` resolves to
  (the runtime's model resolver, as for ``/model``), else the run's own. Without
  ``intent="auto"`` it makes no call and offers every tool.
- every model request carries ``tools=toolset.specs`` (read each turn), and the run's
  ``ToolExecutor`` is built on ``toolset.registry`` (the registry plus ``more_tools``, so the
  model's call of it is executed, approved and shown like any other tool's).
- the final text goes through ``format_answer(ctx, intent, text, provider, model,
  tool_output=…)`` (the run's tool results, so it can tell an answer that only repeats them).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hub.agent import RunContext
from hub.errors import ProviderError
from hub.messages import Inbound

from . import history
from .providers.base import AssistantMessage, ModelRequest, ModelResponse, Provider, ToolSpec, UserMessage
from .tools.base import Tool, ToolContext, ToolRegistry

__all__ = [
    "MODES",
    "MORE_TOOLS",
    "Intent",
    "IntentSwitch",
    "ToolSet",
    "analyse",
    "format_answer",
    "intent_prompt",
    "needs_formatting",
    "parse_reply",
]

log = logging.getLogger(__name__)

IntentSwitch = Literal["off", "auto"]
"""``[agent] intent``."""
MODES = ("react", "batch", "chain", "plan")
"""The workflow modes the intent step may suggest (agents/workflows/)."""
MORE_TOOLS = "more_tools"
INTENT_MAX_TOKENS = 300
_REQUEST_CAP = 2000
_CONTEXT_CAP = 400
_NO_FORM = frozenset({"", "none", "null", "no", "any", "default", "as it comes", "plain", "text"})


@dataclass(frozen=True, slots=True)
class Intent:
    categories: frozenset[str] | None = None
    """The tool categories the request needs; None: all of them."""
    mode: str | None = None
    """A suggested workflow mode (``react``, ``batch``, ``chain``, ``plan``); None: no opinion."""
    text: str | None = None
    """The request restated cleanly, if the analysis made one."""
    form: str | None = None
    """A form the answer must take (``a table``, ``JSON``, ``German``); None: as it comes."""


class ToolSet:
    """The tools a run offers the model: the intent's categories, widened once on request.

    Args:
        registry: every tool of the agent.
        specs: the schemas of every tool, in the order the model is offered them.
        categories: the categories to offer; None (or every category there is): all tools.
    """

    def __init__(self, registry: ToolRegistry, specs: tuple[ToolSpec, ...], categories: frozenset[str] | None) -> None:
        self._all = specs
        self.categories = categories
        self.widened = False
        present = {t.category for t in registry}
        narrow = categories is not None and not present <= categories and registry.get(MORE_TOOLS) is None
        self.narrowed = narrow
        """Whether the set started smaller than the catalogue (and ``more_tools`` is offered)."""
        self._chosen = tuple(s for s in specs if _category(registry, s) in (categories or ())) if narrow else specs
        self.registry = _with_more_tools(registry, self) if narrow else registry
        """What the run's ``ToolExecutor`` looks calls up in: ``registry`` plus ``more_tools``."""

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        """The schemas to send with the next model call."""
        if not self.narrowed or self.widened:
            return self._all
        return (*self._chosen, _MORE_TOOLS_SPEC)

    def widen(self) -> None:
        """Offer every tool from the next model call on."""
        self.widened = True


def _category(registry: ToolRegistry, spec: ToolSpec) -> str | None:
    tool = registry.get(spec.name)
    return tool.category if tool is not None else None


_MORE_TOOLS_DESCRIPTION = (
    "Call this when you need a tool that is not offered: the full catalogue of tools is then offered."
)
_MORE_TOOLS_SPEC = ToolSpec(
    name=MORE_TOOLS, description=_MORE_TOOLS_DESCRIPTION, parameters={"type": "object", "properties": {}}
)


def _with_more_tools(registry: ToolRegistry, toolset: ToolSet) -> ToolRegistry:
    async def more_tools(args: dict[str, Any], ctx: ToolContext) -> str:
        if toolset.widened:
            return "Every tool is already offered."
        toolset.widen()
        names = ", ".join(t.name for t in registry)
        return f"Every tool is offered from your next step: {names}."

    run_registry = ToolRegistry()
    run_registry.extend(registry)
    for category, description in registry.categories().items():
        run_registry.describe(category, description)
    run_registry.add(
        Tool(
            name=MORE_TOOLS,
            description=_MORE_TOOLS_DESCRIPTION,
            parameters=_MORE_TOOLS_SPEC.parameters,
            invoke=more_tools,
            category="catalogue",
            timeout_seconds=5.0,
        )
    )
    return run_registry


def intent_prompt(categories: Mapping[str, str]) -> str:
    """The intent call's system prompt: the same bytes for the same categories (sorted)."""
    lines = "\n".join(f"- {name}: {categories[name]}" for name in sorted(categories))
    return (
        "Classify a request to an assistant that has tools. Reply with JSON only:\n"
        '{"intent": "<the request in a few words>", "categories": [<the categories it needs>], '
        '"mode": "react|batch|chain|plan", "form": "<a form the user asked for: table, JSON, a language…>" or null}\n'
        f"Categories:\n{lines}\n"
        "categories: [] when no tool is needed (chat, knowledge, writing). mode: react = step by step "
        "(usual); batch = independent lookups at once; chain = ordered steps feeding each other; "
        "plan = a long job of many steps."
    )


async def analyse(
    ctx: RunContext,
    registry: ToolRegistry,
    specs: tuple[ToolSpec, ...],
    provider: Provider,
    model: str | None,
    *,
    intent: IntentSwitch = "off",
) -> tuple[Intent, ToolSet]:
    """The request's intent and the tool set its run offers (all of ``specs`` when off or when
    the analysis fails). ``intent="auto"`` makes the call; the usage is recorded on ``ctx``."""
    if intent != "auto":
        return Intent(), ToolSet(registry, specs, None)
    categories = registry.categories()
    request = ModelRequest(
        system=intent_prompt(categories),
        messages=(UserMessage(text=_request_text(ctx)),),
        model=model,
        max_tokens=INTENT_MAX_TOKENS,
    )
    try:
        response = await provider.complete(request)
    except ProviderError as exc:  # the run goes on with every tool
        log.warning("conversation %s: intent call failed (%s)", ctx.conversation.key, type(exc).__name__)
        return Intent(), ToolSet(registry, specs, None)
    _record(ctx, provider, model, response)
    found = parse_reply(response.text, set(categories))
    if found is None:
        log.info("conversation %s: intent reply unusable; offering every tool", ctx.conversation.key)
        return Intent(), ToolSet(registry, specs, None)
    return found, ToolSet(registry, specs, found.categories)


def _record(ctx: RunContext, provider: Provider, model: str | None, response: ModelResponse) -> None:
    ctx.record_usage(provider.name, response.model or model or provider.model, response.usage)


def _request_text(ctx: RunContext) -> str:
    """The request, and the assistant's last words before it (a follow-up such as "now delete
    it" names its tools only through them)."""
    text = _inbound_text(ctx.inbound)[:_REQUEST_CAP]
    last = next(
        (m.text for m in map(history.decode_one, reversed(ctx.history)) if isinstance(m, AssistantMessage) and m.text),
        "",
    )
    if not last:
        return text
    return f"(The assistant's last reply: {last[:_CONTEXT_CAP]})\n\nThe request:\n{text}"


def _inbound_text(inbound: Inbound) -> str:
    if inbound.kind == "command" and inbound.command:
        return f"/{inbound.command} {inbound.text}".rstrip()
    if inbound.kind == "button" and inbound.button:
        return f"[the user tapped the button {inbound.button!r}]"
    if inbound.kind == "job" and inbound.job is not None:
        return f"[a scheduled task fired: {inbound.job.description or inbound.job.job_id}]\n{inbound.text}"
    return inbound.text


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def _json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text``: fenced, bare, or amid other words."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_reply(text: str, known: set[str]) -> Intent | None:
    """The intent in the model's reply; None when it is unusable (no JSON object, categories
    that are not a list of known names)."""
    data = _json_object(text)
    if data is None:
        return None
    raw = data.get("categories", [])
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        return None
    chosen = frozenset(c.strip().casefold() for c in raw)
    by_fold = {k.casefold(): k for k in known}
    if not chosen <= by_fold.keys():
        return None
    mode, form, restated = (_text(data.get(key)) for key in ("mode", "form", "intent"))
    return Intent(
        categories=frozenset(by_fold[c] for c in chosen),
        mode=mode.casefold() if mode and mode.casefold() in MODES else None,
        text=restated,
        form=form if form and form.casefold() not in _NO_FORM else None,
    )


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


# ----------------------------------------------------------------------------- formatting

FORMAT_SYSTEM = (
    "You rewrite an assistant's answer into the form the user asked for (a table, JSON, a "
    "language …). Keep every fact and number; add nothing; drop tool noise. Output only the "
    "rewritten answer."
)
FORMAT_MAX_TOKENS = 4096
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$", re.MULTILINE)
_RAW_SHARE = 0.6


def _is_json(text: str) -> bool:
    body = text.strip()
    fenced = _FENCE.fullmatch(body)
    try:
        json.loads(fenced.group(1) if fenced else body)
    except ValueError:
        return False
    return True


def _matches(form: str, text: str) -> bool | None:
    """Whether ``text`` has the form; None when it cannot be told (a language, a style)."""
    wanted = form.casefold()
    if "json" in wanted:
        return _is_json(text)
    if "table" in wanted:
        return bool(_TABLE_RULE.search(text))
    return None


def _mostly_tool_output(text: str, tool_output: Sequence[str]) -> bool:
    """Whether most of the answer's lines are tool output repeated, or a code block."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return False
    fenced = sum(len(m.group(0)) for m in _FENCE.finditer(text))
    if fenced >= _RAW_SHARE * len(text.strip()):
        return True
    repeated = sum(1 for line in lines if len(line) > 3 and any(line in out for out in tool_output))
    return repeated >= _RAW_SHARE * len(lines)


def needs_formatting(intent: Intent, text: str, tool_output: Sequence[str] = ()) -> bool:
    """Whether ``format_answer`` would make its call: a form was asked for and the answer does
    not have it (JSON, a table), or, where that cannot be told, mostly repeats tool output."""
    if intent.form is None or not text.strip():
        return False
    matches = _matches(intent.form, text)
    if matches is not None:
        return not matches
    return _mostly_tool_output(text, tool_output)


async def format_answer(
    ctx: RunContext,
    intent: Intent,
    text: str,
    provider: Provider,
    model: str | None,
    *,
    tool_output: Sequence[str] = (),
) -> str:
    """``text`` in the form the request asked for, when it asked for one and ``text`` lacks it
    (``needs_formatting``); else ``text`` itself, with no call. A failed call keeps ``text``."""
    if intent.form is None or not needs_formatting(intent, text, tool_output):
        return text
    request_line = intent.text or _inbound_text(ctx.inbound)[:_REQUEST_CAP]
    prompt = f"The request: {request_line}\nThe form asked for: {intent.form}\n\nThe answer to rewrite:\n{text}"
    request = ModelRequest(
        system=FORMAT_SYSTEM, messages=(UserMessage(text=prompt),), model=model, max_tokens=FORMAT_MAX_TOKENS
    )
    try:
        response = await provider.complete(request)
    except ProviderError as exc:  # the unformatted answer beats none
        log.warning("conversation %s: formatting call failed (%s)", ctx.conversation.key, type(exc).__name__)
        return text
    _record(ctx, provider, model, response)
    return response.text.strip() or text
