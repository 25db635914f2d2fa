"""``autohands doctor``'s live check of one ``[providers.<name>]`` section (``hub.extensions.Probing``).

One round trip through the provider's own SDK client (its ``base_url``, key and headers), read
back as a ``Check`` whose detail names the cause: a refused key, a URL that answers 404 (an
OpenAI-compatible ``base_url`` missing ``/v1``), nothing listening, a failing server. Never a
secret: the key is not in any text here, and URLs are shown without their credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hub.agent import Check
from hub.config import validate_section
from hub.errors import ConfigError, ProviderError
from hub.redact import mask_urls, masked_url

from .config import API_KEY_ENV, ProviderConfig
from .errors import (
    AuthError,
    BadRequest,
    NotFound,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ServerError,
    StreamInterrupted,
)

__all__ = ["RoundTrip", "probe_section"]

RoundTrip = Callable[[str, ProviderConfig], Awaitable[tuple[str, str]]]
"""``round_trip(name, config)``: one live request; returns the row's status and what answered
(``ok``, ``3 models; 'gpt-4o' listed``), or raises ``ProviderError``/``ConfigError``."""

_DEFAULT_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}


async def probe_section(name: str, section: Mapping[str, Any], round_trip: RoundTrip, *, timeout: float) -> Check:
    """Validate ``section``, then run ``round_trip`` within ``timeout`` seconds; never raises."""
    what = f"provider {name}"
    try:
        config = validate_section(ProviderConfig, section, f"providers.{name}")
        config.resolve_api_key(name)
    except ConfigError as exc:
        return Check(what, "ERROR", str(exc), fix=f"correct [providers.{name}] in the config file")
    # The probe's own limits: one try, no longer than the doctor waits.
    config = config.model_copy(
        update={
            "max_retries": 0,
            "timeout_seconds": timeout,
            "connect_timeout_seconds": min(timeout, config.connect_timeout_seconds),
        }
    )
    try:
        async with asyncio.timeout(timeout):
            status, identity = await round_trip(name, config)
    except TimeoutError:
        return _unreachable(what, config, f"no answer within {timeout:g} s")
    except ConfigError as exc:
        return Check(what, "ERROR", str(exc), fix=f"correct [providers.{name}] in the config file")
    except ProviderError as exc:
        return failed_check(what, name, config, exc)
    except Exception as exc:  # the SDK refused the settings themselves; a probe never raises
        cause = mask_urls(_without_key(f"{type(exc).__name__}: {exc}", config))
        return Check(what, "ERROR", f"cannot check {_url(config)}: {cause}", fix=f"check [providers.{name}] base_url")
    fix = f"check [providers.{name}] model" if status != "ok" else ""
    return Check(what, status, f"{identity} at {_url(config)}", fix=fix)


def failed_check(what: str, name: str, config: ProviderConfig, exc: ProviderError) -> Check:
    """The row for a probe the provider answered with ``exc``: its cause, and what to do."""
    http = f"HTTP {exc.status}: " if exc.status else ""
    section = f"[providers.{name}]"
    if isinstance(exc, AuthError):
        return Check(
            what,
            "ERROR",
            f"{http}the API key was refused by {_url(config)}",
            fix=f"check {section} api_key (or ${API_KEY_ENV.get(config.kind, 'its environment variable')}): "
            "it must be a valid key for this endpoint",
        )
    if isinstance(exc, NotFound):
        return _not_found(what, section, config, http)
    if isinstance(exc, RateLimited):
        return Check(what, "WARNING", f"{http}rate limited (the key was accepted)", fix="try again in a minute")
    if isinstance(exc, ServerError):
        fix = "try again later; if it lasts, check the provider's status"
        return Check(what, "ERROR", f"{http}the provider is failing", fix=fix)
    if isinstance(exc, ProviderTimeout | ProviderUnavailable | StreamInterrupted):
        return _unreachable(what, config, _transport_cause(exc))
    if isinstance(exc, BadRequest):
        return Check(
            what,
            "ERROR",
            f"{http}the request was refused ({_without_key(str(exc), config)})",
            fix=f"check {section} model",
        )
    return Check(what, "ERROR", _without_key(str(exc), config), fix=f"check {section}")


def _not_found(what: str, section: str, config: ProviderConfig, http: str) -> Check:
    url = _url(config)
    if config.kind == "openai" and config.base_url is not None and not config.base_url.rstrip("/").endswith("/v1"):
        return Check(
            what,
            "ERROR",
            f"{http}nothing found at {url}: is base_url missing /v1?",
            fix=f"set {section} base_url = {masked_url(config.base_url.rstrip('/') + '/v1')!r}",
        )
    return Check(
        what,
        "ERROR",
        f"{http}the model {config.model!r} or the URL {url} was not found",
        fix=f"check {section} model and base_url",
    )


def _unreachable(what: str, config: ProviderConfig, cause: str) -> Check:
    return Check(
        what,
        "ERROR",
        f"nothing answers at {_url(config)} ({cause})",
        fix="start the model server, or correct base_url (host and port)",
    )


def _transport_cause(exc: ProviderError) -> str:
    """``connection refused``, ``unknown host`` or ``timed out``, read from the error chain."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and "name or service not known" in str(cause).lower():
            return "unknown host"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, ProviderTimeout):
        return "timed out"
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
        return "unknown host"
    return "cannot connect"


def _url(config: ProviderConfig) -> str:
    return masked_url(config.base_url or _DEFAULT_URLS.get(config.kind, f"the {config.kind} provider"))


def _without_key(text: str, config: ProviderConfig) -> str:
    """``text`` with the configured key masked, should a server have echoed it."""
    try:
        key = config.resolve_api_key("")
    except ConfigError:
        return text
    return text.replace(key, "***") if len(key) >= 4 else text
