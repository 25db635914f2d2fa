"""``autohands memory``: what the agent remembers, from the command line (issue 25).

    autohands memory list [SCOPE] [--limit N]
    autohands memory search WORDS… [SCOPE] [--limit N]
    autohands memory export [SCOPE] [--out FILE]
    autohands memory import FILE
    autohands memory forget ID [SCOPE]
    autohands memory forget --all SCOPE [--yes]

    SCOPE: --user CHANNEL:ID (with the identities [memory] links joins to it)
           | --conversation CHANNEL:CHAT[:THREAD] | --global

The operator at the terminal may read and forget every scope; with no SCOPE, ``list``,
``search`` and ``export`` cover them all. ``export`` writes JSON Lines (one memory a line, the
file private: memories are), ``import`` reads them back with ``MemoryBackend.restore`` (ids kept,
so importing twice adds nothing) and imports nothing unless every line is valid. Exit status:
0 done, 1 the memory says no (one line on stderr), 2 a usage or config error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .cli_base import Command, Parser, positive_int
from .config import Settings
from .errors import AutoHandsError
from .memory.base import Memory, Scope, ScopeKind

if TYPE_CHECKING:  # the backend is opened when a command runs
    from .memory.access import MemoryAccess

__all__ = ["MEMORY", "BadLine", "memory_from_json", "memory_json", "read_export", "scope_label"]

_ACTIONS = ("list", "search", "export", "import", "forget")
_TEXT_CHARS = 100
_KINDS: dict[str, ScopeKind] = {"user": "user", "conversation": "conversation", "global": "global"}
_FIELDS = ("id", "scope_kind", "scope_key", "text", "created_at", "source", "metadata")


class BadLine(ValueError):
    """A line of an export that is not one memory; the message says what is wrong with it."""


# ---------------------------------------------------------------------------- the parser
def _identity(text: str) -> str:
    channel, _, user_id = text.partition(":")
    if not channel or not user_id:
        raise argparse.ArgumentTypeError(f"expected CHANNEL:USER_ID (e.g. telegram:12345), got {text!r}")
    return text


def _conversation(text: str) -> str:
    channel, _, chat = text.partition(":")
    if not channel or not chat:
        raise argparse.ArgumentTypeError(f"expected CHANNEL:CHAT[:THREAD] (e.g. telegram:-100123), got {text!r}")
    return text


def _scope_options(parser: Parser, *, required: bool = False) -> None:
    whose = parser.add_mutually_exclusive_group(required=required)
    whose.add_argument("--user", type=_identity, metavar="CHANNEL:ID", help="one user's (and linked identities')")
    whose.add_argument("--conversation", type=_conversation, metavar="KEY", help="one conversation's")
    whose.add_argument("--global", dest="everyone", action="store_true", help="the global scope (everyone reads)")


def _add_memory(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    """The ``memory`` command and its actions, under the CLI's subcommands ``sub``."""
    memory = sub.add_parser("memory", parents=[common], help="the agent's memories: list, search, export, forget")
    actions = memory.add_subparsers(dest="memory_command", metavar="ACTION", parser_class=Parser)
    listing = actions.add_parser("list", parents=[common], help="memories, newest first")
    _scope_options(listing)
    listing.add_argument("--limit", type=positive_int, default=100, help="show at most N (default 100)")
    search = actions.add_parser("search", parents=[common], help="the memories that best match WORDS")
    search.add_argument("words", nargs="+", metavar="WORDS")
    _scope_options(search)
    search.add_argument("--limit", type=positive_int, default=10, help="show at most N (default 10)")
    export = actions.add_parser("export", parents=[common], help="write memories as JSON Lines")
    _scope_options(export)
    export.add_argument("--out", metavar="FILE", help="the file to write (private, 0600); default stdout")
    restore = actions.add_parser("import", parents=[common], help="read memories from an export")
    restore.add_argument("file", metavar="FILE", help="a file 'autohands memory export' wrote ('-': stdin)")
    forget = actions.add_parser("forget", parents=[common], help="forget one memory, or all of a scope")
    forget.add_argument("memory_id", metavar="ID", nargs="?", help="the memory's id (see 'autohands memory list')")
    _scope_options(forget)
    forget.add_argument("--all", action="store_true", help="every memory of the scope given")
    forget.add_argument("--yes", action="store_true", help="do not ask before forgetting them all")


