"""Logging set-up for the CLI: text or JSON lines, with secrets redacted.

Only ``hub/cli.py`` calls ``setup_logging``; library code just uses ``getLogger(__name__)``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
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
    """Replaces known secret values and token-shaped strings in the formatted message."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 6 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, "***")
        return mask_urls(_TOKEN_PATTERNS.sub("***", text))

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = self.redact(msg)
        if record.exc_info:
            # Format the traceback now so that redaction covers it too.
            formatter = logging.Formatter()
            record.exc_text = self.redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        if clean != msg or record.args:
            record.msg, record.args = clean, None
        return True


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
    handler.addFilter(redactor)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries log request URLs (Telegram puts the token in the URL) at INFO/DEBUG.
    for noisy in ("httpx", "httpcore", "telegram", "discord", "slack_bolt", "slack_sdk", "apscheduler",
                  "openai", "anthropic", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return redactor
