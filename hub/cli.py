"""The ``autohands`` command line.

Every error the user can fix ends with one line on stderr and a non-zero exit, never a
traceback: ``autohands: error: <what is wrong and how to fix it>``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from .cli_base import EXIT_ERROR, Command, Parser
from .cli_chat import CHAT
from .cli_config import CONFIG
from .cli_doctor import DOCTOR
from .cli_extensions import EXTENSIONS
from .cli_init import INIT
from .cli_jobs import JOBS
from .cli_logs import LOGS
from .cli_memory import MEMORY
from .cli_pairing import PAIRING, USERS
from .cli_service import SERVICE
from .cli_sessions import SESSIONS
from .cli_skills import SKILLS
from .cli_tasks import TASKS
from .config import Settings, load_settings
from .errors import AutoHandsError, ConfigError
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
    if command.offers_setup:
        from .cli_init import offer_setup

        offer_setup(args.config)
    try:
        settings = _settings_for(command, args.config)
        level = args.log_level or settings.log.level  # the file's; the terminal may show less
        setup_logging(
            level,
            args.log_format or settings.log.format,
            secrets=_secrets(settings),
            file=settings.log_file,
            max_bytes=settings.log.max_bytes,
            backups=settings.log.backups,
            stderr_level=args.log_level or command.log_level,
        )
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


COMMANDS: tuple[Command, ...] = (
    INIT,
    Command("run", _add_run, _run, offers_setup=True),
    CHAT,
    CONFIG,
    DOCTOR,
    EXTENSIONS,
    JOBS,
    TASKS,
    SKILLS,
    MEMORY,
    OUTBOX,
    SESSIONS,
    LOGS,
    PAIRING,
    USERS,
    SERVICE,
)
"""Every command, in the order ``autohands --help`` lists them."""


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
