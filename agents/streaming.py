"""A model turn as the user sees it: its streamed text, and the reply when it cannot finish.

Partial outbounds: the first one waits like the later ones (``stream_min_chars`` new
characters or ``stream_interval_seconds`` since the first text), so a short, quick answer is
one message, not a send plus an edit that platforms rate-limit alike. Text received but not
yet sent as a partial has not been shown.

A provider may start a stream over (``Restarted``: its retries or a fallback can still give a
whole answer). While nothing was shown, the turn drops the text received so far and the user
sees one whole answer. Once a partial went out, starting over would splice two answers into
one message, so the turn refuses: the provider's error ends the run, and the final reply
keeps the text and says that it is incomplete. A turn that fails with nothing shown ends with
the apology alone, never with a fragment the user had not seen.

Every sentence the user reads about a failed model call is here (one owner).
"""

from __future__ import annotations

from http import HTTPStatus

from hub.errors import ProviderError

from .providers.base import Restarted
from .providers.errors import (
    AuthError,
    BadRequest,
    ContextTooLong,
    NotFound,
    Overloaded,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ServerError,
    StreamInterrupted,
    from_status,
)


class StreamedText:
    """The text of the model turn being streamed, and how much of it the user has seen.

    Args:
        min_chars: new characters that make a partial due.
        interval: seconds since the last partial (or the first text) that make one due.
    """

    __slots__ = ("_last", "interval", "min_chars", "shown", "text")

    def __init__(self, min_chars: int, interval: float) -> None:
        self.min_chars = min_chars
        self.interval = interval
        self.text = ""
        """Received in the current attempt."""
        self.shown = 0
        """Characters of ``text`` sent as a partial; 0 while the user has seen nothing."""
        self._last: float | None = None

    def add(self, delta: str, now: float) -> bool:
        """Take new text; True when ``text`` is due to go out as a partial (then it counts as shown)."""
        self.text += delta
        if self._last is None:
            self._last = now
        if len(self.text) - self.shown >= self.min_chars or now - self._last >= self.interval:
            self.shown, self._last = len(self.text), now
            return True
        return False

    def restart(self, event: Restarted) -> None:
        """The provider starts the answer over: forget the text, or, if some of it was shown,
        raise the error that broke the stream."""
        if self.shown:
            raise event.error
        self.text, self._last = "", None


APOLOGY = "Sorry, I could not finish"
INCOMPLETE = "⚠️ The answer above is incomplete"

_REASONS: tuple[tuple[type[ProviderError], str], ...] = (
    (
        AuthError,
        "the model provider refused the hub's credentials{http}: the API key was refused; "
        "the operator should check {section} api_key",
    ),
    (RateLimited, "the model provider is rate-limiting the hub{http}; please try again in a minute"),
    (Overloaded, "the model provider is overloaded right now{http}; please try again in a few minutes"),
    (ServerError, "the model provider failed on its side{http}: the provider is failing; please try again in a moment"),
    (ProviderTimeout, "the model provider took too long to answer; please try again in a moment"),
    (StreamInterrupted, "the connection to the model broke off in the middle of the answer; please try again"),
    (
        ProviderUnavailable,
        "the hub cannot reach the model provider: nothing answers at {section} base_url (connection "
        "refused, unknown host or TLS failure); if this lasts, the operator should check that it is "
        "running and its base_url",
    ),
    (
        NotFound,
        "the model provider answered {status}: the model or URL was not found; the operator should "
        "check {section} model and base_url (is base_url missing /v1? OpenAI-compatible servers "
        "usually need it to end in /v1)",
    ),
    (ContextTooLong, "the conversation is too long for the model{http}; /new starts afresh"),
    (
        BadRequest,
        "the model provider refused the request{http}; the operator can find why in the log under the incident id",
    ),
)
"""Subclasses before their bases: the first match wins. Only ``ContextTooLong`` advises /new:
any other refusal (a wrong URL or model) would fail the same way in a new conversation."""

_UNKNOWN = "the model provider is not answering right now; please try again in a moment"


def failure_reason(exc: ProviderError) -> str:
    """One fixed, secret-free clause per kind of failure, naming the HTTP status and the
    provider's section when known (never the provider's own message)."""
    if type(exc) is ProviderError and exc.status is not None and exc.status >= 400:
        exc = from_status(exc.provider, exc.status, "")  # a plugin's bare error: its status names the kind
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason.format(
                http=f" (HTTP {exc.status})" if exc.status else "",
                status=_status_text(exc.status),
                section=f"[providers.{exc.provider}]" if exc.provider else "the provider's",
            )
    return _UNKNOWN


def _status_text(status: int | None) -> str:
    """``404 Not Found``, as a person reads a status."""
    if status is None:
        return "an error"
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def provider_failure_reason(exc: ProviderError, incident: str) -> str:
    """``failure_reason`` plus the incident id that finds the error in the logs."""
    return f"{failure_reason(exc)}. (incident {incident})"


def timeout_reason(seconds: float) -> str:
    """The run's own deadline (``[agent] timeout_seconds``) ran out."""
    return f"this took longer than the {seconds:g} s limit for one request."


def failure_reply(shown: str, reason: str) -> str:
    """The final reply of a turn that cannot finish: the apology alone, or, when part of the
    answer was shown, that text followed by the warning that it is incomplete."""
    if shown:
        return f"{shown}\n\n{INCOMPLETE}: {reason}"
    return f"{APOLOGY}: {reason}"
