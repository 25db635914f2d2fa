"""The provider layer's errors, and the translation of SDK and transport errors onto them.

    ProviderError (hub.errors)
    ├── RateLimited          429; ``retry_after`` says how long the server asked us to wait
    ├── ServerError          5xx, 409
    │   └── Overloaded       529, Anthropic's ``overloaded_error``
    ├── ProviderTimeout      connect or read timeout
    ├── StreamInterrupted    the connection broke off mid-stream, or the body ended early
    ├── ProviderUnavailable  the server could not be reached
    ├── AuthError            401/403, missing credentials (never retried)
    └── BadRequest           the request was refused as invalid (never retried)
        ├── NotFound         404/405: wrong ``base_url`` (often a missing ``/v1``) or model
        └── ContextTooLong   the conversation no longer fits the model's context window

An error the provider reports inside an open stream (an Anthropic ``error`` event, an OpenAI
``error`` chunk) arrives with the stream's 200 status; the body's error type gives it its
class, so an overload is ``Overloaded``, not a broken connection.

Both installed SDKs (``openai`` 3.x, ``anthropic`` 2.x) run on ``httpx2``. The openai SDK
wraps a dropped stream in ``APIConnectionError``; the anthropic SDK lets the bare
``httpx2.RemoteProtocolError`` escape, so each mapper also handles raw transport errors
(``httpx2`` and, for SDK builds on it, classic ``httpx``).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2

from hub.errors import ProviderError

try:  # older SDK releases run on httpx; map its errors too when it is installed
    import httpx as _httpx

    _TIMEOUTS: tuple[type[Exception], ...] = (httpx2.TimeoutException, _httpx.TimeoutException)
    _TRANSPORT: tuple[type[Exception], ...] = (httpx2.TransportError, _httpx.TransportError)
except ImportError:  # pragma: no cover - httpx is optional
    _TIMEOUTS = (httpx2.TimeoutException,)
    _TRANSPORT = (httpx2.TransportError,)


class RateLimited(ProviderError):
    """429: too many requests or tokens; ``retry_after`` is the server's requested wait."""


class ServerError(ProviderError):
    """The provider failed on its side (5xx)."""


class Overloaded(ServerError):
    """529 / ``overloaded_error``: the provider is up but has no capacity right now."""


class ProviderTimeout(ProviderError):
    """No answer (or no next chunk) within the configured timeout."""


class StreamInterrupted(ProviderError):
    """A streamed response broke off after it started."""


class ProviderUnavailable(ProviderError):
    """The provider could not be reached (DNS, refused connection, TLS)."""


class AuthError(ProviderError):
    """The credentials were refused or are missing; retrying cannot help."""


class BadRequest(ProviderError):
    """The provider refused the request itself (bad parameters, unknown model, too long)."""


class NotFound(BadRequest):
    """404 (or 405): nothing answers at that URL (a ``base_url`` missing ``/v1``), or no such model."""


class ContextTooLong(BadRequest):
    """The request was refused because the conversation is longer than the model takes."""


# How vendors word a context-length refusal (OpenAI's ``context_length_exceeded``, Anthropic's
# "prompt is too long", vLLM/llama.cpp "maximum context length"); any other 400 is not one,
# and telling the user to start afresh would send them the wrong way.
_CONTEXT_TOO_LONG = re.compile(
    r"context[ _]length|context window|prompt is too long|too many tokens|maximum context|exceeds? the context",
    re.IGNORECASE,
)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - time.time())


def from_status(provider: str, status: int, message: str, headers: Any = None) -> ProviderError:
    """The error type for an HTTP status (``status`` 529 is Anthropic's "overloaded")."""
    text = f"{provider}: HTTP {status}: {_short(message)}"
    retry_after = parse_retry_after(headers)
    if status == 429:
        return RateLimited(text, retryable=True, retry_after=retry_after, status=status, provider=provider)
    if status in (401, 403):
        return AuthError(f"{text} (check the provider's api_key)", status=status, provider=provider)
    if status == 408:
        return ProviderTimeout(text, retryable=True, retry_after=retry_after, status=status, provider=provider)
    if status == 529:
        return Overloaded(text, retryable=True, retry_after=retry_after, status=status, provider=provider)
    if status == 409 or status >= 500:
        return ServerError(text, retryable=True, retry_after=retry_after, status=status, provider=provider)
    if status in (404, 405):  # 405: a server's other route answers POST to a URL missing /v1
        return NotFound(text, status=status, provider=provider)
    if status == 413 or _CONTEXT_TOO_LONG.search(message):
        return ContextTooLong(text, status=status, provider=provider)
    return BadRequest(text, status=status, provider=provider)


