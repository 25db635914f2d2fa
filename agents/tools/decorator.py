"""``@tool``: turn a typed, documented ``async def`` into a ``Tool``.

The JSON schema of the arguments comes from the type hints (through a pydantic model), the
descriptions from the Google-style docstring (summary, then ``Args:``). Arguments are
validated with the same model, so what the schema promises is what the function receives.

    @tool(category="math")
    async def add(a: int, b: int = 1) -> int:
        '''Add two numbers.

        Args:
            a: the first number.
            b: the second number.
        '''
        return a + b

A first parameter annotated ``ToolContext`` receives the per-call context and is not part
of the schema.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, overload

import pydantic_core
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo

from hub.errors import ToolDenied, ToolFailed

from .base import Assess, Risk, Tool, ToolContext

logger = logging.getLogger(__name__)

ToolFunc = Callable[..., Awaitable[Any]]

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Yields|Raises|Examples?|Notes?):\s*$")
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


@dataclass(frozen=True, slots=True)
class Docstring:
    description: str
    params: dict[str, str]


def parse_docstring(doc: str | None) -> Docstring:
    """Split a Google-style docstring into its description and ``Args:`` entries."""
    if not doc:
        return Docstring("", {})
    lines = inspect.cleandoc(doc).splitlines()
    desc: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    arg_indent: int | None = None
    for line in lines:
        m = _SECTION.match(line)
        if m:
            section, current, arg_indent = m.group(1), None, None
            continue
        if section is None:
            desc.append(line)
            continue
        if section not in ("Args", "Arguments", "Parameters") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if arg_indent is None:
            arg_indent = indent
        am = _ARG_LINE.match(line.strip())
        if indent <= arg_indent and am:
            current = am.group(1).lstrip("*")
            params[current] = am.group(2).strip()
        elif current is not None:
            params[current] = f"{params[current]} {line.strip()}".strip()
    text = "\n".join(desc).strip()
    # Paragraphs keep their breaks; wrapped lines inside a paragraph are joined.
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return Docstring("\n\n".join(paragraphs), params)


def _compact(node: Any, defs: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> Any:
    """Drop titles, inline ``$defs`` and collapse ``Optional[X] = None`` to ``X`` (not required)."""
    if isinstance(node, list):
        return [_compact(n, defs, seen) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in defs and name not in seen:
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return _compact({**defs[name], **extra}, defs, seen | {name})
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _compact(v, defs, seen) for name, v in value.items()}
        else:
            out[key] = _compact(value, defs, seen)
    branches = out.get("anyOf")
    if "default" in out and out["default"] is None and isinstance(branches, list):
        rest = [b for b in branches if b != {"type": "null"}]
        if len(rest) == 1 and len(rest) < len(branches):
            del out["anyOf"], out["default"]
            out = {**rest[0], **out}
    return out


def _is_context(annotation: Any) -> bool:
    return annotation is ToolContext or annotation == "ToolContext"


def _parameter_hints(fn: ToolFunc) -> dict[str, Any]:
    """Resolved parameter annotations; the return annotation is ignored (it may be a local class)."""
    annotations = {k: v for k, v in getattr(fn, "__annotations__", {}).items() if k != "return"}
    holder = types.SimpleNamespace(__annotations__=annotations, __globals__=getattr(fn, "__globals__", {}))
    try:
        # ToolContext resolves even where a module imports it only for type checking.
        return typing.get_type_hints(holder, localns={"ToolContext": ToolContext}, include_extras=True)
    except NameError as exc:
        raise TypeError(f"@tool function {fn.__name__}: cannot resolve a type hint ({exc})") from None


def _build_model(fn: ToolFunc, doc: Docstring) -> tuple[type[BaseModel], bool]:
    sig = inspect.signature(fn)
    hints = _parameter_hints(fn)
    params = list(sig.parameters.values())
    takes_ctx = bool(params) and _is_context(hints.get(params[0].name, params[0].annotation))
    fields: dict[str, Any] = {}
    for p in params[1:] if takes_ctx else params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"@tool function {fn.__name__}: *args/**kwargs are not supported")
        if p.name not in hints:
            raise TypeError(f"@tool function {fn.__name__}: parameter {p.name!r} needs a type hint")
        default = ... if p.default is p.empty else p.default
        info = FieldInfo.from_annotated_attribute(hints[p.name], default)
        if info.description is None and p.name in doc.params:
            info.description = doc.params[p.name]
        fields[p.name] = (info.annotation, info)
    model = create_model(
        f"{fn.__name__}_args",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )
    return model, takes_ctx


def parameters_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The compact JSON schema sent to the model for an arguments model."""
    raw = model.model_json_schema()
    schema: dict[str, Any] = _compact(raw, raw.get("$defs", {}))
    schema.setdefault("properties", {})
    # extra="forbid" is enforced on validation with a clear message; saying so costs tokens per request.
    if schema.get("additionalProperties") is False:
        del schema["additionalProperties"]
    if not schema.get("required"):
        schema.pop("required", None)
    return schema


