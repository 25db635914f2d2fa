"""Logging set-up for the CLI: text or JSON lines, with secrets redacted.

Only ``hub/cli.py`` calls ``setup_logging``; library code just uses ``getLogger(__name__)``.
An adapter whose SDK logs a secret (Telegram's token in URLs) installs a ``RedactingFilter`` on
that SDK's loggers.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from .redact import mask_urls

# Token shapes that must never reach a log even if nobody registered them as secrets.
_TOKEN_PATTERNS = re.compile(
    r"(?:\b\d{6,12}:[A-Za-z0-9_-]{30,}\b)"  # Telegram bot token
    r"|(?:\bxox[abposr]-[A-Za-z0-9-]{10,}\b)"  # Slack tokens
    r"|(?:\bxapp-[A-Za-z0-9-]{10,}\b)"
    r"|(?:\bsk-(?:ant-)?[A-Za-z0-9_-]{16,}\b)"  # OpenAI / Anthropic keys
    r"|(?:\b[MN][A-Za-z\d]{23,25}\.[\w-]{6}\.[\w-]{27,}\b)"  # Discord bot token
)


class RedactingFilter(logging.Filter):
    """Replaces known secret values and token-shaped strings in a record's message and traceback.

    On a handler it covers everything that handler writes (``setup_logging``). A library that
    logs a secret itself (PTB and httpx put the Telegram token in URLs) needs it on its loggers
    instead, since logger filters see only records created on that very logger: ``install``
    attaches it to every logger under the given names, existing children included.

    Args:
        secrets: values to replace with ``***``.
        min_length: shorter values are ignored (they would blank out ordinary words).
    """

    def __init__(self, secrets: Iterable[str] = (), *, min_length: int = 6) -> None:
        super().__init__()
        self._min_length = min_length
        self._secrets = sorted({s for s in secrets if s and len(s) >= min_length}, key=len, reverse=True)
        self._installed: list[logging.Logger] = []

    def add(self, secret: str) -> None:
        if secret and len(secret) >= self._min_length and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, "***")
        return mask_urls(_TOKEN_PATTERNS.sub("***", text))

    def filter(self, record: logging.LogRecord) -> bool:
        # The message is frozen now, redacted: a library may log a dict it mutates afterwards
        # (PTB's getFile result gains a URL with the token), and handlers format records later.
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info:
            # Format the traceback now so that redaction covers it too.
            formatter = logging.Formatter()
            record.exc_text = self.redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True

    def install(self, *names: str) -> None:
        """Attach to the loggers ``names`` and every existing logger whose name starts with one (once)."""
        if self._installed:
            return
        existing = [n for n in logging.root.manager.loggerDict if n.startswith(names)]
        for name in {*names, *existing}:
            target = logging.getLogger(name)
            target.addFilter(self)
            self._installed.append(target)

    def uninstall(self) -> None:
        """Detach from the loggers ``install`` attached to."""
        for target in self._installed:
            target.removeFilter(self)
        self._installed.clear()


@dataclass(slots=True)
class _Seen:
    since: float
    """When this kind's window began."""
    shown: int = 1
    held: int = 0
    """Records of this kind left out in the window."""


class RepeatFilter(logging.Filter):
    """Lets through at most ``burst`` records of one kind per ``window`` seconds, then counts.

    A kind is the logger, the level and the message template (``%s`` arguments aside), so an
    error repeated in a loop — a full disk, an unreachable platform — cannot fill the log:
    the first ``burst`` lines show, the rest are counted, and the next line let through after
    the window says how many were left out. Records below ``min_level`` always pass.
    """

    def __init__(
        self,
        *,
        burst: int = 5,
        window: float = 60.0,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst, self.window, self.min_level, self._clock = burst, window, min_level, clock
        self._kinds: dict[tuple[str, int, str], _Seen] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        now = self._clock()
        kind = (record.name, record.levelno, str(record.msg))
        seen = self._kinds.get(kind)
        if seen is None or now - seen.since >= self.window:
            self._kinds[kind] = _Seen(now)
            if seen is not None and seen.held:
                record.msg = f"{record.getMessage()} (and {seen.held} more like it since, not shown)"
                record.args = None
            if len(self._kinds) > 10_000:  # kinds are templates, so this is a bug elsewhere: forget the oldest
                self._kinds.pop(next(iter(self._kinds)))
            return True
        if seen.shown < self.burst:
            seen.shown += 1
            return True
        seen.held += 1
        return False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_text:
            doc["exc"] = record.exc_text
        elif record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> RedactingFilter:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    redactor = RedactingFilter(secrets)
    handler.addFilter(RepeatFilter())
    handler.addFilter(redactor)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries log request URLs (Telegram puts the token in the URL) at INFO/DEBUG.
    for noisy in (
        "httpx",
        "httpcore",
        "telegram",
        "discord",
        "slack_bolt",
        "slack_sdk",
        "apscheduler",
        "openai",
        "anthropic",
        "aiohttp.access",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return redactor
