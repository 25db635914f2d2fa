"""``autohands doctor``: every part checked for real, one row each, and what to do about a failure.

Rows: the config file; the agent and its own parts (``SelfChecking``: the command sandbox, the
workspace); each provider and each enabled channel through a live call of its class
(``hub.extensions.Probing``: a refused key, a URL missing ``/v1``, nothing listening), with the
channel's ``config_warnings`` (``Advising``); the database (writable, ``PRAGMA quick_check``,
size); the scheduler's jobs; the memory backend and its embedding endpoint
(``hub.memory.doctor``). The whole table is always printed; a problem in one section is an
ERROR row for that section, not a missing table. The exit status is 1 when a row is ``ERROR``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

from .agent import Check
from .cli_base import Command, Parser
from .cli_config import channel_warnings, check_agent, validate_channel
from .config import Settings, load_settings, unresolved_problem
from .errors import ConfigError, HubLockedError, PluginError, StoreError
from .extensions import Probing, load_entry_point
from .memory.doctor import memory_checks
from .redact import masked_url

__all__ = ["DOCTOR", "doctor_checks", "print_table"]

DEFAULT_TIMEOUT = 10.0
"""Seconds each live check may take (they run at the same time)."""
_ENV_KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
T = TypeVar("T")


async def doctor_checks(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> list[Check]:
    """Every row of the table, in order; the live checks run concurrently."""
    agent_problems, agent_checks = await check_agent(settings)
    config = Check("config", "ok", _config_detail(settings))
    agent = [
        Check("agent", "ERROR", p, fix="correct the [agent] section or the provider it names") for p in agent_problems
    ]
    providers, channels, database, memory = await asyncio.gather(
        _gather(_provider_checks(settings, timeout)),
        _gather(_channel_checks(settings, timeout)),
        _database_checks(settings),
        memory_checks(settings, timeout=timeout),
    )
    return [config, *agent, *agent_checks, *providers, *_flatten(channels), *database, *memory]


def print_table(checks: list[Check]) -> None:
    """``what  status  detail`` per row; a row's fix on the line under it."""
    width = max(len(c.what) for c in checks)
    for c in checks:
        print(f"{c.what:<{width}}  {c.status:<8} {c.detail}")
        if c.fix and c.status != "ok":
            print(f"{'':<{width}}  {'':<8} fix: {c.fix}")


# ---------------------------------------------------------------------------- config
def _config_detail(settings: Settings) -> str:
    source = settings.config_file
    where = str(source) if source is not None else "shipped defaults (no config file)"
    return f"{where}; {len(settings.enabled_channels())} channel(s) enabled"


def _unloadable(config: str | None) -> list[Check] | None:
    """The table of a config that does not load: its one ERROR row (None when it loads)."""
    logging.disable(logging.WARNING)  # its warnings were logged once already, by main()
    try:
        load_settings(config)
    except ConfigError as exc:
        fix = "correct the config file (autohands config check), or write a new one with autohands init"
        return [Check("config", "ERROR", str(exc), fix=fix), Check("other checks", "skipped", "they need the config")]
    finally:
        logging.disable(logging.NOTSET)
    return None


# ---------------------------------------------------------------------------- providers
def _provider_checks(settings: Settings, timeout: float) -> list[Awaitable[Check]]:
    default = settings.agent.get("provider")
    checks: list[Awaitable[Check]] = [
        _provider_check(name, section, timeout, default=name == default) for name, section in settings.providers.items()
    ]
    if not checks:
        checks.append(_done(_no_provider()))
    return checks


async def _provider_check(name: str, section: dict[str, Any], timeout: float, *, default: bool) -> Check:
    check = await _probe_provider(name, section, timeout)
    what = f"provider {name}" + (" (default)" if default else "")
    return Check(what, check.status, check.detail, check.fix)


async def _probe_provider(name: str, section: dict[str, Any], timeout: float) -> Check:
    what, fix = f"provider {name}", f"correct [providers.{name}] in the config file"
    problem = unresolved_problem(section)
    if problem is not None:
        return Check(what, "ERROR", problem, fix=fix)
    try:
        cls = load_entry_point("autohands.providers", str(section.get("kind", "")))
    except PluginError as exc:
        return Check(what, "ERROR", f"providers.{name}.kind: {exc}", fix=fix)
    if isinstance(cls, Probing):
        return await _probe(cls, what, name, section, timeout)
    return _provider_without_probe(name, section)


def _provider_without_probe(name: str, section: dict[str, Any]) -> Check:
    """A provider class that cannot check itself live: whether its key is there at least."""
    kind = str(section.get("kind", "?"))
    has_key = bool(section.get("api_key")) or bool(os.environ.get(_ENV_KEYS.get(kind, "")))
    detail = f"kind={kind} model={section.get('model', '?')} key={'present' if has_key else 'missing'}"
    if section.get("base_url"):
        detail += f" base_url={masked_url(str(section['base_url']))}"
    if has_key or section.get("base_url"):
        return Check(f"provider {name}", "ok", detail + " (not checked live)")
    return Check(f"provider {name}", "ERROR", detail, fix=f"set [providers.{name}] api_key")