def describe_arguments_error(tool_name: str, exc: ValidationError) -> str:
    """One readable sentence per problem, e.g. ``a: Field required``, for the model to fix."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "arguments"
        msg = err["msg"]
        if err["type"] not in ("missing", "extra_forbidden"):
            shown = repr(err.get("input"))
            msg += f" (got {shown[:60] + '…' if len(shown) > 60 else shown})"
        elif err["type"] == "extra_forbidden":
            msg = "unexpected argument"
        problems.append(f"{loc}: {msg}")
    return f"invalid arguments for tool {tool_name!r}: " + "; ".join(problems)


def encode_result(result: Any) -> str:
    """Strings pass through; anything else is JSON (models, dataclasses and datetimes too)."""
    if isinstance(result, str):
        return result
    if result is None:
        return ""
    return pydantic_core.to_json(result).decode()


@dataclass(frozen=True, slots=True)
class FunctionInvoker:
    """The ``invoke`` of a decorated function: validate, run under a timeout, encode."""

    name: str
    fn: ToolFunc
    model: type[BaseModel]
    takes_ctx: bool
    timeout_seconds: float

    async def __call__(self, args: Mapping[str, Any] | str | None, ctx: ToolContext) -> str:
        kwargs = self._validate(args)
        try:
            async with asyncio.timeout(self.timeout_seconds) as scope:
                if self.takes_ctx:
                    result = await self.fn(ctx, **kwargs)
                else:
                    result = await self.fn(**kwargs)
        except (ToolFailed, ToolDenied):
            raise
        except TimeoutError:
            if scope.expired():
                raise ToolFailed(f"tool {self.name!r} timed out after {self.timeout_seconds:g}s") from None
            raise ToolFailed(f"tool {self.name!r} failed: an operation timed out") from None
        except Exception as exc:
            # The message goes to the model; the traceback only to debug logs (it may hold payloads).
            logger.warning("tool %s raised %s", self.name, type(exc).__name__)
            logger.debug("tool %s traceback", self.name, exc_info=True)
            raise ToolFailed(f"tool {self.name!r} failed: {type(exc).__name__}: {exc}") from None
        return encode_result(result)

    def _validate(self, args: Mapping[str, Any] | str | None) -> dict[str, Any]:
        if args is None:
            args = {}
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                raise ToolFailed(
                    f"invalid arguments for tool {self.name!r}: not valid JSON ({exc.msg} at char {exc.pos})"
                ) from None
        if not isinstance(args, Mapping):
            raise ToolFailed(
                f"invalid arguments for tool {self.name!r}: expected a JSON object, got {type(args).__name__}"
            )
        try:
            parsed = self.model.model_validate(dict(args))
        except ValidationError as exc:
            raise ToolFailed(describe_arguments_error(self.name, exc)) from None
        # Attributes rather than model_dump(): nested models stay models.
        return {name: getattr(parsed, name) for name in type(parsed).model_fields}


def function_tool(
    fn: ToolFunc,
    *,
    category: str = "general",
    risk: Risk = Risk.LOW,
    permissions: tuple[str, ...] = (),
    name: str | None = None,
    description: str | None = None,
    timeout_seconds: float = 30.0,
) -> Tool:
    """Build a ``Tool`` from ``fn`` (what ``@tool`` does, callable without decorating)."""
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"@tool needs an async def, got {fn!r}")
    doc = parse_docstring(fn.__doc__)
    model, takes_ctx = _build_model(fn, doc)
    tool_name = name or fn.__name__
    return Tool(
        name=tool_name,
        description=description if description is not None else doc.description,
        parameters=parameters_schema(model),
        invoke=FunctionInvoker(tool_name, fn, model, takes_ctx, timeout_seconds),
        category=category,
        risk=risk,
        permissions=tuple(permissions),
        timeout_seconds=timeout_seconds,
    )


@overload
def tool(fn: ToolFunc, /) -> Tool: ...
@overload
def tool(
    *,
    category: str = "general",
    risk: Risk = Risk.LOW,
    permissions: tuple[str, ...] = (),
    name: str | None = None,
    timeout_seconds: float = 30.0,
) -> Callable[[ToolFunc], Tool]: ...
def tool(
    fn: ToolFunc | None = None,
    /,
    *,
    category: str = "general",
    risk: Risk = Risk.LOW,
    permissions: tuple[str, ...] = (),
    name: str | None = None,
    timeout_seconds: float = 30.0,
) -> Tool | Callable[[ToolFunc], Tool]:
    """Decorate an ``async def`` to make it a ``Tool`` (``@tool`` or ``@tool(category=…)``)."""

    def wrap(f: ToolFunc) -> Tool:
        return function_tool(
            f,
            category=category,
            risk=risk,
            permissions=permissions,
            name=name,
            timeout_seconds=timeout_seconds,
        )

    return wrap(fn) if fn is not None else wrap


def configure(
    tool_: Tool, *, timeout_seconds: float | None = None, risk: Risk | None = None, assess: Assess | None = None
) -> Tool:
    """A copy of a decorated tool with another timeout, risk or approval rule (from config)."""
    out = tool_
    if risk is not None:
        out = dataclasses.replace(out, risk=risk)
    if assess is not None:
        out = dataclasses.replace(out, assess=assess)
    if timeout_seconds is not None:
        invoke = out.invoke
        if isinstance(invoke, FunctionInvoker):
            invoke = dataclasses.replace(invoke, timeout_seconds=timeout_seconds)
        out = dataclasses.replace(out, invoke=invoke, timeout_seconds=timeout_seconds)
    return out
