"""What every ``autohands`` command is made of, so each lives in a module of its own.

A command module defines one ``Command``: its name, how it adds its parser (and actions) under
the CLI's subcommands, and what it runs. ``hub.cli.COMMANDS`` lists them in the order ``--help``
shows them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from .config import Settings

__all__ = ["EXIT_ERROR", "AddParser", "Command", "Parser", "RunCommand", "positive_int"]

EXIT_ERROR = 2
"""The exit status of a command the user must fix (bad config, bad arguments)."""


class Parser(argparse.ArgumentParser):
    """The CLI's parser: a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"autohands: error: {message} (see 'autohands --help')\n")


AddParser = Callable[["argparse._SubParsersAction[Parser]", Parser], None]
"""``add(sub, common)``: add the command's parser to ``sub``, with ``parents=[common]`` (the
options every command takes) on it and on each of its actions."""

RunCommand = Callable[[Settings, argparse.Namespace, Parser], int]
"""``run(settings, args, parser)`` → exit status; ``parser.error`` for a usage error."""


@dataclass(frozen=True)
class Command:
    name: str
    add: AddParser
    run: RunCommand
    needs_config: bool = True
    """False: the command runs when no valid config can be loaded (``init``); it is then given
    the shipped defaults."""
    log_level: str | None = None
    """The log level on stderr when none is asked for (``chat``: ``OFF``, the terminal is the
    chat; its lines go to the log file)."""
    offers_setup: bool = False
    """With no config file yet and a person at the terminal, offer ``autohands init`` first
    (``chat``, ``run``: a new user's first commands)."""


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts (``--limit N``): a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value
