"""``autohands logs``: read the log file (``[log] file``) without knowing where it is.

    autohands logs [-n N]           the last N lines (default 50)
    autohands logs --follow [-n N]  then every new line, across rotations, until Ctrl+C
    autohands logs --incident ID    every line of one incident, tracebacks included

An incident id is what a chat user is shown ("something went wrong on my side (incident
ab12cd34)"); the log line that says so carries the id and, in the text format, is followed by
its traceback's lines, which start without a timestamp. ``--incident`` reads the rotated files
too, oldest first.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from .cli_base import Command, Parser
from .config import Settings

FOLLOW_POLL_SECONDS = 0.25
"""How often ``--follow`` looks for new lines: a person reading does not notice the wait, and
polling works the same on every platform (no inotify)."""

_RECORD_START = re.compile(r"^(?:\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}|\{)")
"""A text record's first line starts with its timestamp; a JSON record is one ``{…}`` line."""
_TAIL_BLOCK = 64 * 1024


class LogsError(Exception):
    """A one-line problem with the log file (none configured, none written yet)."""


def _add_logs(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    logs = sub.add_parser("logs", parents=[common], help="show the log file: its end, new lines, or one incident")
    which = logs.add_mutually_exclusive_group()
    which.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl+C")
    which.add_argument("--incident", metavar="ID", help="every line of the incident a chat reply named")
    logs.add_argument("-n", "--lines", type=_count, default=50, metavar="N", help="the last N lines (default 50)")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _logs(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    out = sys.stdout
    try:
        path = log_path(settings)
        if args.incident is not None:
            return _incident(path, args.incident, out)
        with path.open("rb") as f:
            for line in tail(f, args.lines):
                out.write(line)
            out.flush()
            if args.follow:  # from where the tail ended: a line written meanwhile is not lost
                follow(path, f, out)
    except LogsError as exc:
        print(f"autohands: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # how --follow ends
        return 0
    except BrokenPipeError:  # `autohands logs | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # removed or made unreadable since we looked
        print(f"autohands: error: cannot read the log file: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def log_path(settings: Settings) -> Path:
    """The log file, once it exists; ``LogsError`` saying why there is none."""
    path = settings.log_file
    if path is None:
        raise LogsError("no log file: [log] file is empty, so the hub logs to stderr only; set it to keep a log")
    if not path.is_file():
        raise LogsError(f"no log file at {path} yet: it is written once the hub has logged something")
    return path


def tail(f: BinaryIO, count: int) -> list[str]:
    """The last ``count`` lines of ``f``, read from its end (a large file is not read whole);
    ``f`` is left at the end it read to."""
    end = f.seek(0, os.SEEK_END)
    data, start = b"", end
    while count and start > 0 and data.count(b"\n") <= count:
        step = min(_TAIL_BLOCK, start)
        start -= step
        f.seek(start)
        data = f.read(step) + data
    f.seek(end)
    lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
    return lines[-count:] if count else []


def rotated(path: Path) -> list[Path]:
    """``path`` and its rotated files (``autohands.log.1`` …), oldest first."""
    olds: list[tuple[int, Path]] = []
    for candidate in path.parent.glob(path.name + ".*"):
        suffix = candidate.name[len(path.name) + 1 :]
        if suffix.isdigit():
            olds.append((int(suffix), candidate))
    return [p for _, p in sorted(olds, reverse=True)] + [path]


def incident_lines(files: list[Path], incident: str) -> Iterator[str]:
    """Every record mentioning ``incident`` and the lines that continue it (its traceback)."""
    inside = False
    for path in files:
        try:
            f = path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:  # rotated away while we read the others
            continue
        with f:
            for line in f:
                if _RECORD_START.match(line):
                    inside = incident in line
                if inside:
                    yield line


def _incident(path: Path, incident: str, out: TextIO) -> int:
    wanted = incident.strip().removeprefix("incident").strip(" ()")
    if not re.fullmatch(r"[0-9a-fA-F]{4,32}", wanted):
        raise LogsError(f"{incident!r} is not an incident id (eight hex digits, such as ab12cd34)")
    files = rotated(path)
    found = False
    for line in incident_lines(files, wanted.lower()):
        out.write(line)
        found = True
    if not found:
        olds = len(files) - 1
        kept = f" or its {olds} rotated file(s)" if olds else ""
        raise LogsError(f"no line mentions incident {wanted} in {path}{kept}; it may have been rotated away")
    out.flush()
    return 0


def follow(path: Path, f: BinaryIO, out: TextIO, *, poll: float = FOLLOW_POLL_SECONDS) -> None:
    """Print what is appended to ``path`` (open as ``f``) from ``f``'s position, forever
    (Ctrl+C ends it). A rotation (the file replaced, or cut shorter than what was read) is
    followed to the new file, once the old one is read to its end."""
    try:
        pending = b""
        while True:
            chunk = f.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    out.write(line.decode("utf-8", errors="replace") + "\n")
                out.flush()
                continue
            if _replaced(path, f):
                try:
                    new = path.open("rb")
                except FileNotFoundError:  # between the rename and the new file: next round
                    pass
                else:
                    f.close()
                    f = new
                    continue
            time.sleep(poll)
    finally:
        f.close()


def _replaced(path: Path, f: BinaryIO) -> bool:
    """Whether ``path`` is no longer the file ``f`` reads (rotated), or was cut short."""
    try:
        now = path.stat()
    except FileNotFoundError:  # between the rename and the new file's first line
        return False
    mine = os.fstat(f.fileno())
    return (now.st_ino, now.st_dev) != (mine.st_ino, mine.st_dev) or now.st_size < f.tell()


LOGS = Command("logs", _add_logs, _logs)
