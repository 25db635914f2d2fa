"""``autohands config check | show | reference``, and the section checks ``doctor`` shares.

``check`` validates what ``run`` would build (each enabled channel's section, the agent and the
providers it names) and prints each channel's ``config_warnings`` (``hub.extensions.Advising``)
as ``autohands: warning: …`` lines on stderr: warnings alone exit 0, any error exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import Any

from .agent import Check
from .channel import ChannelClass
from .cli_base import EXIT_ERROR, Command, Parser
from .config import Settings, unresolved_problem, validate_section
from .errors import ConfigError, PluginError
from .extensions import Advising, load_entry_point

__all__ = ["CONFIG", "ConfigReport", "channel_warnings", "check_agent", "check_config", "validate_channel"]

_ACTIONS = ("check", "show", "reference")


@dataclass(frozen=True, slots=True)
class ConfigReport:
    """What ``config check`` found: errors stop ``run``; warnings are worth reading."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]


def validate_channel(name: str, section: dict[str, Any]) -> ChannelClass[Any]:
    """The channel's class, once its section validates (raises ConfigError / PluginError)."""
    cls = load_entry_point("autohands.channels", str(section.get("kind", name)))
    validate_section(cls.config_model, {k: v for k, v in section.items() if k != "kind"}, f"channels.{name}")
    return cls


def channel_warnings(cls: ChannelClass[Any], name: str, section: dict[str, Any]) -> list[str]:
    """The class's warnings about a valid section (none when it gives none), each naming it."""
    if not isinstance(cls, Advising):
        return []
    named = f"channels.{name}"
    return [w if named in w else f"[{named}]: {w}" for w in cls.config_warnings(name, section)]


async def check_config(settings: Settings) -> ConfigReport:
    """Validate every enabled channel's section and the agent's; gather the channels' warnings."""
    errors: list[str] = []
    warnings: list[str] = []
    for name, section in settings.enabled_channels().items():
        try:
            cls = validate_channel(name, section)
        except (ConfigError, PluginError) as exc:
            errors.append(str(exc))
            continue
        warnings.extend(channel_warnings(cls, name, section))
    errors.extend(_scheduler_problems(settings))
    agent_problems, _checks = await check_agent(settings)
    return ConfigReport(tuple(errors + agent_problems), tuple(warnings + _unused_unresolved(settings)))


def _scheduler_problems(settings: Settings) -> list[str]:
    from .scheduler import SchedulerConfig

    try:
        validate_section(SchedulerConfig, settings.scheduler, "scheduler")
    except ConfigError as exc:
        return [str(exc)]
    return []


def _unused_unresolved(settings: Settings) -> list[str]:
    """An unset ``${VAR}`` in a section nothing uses yet (a channel that is off, a provider the
    agent does not name): not an error, but it will be one once the section is used."""
    enabled = settings.enabled_channels()
    used = {settings.agent.get("provider"), *(settings.agent.get("fallback") or [])}
    sections = [(f"[channels.{n}] is off", s) for n, s in settings.channels.items() if n not in enabled]
    sections += [(f"[agent] does not use [providers.{n}]", s) for n, s in settings.providers.items() if n not in used]
    out = []
    for why, section in sections:
        problem = unresolved_problem(section)
        if problem is not None:
            out.append(f"{problem.removeprefix('invalid config: ')} ({why}, so nothing needs it yet)")
    return out


async def check_agent(settings: Settings) -> tuple[list[str], list[Check]]:
    """Build the agent to validate its sections: the problems, and its own checks (doctor rows)."""
    from .agent import AgentServices, Closable, SelfChecking
    from .commands import CommandRegistry
    from .memory.access import MemoryAccess
    from .memory.open import open_memory

    memory: MemoryAccess | None = None
    try:
        memory = open_memory(settings)  # validates [memory] and finds its backend; opens nothing
        factory = load_entry_point("autohands.agents", str(settings.agent.get("runtime", "llm")))
        # Built only to validate its sections: its start-up warnings (no provider configured)
        # are for `run`; here they would be a second stderr line beside the one error.
        logging.disable(logging.WARNING)
        try:
            agent = factory(
                AgentServices(
                    agent_config={k: v for k, v in settings.agent.items() if k != "runtime"},
                    providers_config=settings.providers,
                    tools_config=settings.tools,
                    commands=CommandRegistry(),
                    data_dir=settings.data_dir,
                    protected_paths=settings.protected_paths(),
                    skills_config=settings.skills,
                    mcp_config=settings.mcp,  # doctor: a row per MCP server, which starts it once
                    memory=memory,
                )
            )
        finally:
            logging.disable(logging.NOTSET)
    except (ConfigError, PluginError) as exc:
        return [str(exc)], []
    finally:  # the agent only kept it (its embedder's client): nothing here uses it
        if memory is not None:
            await memory.close()
    checks = list(agent.checks()) if isinstance(agent, SelfChecking) else []
    if isinstance(agent, Closable):
        await agent.aclose()
    return [], checks


def _add(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    cfg = sub.add_parser("config", parents=[common], help="configuration tools")
    actions = cfg.add_subparsers(dest="config_command", metavar="ACTION", parser_class=Parser)
    actions.add_parser("check", parents=[common], help="validate the configuration; print its warnings")
    actions.add_parser("show", parents=[common], help="print the effective configuration, secrets masked")
    actions.add_parser("reference", parents=[common], help="print every key as Markdown (docs/CONFIG.md)")


def _run(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    action = args.config_command
    if action not in _ACTIONS:
        parser.error(f"'config' needs an action: {', '.join(_ACTIONS)}")
    if action == "show":
        from .config_reference import render_effective

        sys.stdout.write(render_effective(settings))
        return 0
    if action == "reference":
        from .config_reference import render_reference

        sys.stdout.write(render_reference())
        return 0
    return _check(settings)


def _check(settings: Settings) -> int:
    report = asyncio.run(check_config(settings))
    for warning in report.warnings:
        print(f"autohands: warning: {warning}", file=sys.stderr)
    for error in report.errors:
        print(f"autohands: error: {error}", file=sys.stderr)
    if report.errors:
        return EXIT_ERROR
    noted = f", {len(report.warnings)} warning(s)" if report.warnings else ""
    print(f"config OK ({len(settings.enabled_channels())} channel(s) enabled{noted})")
    return 0


CONFIG = Command("config", _add, _run)