def _memory(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    if args.memory_command not in _ACTIONS:
        parser.error(f"'memory' needs an action: {', '.join(_ACTIONS)}")
    if args.memory_command == "forget":
        named = args.user or args.conversation or args.everyone
        if args.all == bool(args.memory_id):
            parser.error("'memory forget' needs an ID or --all (not both)")
        if args.all and not named:
            parser.error("'memory forget --all' needs --user CHANNEL:ID, --conversation KEY or --global")
    return asyncio.run(cli_memory(settings, args))


# ---------------------------------------------------------------------------- running
async def cli_memory(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``autohands memory`` action; errors are one line on stderr and exit 1."""
    from .memory.open import open_memory

    access = open_memory(settings)
    if access is None:
        return _fail("memory is off ([memory] enabled = false)")
    try:
        return await _act(access, args)
    except BadLine as exc:
        return _fail(f"{args.file}: {exc}; nothing was imported")
    except (AutoHandsError, OSError, sqlite3.Error) as exc:
        return _fail(str(exc) or type(exc).__name__)
    finally:
        await access.close()


async def _act(access: MemoryAccess, args: argparse.Namespace) -> int:
    command: str = args.memory_command
    if command == "list":
        return await _list(access, args)
    if command == "search":
        return await _search(access, args)
    if command == "export":
        return await _export(access, args)
    if command == "import":
        return await _import(access, args)
    return await _forget(access, args)


def _named(access: MemoryAccess, args: argparse.Namespace) -> tuple[Scope, ...] | None:
    """The scopes ``--user``, ``--conversation`` or ``--global`` name; None when none is given."""
    if args.user:
        channel, _, user_id = args.user.partition(":")
        return access.for_user(channel, user_id).own
    if args.conversation:
        return (Scope("conversation", args.conversation),)
    if args.everyone:
        return (Scope.shared(),)
    return None


async def _list(access: MemoryAccess, args: argparse.Namespace) -> int:
    named = _named(access, args)
    counts = await access.backend.scope_counts()
    scopes = named if named is not None else tuple(scope for scope, _ in counts)
    memories = await access.backend.list(scopes=scopes, limit=args.limit)
    if not memories:
        print("no memories" + ("" if named is None else f" of {', '.join(scope_label(s) for s in named)}"))
        return 0
    for memory in memories:
        print(_line(memory))
    total = sum(n for scope, n in counts if scope in scopes)
    if len(memories) < total:
        print(f"({len(memories)} of {total} shown; --limit {total} shows all)")
    if named is None:
        print(f"{total} memories in {len(counts)} scope(s):")
        for scope, n in counts:
            print(f"  {scope_label(scope):<40} {n}")
    return 0


async def _search(access: MemoryAccess, args: argparse.Namespace) -> int:
    named = _named(access, args)
    scopes = named if named is not None else tuple(scope for scope, _ in await access.backend.scope_counts())
    query = " ".join(args.words)
    hits = await access.backend.search(query, scopes=scopes, limit=args.limit)
    if not hits:
        print(f"no memory matches {query!r}")
    for hit in hits:
        print(f"{hit.score:7.3f} {hit.via:<8} {_line(hit.memory)}")
    return 0


async def _export(access: MemoryAccess, args: argparse.Namespace) -> int:
    named = _named(access, args)
    counts = await access.backend.scope_counts()
    scopes = named if named is not None else tuple(scope for scope, _ in counts)
    total = sum(n for scope, n in counts if scope in scopes)
    memories = await access.backend.list(scopes=scopes, limit=total) if total else []
    lines = [json.dumps(memory_json(m), ensure_ascii=False) + "\n" for m in reversed(memories)]  # oldest first
    if args.out is None:
        sys.stdout.writelines(lines)
        return 0
    with _private_file(Path(args.out)) as out:
        out.writelines(lines)
    print(f"exported {len(lines)} memories to {args.out}")
    return 0


async def _import(access: MemoryAccess, args: argparse.Namespace) -> int:
    memories = _read_file(args.file)
    added = await access.backend.restore(memories) if memories else 0
    print(f"imported {added} memories; {len(memories) - added} were already present")
    return 0


async def _forget(access: MemoryAccess, args: argparse.Namespace) -> int:
    named = _named(access, args)
    if args.all:
        assert named is not None  # _memory checked that a scope is named
        return await _forget_all(access, args, named)
    scopes = named if named is not None else tuple(scope for scope, _ in await access.backend.scope_counts())
    if not await access.backend.delete(args.memory_id, scopes=scopes):
        where = "" if named is None else " in " + ", ".join(scope_label(s) for s in named)
        return _fail(f"no memory {args.memory_id}{where} (see 'autohands memory list')")
    print(f"forgot memory {args.memory_id}")
    return 0


async def _forget_all(access: MemoryAccess, args: argparse.Namespace, scopes: tuple[Scope, ...]) -> int:
    whose = ", ".join(scope_label(s) for s in scopes)
    counts = dict(await access.backend.scope_counts())
    total = sum(counts.get(scope, 0) for scope in scopes)
    if not total:
        print(f"no memories of {whose}")
        return 0
    if not args.yes and not _confirm(f"Forget all {total} memories of {whose}? [y/N] "):
        print("nothing was forgotten")
        return 1
    removed = sum([await access.backend.delete_scope(scope, scopes=(scope,)) for scope in scopes])
    print(f"forgot {removed} memories of {whose}")
    return 0


def _confirm(question: str) -> bool:
    from .answers import read_answer

    try:
        return read_answer(input(question)) is True
    except EOFError:  # nobody to answer (stdin closed): the safe answer
        print()
        return False


# ---------------------------------------------------------------------------- lines and files
def scope_label(scope: Scope) -> str:
    """A scope as the operator reads and types it: ``user telegram:123``, ``global``."""
    return scope.kind if scope.kind == "global" else f"{scope.kind} {scope.key}"


def _line(memory: Memory) -> str:
    """One memory on one line: id, scope, date, source, text (cut; invisible characters ``?``,
    so an escape sequence a user wrote never reaches the operator's terminal)."""
    text = "".join(ch if ch.isprintable() else "?" for ch in " ".join(memory.text.split()))
    if len(text) > _TEXT_CHARS:
        text = text[: _TEXT_CHARS - 1].rstrip() + "…"
    when = memory.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return f"{memory.id}  {scope_label(memory.scope):<28} {when}  {memory.source:<10} {text}"


def _private_file(path: Path) -> TextIO:
    """``path`` opened for writing, created 0600 (and made so if it was there already)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


def _read_file(name: str) -> list[Memory]:
    """The memories of export file ``name`` (``-``: stdin); nothing else runs meanwhile."""
    if name == "-":
        return read_export(sys.stdin)
    try:
        with Path(name).open(encoding="utf-8") as source:
            return read_export(source)
    except OSError as exc:
        raise BadLine(f"cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise BadLine("not UTF-8 text (an export is JSON Lines)") from None


def memory_json(memory: Memory) -> dict[str, object]:
    """One memory as a line of an export."""
    return {
        "id": memory.id,
        "scope_kind": memory.scope.kind,
        "scope_key": memory.scope.key,
        "text": memory.text,
        "created_at": memory.created_at.isoformat(),
        "source": memory.source,
        "metadata": dict(memory.metadata),
    }


def read_export(lines: Iterable[str]) -> list[Memory]:
    """Every memory of an export, blank lines skipped; ``BadLine`` names the first bad line."""
    memories = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            memories.append(memory_from_json(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise BadLine(f"line {number}: not JSON ({exc.msg})") from None
        except BadLine as exc:
            raise BadLine(f"line {number}: {exc}") from None
    return memories


def memory_from_json(data: object) -> Memory:
    """One line of an export as a ``Memory``; ``BadLine`` says what is wrong with it."""
    if not isinstance(data, dict):
        raise BadLine("expected a JSON object")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise BadLine(f"unknown field {unknown[0]!r} (expected {', '.join(_FIELDS)})")
    fields = {name: _text(data, name, empty=name == "scope_key") for name in _FIELDS[:-1]}
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise BadLine("metadata must be an object of strings")
    kind = _KINDS.get(fields["scope_kind"])
    if kind is None:
        raise BadLine(f"scope_kind must be user, conversation or global, not {fields['scope_kind']!r}")
    try:
        scope = Scope(kind, fields["scope_key"])
    except ValueError as exc:
        raise BadLine(str(exc)) from None
    return Memory(
        id=fields["id"],
        scope=scope,
        text=fields["text"],
        created_at=_time(fields["created_at"]),
        source=fields["source"],
        metadata=metadata,
    )


def _text(data: dict[str, object], name: str, *, empty: bool = False) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise BadLine(f"{name} is missing or not a string")
    if not value and not empty:
        raise BadLine(f"{name} is empty")
    return value


def _time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadLine(f"created_at is not an ISO 8601 time: {text!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # an export's are UTC


def _fail(message: str) -> int:
    print(f"autohands: error: {message}", file=sys.stderr)
    return 1


MEMORY = Command("memory", _add_memory, _memory)
