"""The ``autohands`` command line.

Every error the user can fix ends with one line on stderr and a non-zero exit, never a
traceback: ``autohands: error: <what is wrong and how to fix it>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from .agent import Check
from .channel import ChannelClass, ConsoleChannel
from .cli_base import EXIT_ERROR, Command, Parser
from .cli_jobs import JOBS
from .config import Settings, load_settings, validate_section
from .errors import AutoHandsError, ConfigError, HubLockedError, PluginError, StoreError
from .extensions import Described, list_entry_points, load_entry_point
from .logs import setup_logging
from .outbox_commands import OUTBOX

log = logging.getLogger("autohands")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autohands")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _common_options(*, top_level: bool) -> Parser:
    """The options every command takes, before or after its name. A subcommand's own copy must
    not default them: argparse would overwrite a value given before the command with that
    default (``autohands --config X run`` silently ran on the default config)."""
    default = None if top_level else argparse.SUPPRESS
    common = Parser(add_help=False)
    common.add_argument(
        "--config", metavar="PATH", default=default, help="config file (default ~/.autohands/config.toml)"
    )
    common.add_argument(
        "--log-format", type=str.lower, choices=["text", "json"], default=default, help="log line format"
    )
    common.add_argument("--log-level", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=default)
    return common


def build_parser() -> Parser:
    common = _common_options(top_level=True)
    p = Parser(prog="autohands", description="A self-hosted, multi-channel AI agent hub.", parents=[common])
    p.add_argument("--version", action="version", version=f"autohands {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    action_common = _common_options(top_level=False)
    for command in COMMANDS:
        command.add(sub, action_common)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = next((c for c in COMMANDS if c.name == args.command), None)
    if command is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        settings = _settings_for(command, args.config)
        level = args.log_level or command.log_level or settings.log.level
        setup_logging(level, args.log_format or settings.log.format, secrets=_secrets(settings))
        return command.run(settings, args, parser)
    except AutoHandsError as exc:
        print(f"autohands: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _settings_for(command: Command, config: str | None) -> Settings:
    """The settings ``command`` runs with: a command that works without a valid config
    (``init``, which writes one) gets the shipped defaults when the user's cannot be loaded."""
    try:
        return load_settings(config)
    except ConfigError:
        if command.needs_config:
            raise
        return load_settings(environ={}, user_file=False)


