"""``autohands extensions``: what is installed and in ``[extensions] paths``, and its state.

    autohands extensions                  every extension: version, source, state (and why)
    autohands extensions docs [--out DIR] Markdown reference pages (docs/EXTENSIONS.md)
    autohands extensions reload [--timeout SECONDS]
                                          ask the running hub to reload its extension folders

``reload`` writes a request the running hub polls (``[extensions] poll_seconds``) and prints the
hub's answer: what was loaded, reloaded, unloaded and what failed. Exit status: 0 done, 1 no hub
answered (or an extension failed), 2 a usage or config error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ._extension_folders import ExtensionFolders
from ._extension_host import ReloadRequests
from ._extension_listing import extension_rows, render_docs, render_rows
from .cli_base import Command, Parser, positive_int
from .config import Settings, validate_section
from .extensions import ExtensionsConfig, activate_folders, deactivate_folders

DOCS_FILE = "EXTENSIONS.md"


def _add(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    ext = sub.add_parser("extensions", parents=[common], help="list extensions and their state; docs; reload")
    actions = ext.add_subparsers(dest="extensions_command", metavar="ACTION", parser_class=Parser)
    docs = actions.add_parser("docs", parents=[common], help="write the Markdown reference pages")
    docs.add_argument("--out", metavar="DIR", default=None, help=f"folder for {DOCS_FILE} (default: print it)")
    reload = actions.add_parser("reload", parents=[common], help="reload extension folders in the running hub")
    reload.add_argument("--timeout", type=positive_int, default=10, metavar="SECONDS", help="wait this long (10)")


def _run(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    config = validate_section(ExtensionsConfig, settings.extensions, "extensions")
    if args.extensions_command == "reload":
        return _reload(settings, args.timeout)
    folders = ExtensionFolders(config.folders(), frozenset(config.disabled))
    if args.extensions_command == "docs":
        return _docs(settings, args.out)
    folders.reload()
    activate_folders(folders)  # channels and providers from folders are validated like installed ones
    try:
        print(render_rows(extension_rows(settings, folders)))
    finally:
        deactivate_folders(folders)
    return 0


def _docs(settings: Settings, out: str | None) -> int:
    """The reference of what is installed (folder extensions are the operator's own, left out)."""
    text = render_docs(extension_rows(settings, None))
    if out is None:
        sys.stdout.write(text)
        return 0
    path = Path(out).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    (path / DOCS_FILE).write_text(text)
    print(f"wrote {path / DOCS_FILE}")
    return 0


def _reload(settings: Settings, timeout: int) -> int:
    requests = ReloadRequests(settings.data_dir)
    rid = requests.ask()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = requests.answered(rid)
        if answer is not None:
            print(answer)
            return 1 if " failed: " in answer else 0
        time.sleep(0.1)  # another process answers through a file: nothing to await
    requests.take()  # withdraw it: a hub started later loads the folders as they are anyway
    print(
        f"autohands: error: no running hub answered within {timeout} s (is `autohands run` running "
        f"with data_dir {settings.data_dir}?)",
        file=sys.stderr,
    )
    return 1


EXTENSIONS = Command("extensions", _add, _run)
