"""Configuration: shipped defaults ← user file ← environment, validated by pydantic.

(Settings loading is completed in this module; ``validate_section`` is the helper every
extension uses to validate its own section with errors that name the key.)
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError, prefix: str) -> str:
    """One line per problem: ``channels.telegram.token: Field required (got …)``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        got = err.get("input")
        shown = "" if err["type"] == "missing" or isinstance(got, dict) else f" (got {_redact(loc, got)!r})"
        lines.append(f"{loc}: {err['msg']}{shown}")
    return "; ".join(lines)


def _redact(loc: str, value: Any) -> Any:
    lowered = loc.lower()
    if any(word in lowered for word in ("token", "secret", "key", "password")):
        return "***"
    return value


def validate_section(model: type[M], data: Any, prefix: str) -> M:
    """Validate one config section; raise ``ConfigError`` naming each bad key under ``prefix``."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {describe_validation_error(exc, prefix)}") from None
