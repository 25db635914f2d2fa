"""``autohands service install | uninstall``: run the hub as a systemd user service.

The unit runs ``autohands run`` with this installation's own executable (so a virtualenv or
pipx install keeps working), restarts it when it fails, and reads the secrets the config names
as ``${VAR}`` from an optional environment file beside the config (a user service does not
see the login shell's variables).

Hardening is limited to what needs no namespace of systemd's making: in a user service,
``ProtectSystem=``, ``ProtectHome=``, ``PrivateTmp=`` and the like imply ``PrivateUsers=``,
``RestrictNamespaces=`` forbids new namespaces, and ``NoNewPrivileges=`` (which the seccomp
options imply) breaks a setuid ``bwrap``; the shell tool's bubblewrap sandbox must make its own
user namespace (docs/SECURITY.md), so none of them is set.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
import sysconfig
from pathlib import Path

from ._lifecycle import STOP_GRACE_SECONDS
from .cli_base import Command, Parser
from .config import DEFAULT_USER_CONFIG, Settings, load_settings

__all__ = ["SERVICE", "UNIT_NAME", "exec_start", "render_unit", "unit_path"]

UNIT_NAME = "autohands.service"


def unit_path(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/systemd/user/autohands.service`` (``~/.config`` by default)."""
    env = os.environ if environ is None else environ
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "systemd" / "user" / UNIT_NAME


def exec_start(config: Path | None) -> list[str]:
    """The command the unit runs: this installation's ``autohands`` script when it has one,
    else this Python with ``-m hub.cli``; ``--config`` as an absolute path."""
    script = Path(sysconfig.get_path("scripts")) / "autohands"
    command = [str(script)] if script.is_file() and os.access(script, os.X_OK) else [sys.executable, "-m", "hub.cli"]
    command.append("run")
    if config is not None:
        command += ["--config", str(config.absolute())]
    return command


_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def _systemd_word(word: str) -> str:
    """One word of a unit's command line: ``%`` and ``$`` doubled (specifiers and variables
    are expanded there); quoted when it holds anything but plain characters."""
    escaped = word.replace("%", "%%").replace("$", "$$")
    if _PLAIN.fullmatch(word):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _path_value(path: Path) -> str:
    """A path in a ``Key=path`` line: ``%`` doubled (specifiers), spaces fine there."""
    return str(path).replace("%", "%%")


def render_unit(command: list[str], env_file: Path) -> str:
    """The unit file's text."""
    grace = int(STOP_GRACE_SECONDS) + 20  # the hub's own stop grace, and time to close the store
    return f"""\
# AutoHands as a systemd user service, written by `autohands service install`.
#   start now and at login:  systemctl --user daemon-reload && systemctl --user enable --now autohands
#   logs:                    journalctl --user -u autohands -f
[Unit]
Description=AutoHands agent hub
# The hub retries channels that cannot connect yet, so it waits for no network target.
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
Type=exec
ExecStart={" ".join(_systemd_word(w) for w in command)}
# Secrets the config reads as ${{VAR}}: one VAR=value line each in this file (mode 600).
EnvironmentFile=-{_path_value(env_file)}
Restart=on-failure
RestartSec=5
TimeoutStopSec={grace}
KillMode=mixed
UMask=0077
# Not set on purpose: ProtectSystem=, ProtectHome=, PrivateTmp=, PrivateUsers=,
# RestrictNamespaces=, NoNewPrivileges= and the seccomp options. In a user service they put the
# hub in a user namespace of systemd's or forbid new ones, and the command sandbox (bubblewrap)
# makes its own.

[Install]
WantedBy=default.target
"""


def _env_file(config: Path | None) -> Path:
    directory = config.absolute().parent if config is not None else DEFAULT_USER_CONFIG.expanduser().parent
    return directory / "env"


# ---------------------------------------------------------------------------- the command
def _add(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    p = sub.add_parser("service", parents=[common], help="run the hub as a systemd user service")
    actions = p.add_subparsers(dest="service_command", metavar="ACTION", parser_class=Parser)
    install = actions.add_parser("install", parents=[common], help="write the systemd user unit")
    install.add_argument("--print", action="store_true", help="only print the unit")
    install.add_argument("--user", action="store_true", help="a user service (the default and only kind)")
    actions.add_parser("uninstall", parents=[common], help="remove the systemd user unit")


def _run(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    config = Path(args.config).expanduser() if args.config else None
    if args.service_command == "install":
        load_settings(config)  # a service that cannot start is not installed: one error line
        return _install(config, only_print=args.print)
    if args.service_command == "uninstall":
        return _uninstall()
    parser.error("'service' needs an action: install or uninstall")


def _install(config: Path | None, *, only_print: bool) -> int:
    text = render_unit(exec_start(config), _env_file(config))
    if only_print:
        print(text, end="")
        return 0
    path = unit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.is_file() else None
    path.write_text(text)
    print(f"{'Updated' if old not in (None, text) else 'Wrote'} {path}")
    print("Start it now and at every login:")
    print("  systemctl --user daemon-reload && systemctl --user enable --now autohands")
    print("Keep it running while you are logged out, and start it at boot:")
    print(f"  loginctl enable-linger {getpass.getuser()}")
    print(f"Secrets the config reads as ${{VAR}} go in {_env_file(config)} (VAR=value lines, mode 600).")
    print("Logs: journalctl --user -u autohands -f")
    if config is None and not DEFAULT_USER_CONFIG.expanduser().is_file():
        print("There is no config file yet: `autohands init` writes one.")
    return 0


def _uninstall() -> int:
    path = unit_path()
    wanted = path.parent / "default.target.wants" / UNIT_NAME  # what `enable` made
    if wanted.is_symlink():
        wanted.unlink()
    if not path.exists():
        print(f"No unit at {path}; nothing to remove.")
        return 0
    path.unlink()
    print(f"Removed {path}. If it is running, stop it:")
    print("  systemctl --user stop autohands && systemctl --user daemon-reload")
    return 0


SERVICE = Command("service", _add, _run, needs_config=False)
