"""What the three platform probes share (``hub.extensions.Probing``): the section validated into
its config, and a failed identity call read back as a ``Check`` that names its cause.

A probe never raises and never puts a token in its row: the platforms' own error texts are not
shown, only the status or error code and what the operator should do.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from hub.agent import Check
from hub.config import validate_section
from hub.errors import ChannelError, ConfigError
from hub.redact import masked_url

__all__ = ["failed", "network_cause", "validated"]

C = TypeVar("C", bound=BaseModel)


def validated(model: type[C], name: str, section: dict[str, Any]) -> C | Check:
    """The section as ``model``, or the ERROR row naming the bad key (or unset variable)."""
    try:
        return validate_section(model, {k: v for k, v in section.items() if k != "kind"}, f"channels.{name}")
    except ConfigError as exc:
        return Check(f"channel {name}", "ERROR", str(exc), fix=f"correct [channels.{name}] in the config file")


def failed(name: str, exc: ChannelError, *, url: str, key: str, refused: bool) -> Check:
    """The row for an identity call that failed with ``exc``.

    Args:
        url: where the call went (shown without credentials).
        key: the config key of the credential the call used (``token``, ``app_token``).
        refused: the platform refused that credential (401/403, ``invalid_auth``).
    """
    what, section = f"channel {name}", f"[channels.{name}]"
    if refused:
        return Check(
            what,
            "ERROR",
            f"the {key} was refused ({exc.status})",
            fix=f"check {section} {key}: copy it again from the platform's app settings",
        )
    if exc.status is None or exc.status == "":
        return Check(
            what,
            "ERROR",
            f"nothing answers at {masked_url(url)} ({network_cause(exc)})",
            fix="check the network (DNS, proxy, firewall), or the section's API URL if you set one",
        )
    if exc.retry_after is not None:
        return Check(what, "WARNING", f"rate limited ({exc.status}); the {key} was not refused", fix="try again later")
    return Check(what, "ERROR", f"the platform answered {exc.status}", fix=f"check {section}; try again later")


def network_cause(exc: BaseException) -> str:
    """``connection refused``, ``unknown host``, ``timed out`` or ``cannot connect``."""
    cause: BaseException | None = exc
    texts: list[str] = []
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, TimeoutError):
            return "timed out"
        texts.append(f"{type(cause).__name__} {cause}".lower())
        cause = cause.__cause__ or cause.__context__
    text = " ".join(texts)
    if "refused" in text or "all connection attempts failed" in text:
        return "connection refused"
    if "name or service" in text or "getaddrinfo" in text or "nodename" in text or "name resolution" in text:
        return "unknown host"
    if "timeout" in text or "timed out" in text:
        return "timed out"
    return "cannot connect"
