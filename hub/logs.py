"""Logging set-up for the CLI: text or JSON lines on stderr and in a rotating file, secrets redacted.

Only ``hub/cli.py`` calls ``setup_logging``; library code just uses ``getLogger(__name__)``.
The file (``[log] file``, read back by ``autohands logs``) gets every record at the configured
level with its traceback, whatever a command shows on stderr (``autohands chat``: warnings).
An adapter whose SDK logs a secret (Telegram's token in URLs) installs a ``RedactingFilter`` on
that SDK's loggers.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path

from .config import make_private_dir
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


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
"""A text log line: ``autohands logs`` tells a record's first line by its leading timestamp."""

_NOISY = (
    "httpx",
    "httpx2",  # the openai SDK's own copy of httpx logs every request at INFO
    "httpcore2",
    "httpcore",
    "telegram",
    "discord",
    "slack_bolt",
    "slack_sdk",
    "apscheduler",
    "openai",
    "anthropic",
    "aiohttp.access",
)
"""Libraries that log request URLs (Telegram puts the token in the URL) at INFO/DEBUG."""


class _Fanout(logging.Handler):
    """The root's one handler: its filters (repeats, redaction) run once per record, then each
    destination (stderr, the file) writes it if the record reaches that destination's level."""

    def __init__(self, targets: Iterable[logging.Handler]) -> None:
        super().__init__()
        self.targets = tuple(targets)

    def emit(self, record: logging.LogRecord) -> None:
        for target in self.targets:
            if record.levelno >= target.level:
                target.handle(record)

    def close(self) -> None:
        for target in self.targets:
            target.close()
        super().close()


class _PrivateRotatingFile(RotatingFileHandler):
    """A ``RotatingFileHandler`` whose files (the first and each one after a rotation) are
    created readable by their owner only, and that reports a failed write once on stderr
    instead of a traceback per record (a full disk must not drown the terminal)."""

    failed = False
    _size = 0
    """Bytes in the current file, counted as written: the base class formats each record a
    second time and seeks to the file's end to decide whether to rotate."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            size = len(line.encode("utf-8")) if not line.isascii() else len(line)
            if self.stream is None:
                self.stream = self._open()
                self._size = os.fstat(self.stream.fileno()).st_size
            if self.maxBytes > 0 and self._size and self._size + size > self.maxBytes:
                self.doRollover()  # closes the file; with ``delay`` the next one opens here
                if self.backupCount == 0:  # nothing to keep: start the file over (the base never would)
                    os.truncate(self.baseFilename, 0)
                self.stream, self._size = self._open(), 0
            self.stream.write(line)
            self.stream.flush()  # `autohands logs --follow` shows it now; a crash loses nothing
            self._size += size
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            exc = sys.exc_info()[1]
            print(f"autohands: warning: cannot write the log file {self.baseFilename}: {exc}", file=sys.stderr)


def _file_handler(path: Path, max_bytes: int, backups: int) -> logging.Handler | None:
    """The log file's handler, or None (after one warning on stderr) when it cannot be written.

    The file is opened at its first record, so a command that logs nothing leaves none behind
    (``autohands logs`` can then say that nothing was written yet)."""
    try:
        make_private_dir(path.parent)
        writable = os.access(path, os.W_OK) if path.exists() else os.access(path.parent, os.W_OK | os.X_OK)
        if not writable or path.is_dir():
            raise PermissionError("not writable")
        if path.exists():
            os.chmod(path, 0o600)  # a file from before, or one made by hand: secrets' neighbours
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"autohands: warning: not writing the log file {path} ({reason}); logging to stderr only", file=sys.stderr
        )
        return None
    return _PrivateRotatingFile(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True)


def _formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def setup_logging(
    level: str = "INFO",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    *,
    file: Path | None = None,
    max_bytes: int = 10_000_000,
    backups: int = 5,
    stderr_level: str | None = None,
) -> RedactingFilter:
    """Send log records to stderr and, when ``file`` is given, to a rotating log file.

    Both see the same records after one ``RepeatFilter`` and one ``RedactingFilter`` (secrets
    never reach either); the file always gets tracebacks and incident ids in full.

    Args:
        level: the lowest level written to the file (and to stderr, unless ``stderr_level``).
        fmt: ``text`` or ``json`` (one JSON document a line, its traceback inside).
        secrets: values to mask wherever they appear.
        file: the log file (``Settings.log_file``); its directory is created ``0700`` and the
            file ``0600``. If it cannot be written, one warning goes to stderr and the command
            goes on with stderr only.
        max_bytes: rotate the file when it grows past this size.
        backups: rotated files kept (``autohands.log.1`` …).
        stderr_level: the lowest level shown on stderr, when it differs from ``level``:
            ``autohands chat`` passes ``"WARNING"`` so the terminal stays the conversation while
            the file keeps everything. ``"OFF"`` shows nothing on stderr (all goes to the file).
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    file_level = logging.getLevelNamesMapping()[level.upper()]
    shown = (stderr_level or level).upper()
    targets: list[logging.Handler] = []
    if shown != "OFF":
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setLevel(logging.getLevelNamesMapping()[shown])
        targets.append(stderr)
    if file is not None and (handler := _file_handler(file, max_bytes, backups)) is not None:
        handler.setLevel(file_level)
        targets.append(handler)
    for target in targets:
        target.setFormatter(_formatter(fmt))
    fanout = _Fanout(targets)
    redactor = RedactingFilter(secrets)
    fanout.addFilter(RepeatFilter())
    fanout.addFilter(redactor)
    root.addHandler(fanout)
    lowest = min((t.level for t in targets), default=logging.CRITICAL)
    root.setLevel(lowest)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, lowest))
    return redactor
