"""``{"$ref": "step.output.path"}`` in a plan: reading an earlier step's output, and the
conditions built on it.

A step's output is its tool's result text (or the model's answer to an ``ask`` step). A
reference to the whole output (``s1`` or ``s1.output``) is that text; a path after it
(``s1.output.items.0.name``) reads the text as JSON and walks keys and list indexes. A skipped
step's output is null.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import JsonValue

from ._plans import Condition

Outputs = Mapping[str, str | None]


class RefMissing(LookupError):
    """A reference the outputs cannot answer; the message names it."""


def lookup(ref: str, outputs: Outputs, *, parse_whole: bool = False) -> JsonValue:
    head, *path = ref.split(".")
    if path and path[0] == "output":
        path = path[1:]
    if head not in outputs:
        raise RefMissing(f"{ref!r}: step {head!r} has no output yet")
    text = outputs[head]
    if text is None or (not path and not parse_whole):
        return text
    try:
        value: JsonValue = json.loads(text)
    except ValueError:
        if not path:
            return text
        raise RefMissing(f"{ref!r}: the output of {head!r} is not JSON") from None
    for part in path:
        value = _child(value, part, ref)
    return value


def _child(value: JsonValue, part: str, ref: str) -> JsonValue:
    if isinstance(value, dict) and part in value:
        return value[part]
    if isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
        return value[int(part)]
    raise RefMissing(f"{ref!r}: no {part!r} in the output")


def resolve(value: JsonValue, outputs: Outputs) -> JsonValue:
    """``value`` with every ``{"$ref": ...}`` replaced by what it refers to."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if len(value) == 1 and isinstance(ref, str):
            return lookup(ref, outputs)
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs) for v in value]
    return value


def holds(condition: Condition, outputs: Outputs) -> bool:
    """Whether ``condition`` holds; a reference that cannot be read counts as null."""
    try:
        value = lookup(condition.ref, outputs, parse_whole=True)
    except RefMissing:
        value = None
    match condition.op:
        case "truthy":
            return bool(value)
        case "falsy":
            return not value
        case "equals":
            return value == condition.value
        case "not_equals":
            return value != condition.value
        case "contains":
            if isinstance(value, str) and isinstance(condition.value, str):
                return condition.value in value
            if isinstance(value, dict):
                return isinstance(condition.value, str) and condition.value in value
            return isinstance(value, list) and condition.value in value