# ---------------------------------------------------------------------------- the commands
def _add_run(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    sub.add_parser("run", parents=[common], help="start the hub with every enabled channel")


def _run(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    from .app import run_until_signalled

    asyncio.run(run_until_signalled(settings))
    return 0


def _add_chat(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    sub.add_parser("chat", parents=[common], help="chat with the agent in this terminal")


def _add_config(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    cfg = sub.add_parser("config", parents=[common], help="configuration tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", parser_class=Parser)
    cfg_sub.add_parser("check", parents=[common], help="validate the configuration")


def _config(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    if args.config_command != "check":
        parser.error("'config' needs an action: check")
    problems = asyncio.run(check_config(settings))
    if problems:
        for p in problems:
            print(f"autohands: error: {p}", file=sys.stderr)
        return EXIT_ERROR
    print(f"config OK ({len(settings.enabled_channels())} channel(s) enabled)")
    return 0


def _add_doctor(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    sub.add_parser("doctor", parents=[common], help="check config, database, channels and providers")


def _add_extensions(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    sub.add_parser("extensions", parents=[common], help="list installed extensions")


def _extensions(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    _print_extensions()
    return 0


def _secrets(settings: Settings) -> list[str]:
    """Every credential-looking value in the config, so the log filter can mask it."""
    out: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, str) and any(w in key.lower() for w in ("token", "secret", "key", "password")):
            out.append(node)

    walk(settings.model_dump(mode="json"))
    out.extend(v for k, v in os.environ.items() if k.endswith(("_API_KEY", "_TOKEN", "_SECRET")) and v)
    return out


async def check_config(settings: Settings) -> list[str]:
    """Validate every enabled extension's section; returns one line per problem."""
    problems: list[str] = []
    for name, section in settings.enabled_channels().items():
        try:
            _validate_channel(name, section)
        except (ConfigError, PluginError) as exc:
            problems.append(str(exc))
    agent_problems, _checks = await _check_agent(settings)
    return problems + agent_problems


def _validate_channel(name: str, section: dict[str, Any]) -> ChannelClass[Any]:
    """The channel's class, once its section validates (raises ConfigError / PluginError)."""
    cls = load_entry_point("autohands.channels", section.get("kind", name))
    validate_section(cls.config_model, {k: v for k, v in section.items() if k != "kind"}, f"channels.{name}")
    return cls


async def _check_agent(settings: Settings) -> tuple[list[str], list[Check]]:
    """Build the agent to validate its sections: the problems, and its own checks (doctor rows)."""
    problems: list[str] = []
    checks: list[Check] = []
    try:
        from .agent import AgentServices, Closable, SelfChecking
        from .commands import CommandRegistry

        runtime = str(settings.agent.get("runtime", "llm"))
        factory = load_entry_point("autohands.agents", runtime)
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
                )
            )
        finally:
            logging.disable(logging.NOTSET)
        if isinstance(agent, SelfChecking):
            checks.extend(agent.checks())
        if isinstance(agent, Closable):
            await agent.aclose()
    except (ConfigError, PluginError) as exc:
        problems.append(str(exc))
    return problems, checks


def _chat(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    return asyncio.run(_chat_async(settings))


async def _chat_async(settings: Settings) -> int:
    from .app import Hub

    # The terminal chat talks to the same core, without starting the platform channels
    # (a second Telegram poller on the same token would conflict with a running hub).
    chat_settings = settings.model_copy(
        update={
            "channels": {"terminal": {**settings.channels.get("terminal", {}), "enabled": True}},
            "server": settings.server.model_copy(update={"enabled": False}),
        }
    )
    left_with_ctrl_c = False
    async with Hub(chat_settings) as hub:
        terminal = hub.channels["terminal"]
        console = terminal if isinstance(terminal, ConsoleChannel) else None
        print("AutoHands terminal chat — /help for commands, Ctrl+C stops an answer, Ctrl+D leaves.", file=sys.stderr)

        def on_ctrl_c() -> None:
            # Ctrl+C stops the answer in progress, as in other chat tools; at the prompt (or
            # pressed again) it leaves, without waiting for the line being typed.
            nonlocal left_with_ctrl_c
            if console is None or not console.interrupt():
                left_with_ctrl_c = True
                hub.request_stop()

        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):  # no add_signal_handler on Windows
            loop.add_signal_handler(signal.SIGINT, on_ctrl_c)
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(hub.wait_stopped())]
        if console is not None:
            waiters.append(asyncio.ensure_future(console.closed.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signal.SIGINT)
    return 130 if left_with_ctrl_c else 0  # 128 + SIGINT, as a shell reports an interrupted command


def _doctor(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    return asyncio.run(_doctor_async(settings))


async def _doctor_async(settings: Settings) -> int:
    rows: list[tuple[str, str, str]] = [("config", "ok", str(len(settings.enabled_channels())) + " channel(s)")]
    ok = True
    problems, checks = await _check_agent(settings)  # channels: each in its own row below
    for p in problems:
        rows.append(("config", "ERROR", p))
        ok = False
    rows.extend((c.what, c.status, c.detail) for c in checks)
    ok = ok and all(c.status != "ERROR" for c in checks)
    from .redact import masked_url
    from .store import Store

    try:
        running = ""
        try:
            async with Store.from_settings(settings) as store:
                counts = await store.count_messages()
        except HubLockedError as exc:  # a hub running on it is what doctor is often run beside
            running = f"; in use by the running hub, {exc.holder}"
            async with Store.from_settings(settings, lock=False) as store:
                counts = await store.count_messages()
        rows.append(("database", "ok", f"{masked_url(settings.store_url)} ({sum(counts.values())} messages{running})"))
    except StoreError as exc:
        rows.append(("database", "ERROR", str(exc)))
        ok = False
    for name, section in settings.channels.items():
        enabled = bool(section.get("enabled"))
        if not enabled:
            rows.append((f"channel {name}", "off", "enabled = false"))
            continue
        # The section's own validation knows which credentials its mode needs (Telegram's
        # webhook_secret only for webhooks, Slack's app_token only for Socket Mode).
        try:
            cls = _validate_channel(name, section)
        except (ConfigError, PluginError) as exc:
            rows.append((f"channel {name}", "ERROR", str(exc)))
            ok = False
            continue
        present = [k for k in cls.manifest.secrets if section.get(k)]
        rows.append((f"channel {name}", "ok", "credentials present: " + (", ".join(present) or "none needed")))
    provider = settings.agent.get("provider")
    for name, section in settings.providers.items():
        kind = section.get("kind", "?")
        has_key = bool(section.get("api_key")) or bool(
            os.environ.get("ANTHROPIC_API_KEY" if kind == "anthropic" else "OPENAI_API_KEY")
        )
        detail = f"kind={kind} model={section.get('model', '?')} key={'present' if has_key else 'missing'}"
        if section.get("base_url"):
            detail += f" base_url={masked_url(str(section['base_url']))}"
        rows.append(
            (
                f"provider {name}" + (" (default)" if name == provider else ""),
                "ok" if has_key or section.get("base_url") else "MISSING",
                detail,
            )
        )
    if not settings.providers:
        env = [v for v in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY") if os.environ.get(v)]
        rows.append(
            (
                "provider",
                "ok" if env else "none",
                f"from environment: {', '.join(env)}" if env else "no model provider configured",
            )
        )
    width = max(len(r[0]) for r in rows)
    for what, status, detail in rows:
        print(f"{what:<{width}}  {status:<8} {detail}")
    return 0 if ok else 1


def _print_extensions() -> None:
    for group in (
        "autohands.channels",
        "autohands.agents",
        "autohands.providers",
        "autohands.tools",
        "autohands.memory",
    ):
        eps = list_entry_points(group)
        if not eps:
            continue
        print(group)
        for ep in eps:
            desc = ""
            with contextlib.suppress(Exception):
                loaded = ep.load()
                if isinstance(loaded, Described):
                    desc = loaded.manifest.description
            print(f"  {ep.name:<12} {ep.value:<45} {desc}")


COMMANDS: tuple[Command, ...] = (
    Command("run", _add_run, _run),
    Command("chat", _add_chat, _chat, log_level="WARNING"),
    Command("config", _add_config, _config),
    Command("doctor", _add_doctor, _doctor),
    Command("extensions", _add_extensions, _extensions),
    JOBS,
    OUTBOX,
)
"""Every command, in the order ``autohands --help`` lists them."""


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