def _no_provider() -> Check:
    env = [v for v in _ENV_KEYS.values() if os.environ.get(v)]
    if env:
        return Check("provider", "ok", f"none configured; from the environment: {', '.join(env)}")
    return Check(
        "provider",
        "WARNING",
        "no model provider configured: the agent answers with setup instructions",
        fix="add a [providers.<name>] section and [agent] provider (autohands init writes them)",
    )


# ---------------------------------------------------------------------------- channels
def _channel_checks(settings: Settings, timeout: float) -> list[Awaitable[list[Check]]]:
    checks: list[Awaitable[list[Check]]] = []
    enabled = settings.enabled_channels()
    for name, section in settings.channels.items():
        if name in enabled:
            checks.append(_channel_check(name, section, timeout))
        else:
            checks.append(_done([Check(f"channel {name}", "off", "enabled = false")]))
    return checks


async def _channel_check(name: str, section: dict[str, Any], timeout: float) -> list[Check]:
    """The channel's live row, then a WARNING row per ``config_warnings`` line."""
    what, fix = f"channel {name}", f"correct [channels.{name}] in the config file"
    try:
        cls = validate_channel(name, section)
    except (ConfigError, PluginError) as exc:
        return [Check(what, "ERROR", str(exc), fix=fix)]
    if isinstance(cls, Probing):
        row = await _probe(cls, what, name, section, timeout)
    else:
        present = [k for k in cls.manifest.secrets if section.get(k)]
        row = Check(what, "ok", "credentials present: " + (", ".join(present) or "none needed"))
    warnings = [Check(what, "WARNING", w) for w in channel_warnings(cls, name, section)]
    return [row, *warnings]


# ---------------------------------------------------------------------------- database, jobs
async def _database_checks(settings: Settings) -> list[Check]:
    from .store import Store, jobs as job_tables

    url = masked_url(settings.store_url)
    try:
        running = ""
        try:
            async with Store.from_settings(settings) as store:
                health = await store.health()
                jobs = await store.run_read(lambda c: job_tables.list_jobs(c, active_only=True))
        except HubLockedError as exc:  # a hub running on it is what doctor is often run beside
            running = f"; in use by the running hub, {exc.holder}"
            async with Store.from_settings(settings, lock=False) as store:
                health = await store.health()
                jobs = await store.run_read(lambda c: job_tables.list_jobs(c, active_only=True))
    except StoreError as exc:
        return [Check("database", "ERROR", str(exc), fix="fix the database's permissions, or set [store] url")]
    rows = [_database_row(url, health.integrity, health.size_bytes, health.writable, health.messages, running)]
    due = sorted(j.next_run_at for j in jobs if j.next_run_at is not None)
    next_due = f"; next due {due[0].isoformat(timespec='minutes')}" if due else ""
    rows.append(Check("scheduler", "ok", f"{len(jobs)} active job(s){next_due}"))
    return rows


def _database_row(url: str, integrity: str, size: int, writable: bool, messages: dict[str, int], running: str) -> Check:
    detail = f"{url} ({_size(size)}, {sum(messages.values())} messages{running})"
    if integrity != "ok":
        fix = "stop the hub, keep a copy of the file, and restore a backup (sqlite3 .recover can save what is left)"
        return Check("database", "ERROR", f"{detail}: integrity check failed: {integrity}", fix=fix)
    if not writable:
        return Check("database", "ERROR", f"{detail}: not writable", fix="fix the permissions of the file and folder")
    return Check("database", "ok", f"{detail}; writable, integrity ok")


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


# ---------------------------------------------------------------------------- plumbing
async def _probe(cls: Probing, what: str, name: str, section: dict[str, Any], timeout: float) -> Check:
    """``cls.probe``, held to its contract: an extension's probe that raises is its row's ERROR."""
    try:
        return await cls.probe(name, section, timeout=timeout)
    except Exception as exc:  # a third-party probe broke its promise not to raise
        return Check(
            what, "ERROR", f"its check failed: {type(exc).__name__}", fix="report this to the extension's authors"
        )


async def _done(value: T) -> T:
    return value


async def _gather(awaitables: list[Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*awaitables))


def _flatten(groups: list[list[Check]]) -> list[Check]:
    return [check for group in groups for check in group]


def _add(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    doctor = sub.add_parser("doctor", parents=[common], help="check config, providers, channels and database, live")
    doctor.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help="longest wait for each live check"
    )


def _run(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    checks = _unloadable(args.config) or asyncio.run(doctor_checks(settings, timeout=args.timeout))
    print_table(checks)
    failed = sum(1 for c in checks if c.status == "ERROR")
    if failed:
        print(f"autohands: {failed} check(s) failed", file=sys.stderr)
    return 1 if failed else 0


DOCTOR = Command("doctor", _add, _run, needs_config=False)
"""Runs with a config that does not load, to show that as its ERROR row."""