# A failure inside an open stream comes with the stream's 200 status (Anthropic: an ``error``
# event, which the SDK also raises that way; OpenAI: an ``error`` chunk), so the body's error
# type, or OpenAI's ``code``, decides. Unknown types count as server errors.
_BODY_TYPES = {
    "overloaded_error": 529,
    "api_error": 500,
    "rate_limit_error": 429,
    "authentication_error": 401,
    "permission_error": 403,
    "invalid_request_error": 400,
    "request_too_large": 413,
    "not_found_error": 404,
    "timeout_error": 504,
    "server_error": 500,  # OpenAI
    "rate_limit_exceeded": 429,  # OpenAI's code (its type is "requests" or "tokens")
}


def stream_error(provider: str, body: Any) -> ProviderError:
    """An error reported inside an open stream (OpenAI: a chunk with ``error``; Anthropic: an
    ``error`` event), typed by the body's error type; unknown types count as server errors."""
    err = body.get("error", body) if isinstance(body, dict) else body
    message = err.get("message") if isinstance(err, dict) else None
    if not isinstance(message, str) or not message:
        message = "an error occurred during streaming"
    return from_status(provider, _body_status(body) or 500, message)


def _body_status(body: Any) -> int | None:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return _BODY_TYPES.get(str(err.get("code"))) or _BODY_TYPES.get(str(err.get("type")))
    return None


def _message(exc: Any) -> str:
    """The vendor's own error message from the body, not the SDK's ``Error code: …`` dump."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
    return str(getattr(exc, "message", exc))


def _short(message: str, limit: int = 300) -> str:
    message = " ".join(str(message).split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _timeout(provider: str, exc: Exception, streaming: bool) -> ProviderError:
    """An SDK timeout, unless a refused connection or failed DNS lookup is behind it: the
    aiohttp transport reports those as connect *timeouts*, which sends operators the wrong way."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and not isinstance(cause, TimeoutError):
            return _transport(provider, cause, streaming)
        cause = cause.__cause__ or cause.__context__
    return ProviderTimeout(f"{provider}: timed out", retryable=True, provider=provider)


def _transport(provider: str, exc: BaseException, streaming: bool) -> ProviderError:
    kind = type(exc).__name__
    if isinstance(exc, _TIMEOUTS):
        return ProviderTimeout(f"{provider}: timed out ({kind})", retryable=True, provider=provider)
    if streaming:
        message = f"{provider}: the stream broke off ({kind}: {_short(str(exc))})"
        return StreamInterrupted(message, retryable=True, provider=provider)
    message = f"{provider}: cannot connect ({kind}: {_short(str(exc))})"
    return ProviderUnavailable(message, retryable=True, provider=provider)


@contextmanager
def map_openai_errors(provider: str, *, streaming: bool = False) -> Iterator[None]:
    """Translate ``openai`` SDK and transport errors raised inside the block.

    Args:
        provider: the configured provider name, for messages.
        streaming: True around the iteration of a started stream, where a connection
            error means the stream broke off rather than that the server is unreachable.
    """
    import openai

    try:
        yield
    except openai.APIStatusError as exc:
        raise from_status(provider, exc.status_code, _message(exc), exc.response.headers) from exc
    except openai.APITimeoutError as exc:
        raise _timeout(provider, exc, streaming) from exc
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        raise _transport(provider, cause, streaming) from exc
    except openai.APIError as exc:  # an error chunk inside a stream, or an unparseable response
        status = _body_status(exc.body) or 500
        raise from_status(provider, status, _message(exc)) from exc
    except _TRANSPORT as exc:
        raise _transport(provider, exc, streaming) from exc
    except openai.OpenAIError as exc:  # missing credentials and other client-side refusals
        raise AuthError(f"{provider}: {_short(str(exc))}", provider=provider) from exc


@contextmanager
def map_anthropic_errors(provider: str, *, streaming: bool = False) -> Iterator[None]:
    """Translate ``anthropic`` SDK and transport errors raised inside the block (see above)."""
    import anthropic

    try:
        yield
    except anthropic.APIStatusError as exc:
        status = exc.status_code
        if status < 400:  # an ``error`` event inside a 200 stream
            status = _body_status(exc.body) or 500
        raise from_status(provider, status, _message(exc), exc.response.headers) from exc
    except anthropic.APITimeoutError as exc:
        raise _timeout(provider, exc, streaming) from exc
    except anthropic.APIConnectionError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        raise _transport(provider, cause, streaming) from exc
    except anthropic.APIError as exc:
        raise ServerError(f"{provider}: {_short(exc.message)}", retryable=False, provider=provider) from exc
    except _TRANSPORT as exc:
        raise _transport(provider, exc, streaming) from exc
    except anthropic.CredentialsError as exc:
        raise AuthError(f"{provider}: {_short(str(exc))}", provider=provider) from exc
