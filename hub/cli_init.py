"""``autohands init``: the set-up wizard that writes a working ``config.toml``.

It asks for a model provider, the channels to connect (none is fine: ``autohands chat`` always
works), the operator's id on each (admin) and the time zone; tests each live with its
extension's ``probe`` (``hub.extensions.Probing``); and writes a commented, private (0600) file
that loads and validates before it replaces anything. ``--non-interactive`` asks the same
questions of the flags instead (``hub._init_steps.ScriptPrompter``).

``offer_setup`` is the first ``chat`` / ``run``'s offer to do this when there is no config yet.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ._init_file import Answers, ChannelAnswer, ProviderAnswer, config_path, write_config
from ._init_steps import (
    CHANNELS,
    OLLAMA_URL,
    PROVIDERS,
    ChannelSpec,
    MissingAnswer,
    Prompter,
    ProviderSpec,
    ScriptPrompter,
    Secret,
    SecretField,
    SetupCancelled,
    TerminalPrompter,
    live_check,
)
from .agent import Check
from .cli_base import Command, Parser
from .config import Settings, validate_section
from .errors import ConfigError

__all__ = ["INIT", "offer_setup", "run_wizard"]


# ---------------------------------------------------------------------------- the steps
A = TypeVar("A", ProviderAnswer, ChannelAnswer)


def _tested(
    io: Prompter,
    args: argparse.Namespace,
    ask: Callable[[argparse.Namespace], A],
    test: Callable[[A], Check | None],
    remember: Callable[[argparse.Namespace, A], argparse.Namespace],
) -> A:
    """``ask``, then ``test`` the answer live until it passes or the person keeps it anyway;
    "change" asks again with the last answers as defaults (secrets: their variable names)."""
    answer = ask(args)
    while not args.no_test:
        failed = _failed(io, test(answer))
        if failed is None:
            break
        decision = io.after_failure(failed)
        if decision == "keep":
            break
        if decision == "change":
            args = remember(args, answer)
            answer = ask(args)
    return answer


def _failed(io: Prompter, check: Check | None) -> Check | None:
    """Show the live test's result; the check when it failed."""
    if check is None:
        io.say("  no live test for it here; `autohands doctor` checks it once the hub runs")
        return None
    if check.status == "ERROR":
        io.say(f"  failed: {check.detail}")
        if check.fix:
            io.say(f"  fix: {check.fix}")
        return check
    io.say(f"  {check.status}: {check.detail}")
    return None


def _ask_provider(io: Prompter, args: argparse.Namespace) -> ProviderAnswer:
    kinds = {str(i): p for i, p in enumerate(PROVIDERS, 1)} | {p.kind: p for p in PROVIDERS}
    io.hint("The model:")
    for i, p in enumerate(PROVIDERS, 1):
        io.hint(f"  {i}) {p.title}")
    needs = "" if args.provider else "--provider (openai, anthropic or openai-compatible)"
    while True:
        choice = io.ask("Provider", args.provider or "1", script_needs=needs).strip().lower()
        if choice in kinds:
            break
        io.say(f"  (one of: {', '.join(kinds)})")
    spec = kinds[choice]

    def test(answer: ProviderAnswer) -> Check | None:
        io.say(f"Testing {spec.title.split(' (')[0]} with model {answer.model}…")
        return live_check("autohands.providers", spec.sdk, spec.section, answer.section())

    return _tested(io, args, lambda a: _provider_answers(io, spec, a), test, _remember_provider)


def _provider_answers(io: Prompter, spec: ProviderSpec, args: argparse.Namespace) -> ProviderAnswer:
    base_url = args.base_url or ""
    if spec.kind == "openai-compatible":
        needs = "" if args.base_url else f"--base-url (the server's URL, e.g. {OLLAMA_URL})"
        base_url = io.ask("Server URL", args.base_url or OLLAMA_URL, script_needs=needs)
    # The vendor's variable is offered when it is set (or, in a script, always: run reads it).
    vendor = spec.key_env if spec.key_env and (os.environ.get(spec.key_env) or not io.interactive) else ""
    optional = spec.kind == "openai-compatible"
    key = io.secret(
        "API key (hidden; " + ("empty if it needs none; " if optional else "") + "$NAME reads an environment variable)",
        args.api_key_env or vendor,
        optional=optional,
        script_needs="--api-key-env VAR",
    )
    model = io.ask("Model", args.model or spec.model)
    return ProviderAnswer(spec=spec, model=model, key=key if key.value or key.env else None, base_url=base_url)


def _remember_provider(args: argparse.Namespace, answer: ProviderAnswer) -> argparse.Namespace:
    key_env = answer.key.env if answer.key is not None else ""
    return _updated(args, base_url=answer.base_url, model=answer.model, api_key_env=key_env)


def _updated(args: argparse.Namespace, **changes: str) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), **changes})


def _ask_channels(io: Prompter, args: argparse.Namespace) -> tuple[ChannelAnswer, ...]:
    io.hint("\nChannels — the terminal chat (`autohands chat`) always works; connect any of these too.")
    chosen: list[ChannelAnswer] = []
    for spec in CHANNELS:
        if io.confirm(f"Connect {spec.title}?", any(_given(args, spec, f) for f in spec.fields())):
            chosen.append(_ask_channel(io, spec, args))
    return tuple(chosen)


def _given(args: argparse.Namespace, spec: ChannelSpec, field: SecretField) -> str:
    """The variable a flag named for ``field`` (empty: none)."""
    value: str = getattr(args, field.dest(spec.name)) or ""
    return value


def _ask_channel(io: Prompter, spec: ChannelSpec, args: argparse.Namespace) -> ChannelAnswer:
    for line in spec.hint:
        io.hint(f"  {line}")

    def test(answer: ChannelAnswer) -> Check | None:
        io.say(f"Testing {spec.title}…")
        return live_check("autohands.channels", spec.name, spec.name, answer.section())

    def remember(args: argparse.Namespace, answer: ChannelAnswer) -> argparse.Namespace:
        return _updated(args, **{f.dest(spec.name): s.env for f in spec.fields() if (s := answer.secrets.get(f.key))})

    answer = _tested(io, args, lambda a: _channel_secrets(io, spec, a), test, remember)
    io.hint(f"  Your {spec.title} user id makes you its admin ({spec.id_hint}).")
    io.hint(
        "  Empty is fine: strangers, you too, get a pairing code you approve with `autohands pairing approve CODE`."
    )
    admin = io.ask(f"Your {spec.title} user id", _admin_of(args, spec.name)).strip()
    return ChannelAnswer(spec=spec, mode=answer.mode, secrets=answer.secrets, admin=admin)


def _channel_secrets(io: Prompter, spec: ChannelSpec, args: argparse.Namespace) -> ChannelAnswer:
    mode = ""
    fields = [spec.token]
    if spec.modes:
        first, *rest = spec.modes
        given_other = any(_given(args, spec, f) for m in rest for f in m.fields)
        given_first = any(_given(args, spec, f) for f in first.fields)
        picked = first if io.confirm(first.question, given_first or not given_other) else rest[0]
        mode, fields = picked.name, [spec.token, *picked.fields]
    secrets: dict[str, Secret] = {}
    for field in fields:
        offered = _given(args, spec, field) or (field.env if io.interactive and os.environ.get(field.env) else "")
        secrets[field.key] = io.secret(
            f"{field.label} (hidden; $NAME reads an environment variable)",
            offered,
            script_needs=f"{field.flag(spec.name)} VAR",
        )
    return ChannelAnswer(spec=spec, mode=mode, secrets=secrets)


def _admin_of(args: argparse.Namespace, channel: str) -> str:
    entries: list[str] = args.admin or []
    for entry in entries:
        name, _, user = entry.partition(":")
        if name.strip().lower() == channel:
            return user.strip()
    return ""


def _ask_timezone(io: Prompter, args: argparse.Namespace) -> str:
    from .scheduler import SchedulerConfig
    from .scheduler.service import host_timezone

    io.hint("")
    while True:
        zone = io.ask("Time zone for reminders", args.timezone or host_timezone())
        try:
            validate_section(SchedulerConfig, {"default_timezone": zone}, "scheduler")
            return zone
        except ConfigError as exc:
            if not io.interactive:
                raise MissingAnswer(f"--timezone: {exc}") from None
            io.say(f"  {exc}")


# ---------------------------------------------------------------------------- the wizard
def run_wizard(path: Path, args: argparse.Namespace, io: Prompter) -> int:
    """Ask, test, write ``path``; the exit status. Raises ``MissingAnswer`` / ``ProbeFailed``
    (scripts) and ``SetupCancelled`` (end of input)."""
    if path.exists() and not args.force:
        if not io.interactive:
            raise MissingAnswer(f"--force to replace {path}, which exists (it would be kept as {path.name}.bak)")
        if not io.confirm(f"{path} exists. Replace it (the old one is kept as {path.name}.bak)?", False):
            io.say("Nothing written.")
            return 1
    io.hint(f"AutoHands set-up: a few questions, then {path} is written. Ctrl+C leaves without writing.\n")
    provider = _ask_provider(io, args)
    channels = _ask_channels(io, args)
    answers = Answers(provider=provider, channels=channels, timezone=_ask_timezone(io, args))
    backup = write_config(path, answers)
    io.say(f"\nWrote {path} (private: mode 600)" + (f"; the old file is {backup}" if backup else "") + ".")
    for var in sorted(answers.variables()):
        note = "" if os.environ.get(var) else " (not set in this shell)"
        io.say(f"  It reads ${var} from the environment when the hub starts{note}.")
    io.say("Next:")
    flag = f" --config {path}" if args.config else ""
    io.say(f"  autohands doctor{flag}    checks everything once more")
    io.say(f"  autohands chat{flag}      talks to the agent in this terminal")
    io.say(
        f"  autohands run{flag}       starts the hub with its channels (`autohands service install` keeps it running)"
    )
    return 0


def offer_setup(config: str | Path | None = None) -> bool:
    """When there is no config file yet and a person is at the terminal, offer the wizard.
    True when it wrote the file (load the settings again); False otherwise."""
    path = config_path(str(config) if config is not None else None)
    if path.exists() or not sys.stdin.isatty() or _configured_by_environment():
        return False
    io = TerminalPrompter()
    try:
        if not io.confirm("No configuration yet — set up now?", True):
            io.say("Fine: `autohands init` sets it up any time.")
            return False
        return run_wizard(path, _defaults(config=str(config) if config is not None else None), io) == 0
    except SetupCancelled:
        io.say("\nSet-up cancelled; nothing was written.")
        return False


def _configured_by_environment() -> bool:
    """Whether the environment already configures the hub (``AUTOHANDS__…`` overrides, a
    provider's key): such a person chose not to need a file, so the wizard is not offered."""
    return any(name.startswith("AUTOHANDS__") for name in os.environ) or any(
        os.environ.get(name) for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
    )


# ---------------------------------------------------------------------------- the command
def _add(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    p = sub.add_parser(
        "init",
        parents=[common],
        help="set up: model, channels, admin, time zone; writes the config file",
        description="Asks a few questions, tests the answers live, and writes a private config file. "
        "Flags answer the questions in advance; with --non-interactive they must answer all of them.",
    )
    _add_flags(p)


def _add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", type=str.lower, choices=[s.kind for s in PROVIDERS])
    p.add_argument("--base-url", metavar="URL", help="an OpenAI-compatible server's URL (openai-compatible)")
    p.add_argument("--model", metavar="NAME")
    p.add_argument("--api-key-env", metavar="VAR", help="the environment variable that holds the API key")
    for spec in CHANNELS:
        for f in spec.fields():
            p.add_argument(f.flag(spec.name), metavar="VAR", dest=f.dest(spec.name), help=f"holds the {f.label}")
    p.add_argument("--admin", metavar="CHANNEL:ID", action="append", help="your user id there, e.g. telegram:123")
    p.add_argument("--timezone", metavar="ZONE", help="an IANA name such as Europe/Berlin (default: this host's)")
    p.add_argument("--no-test", action="store_true", help="do not test the answers live")
    p.add_argument("--force", action="store_true", help="replace an existing config file without asking")
    p.add_argument("--non-interactive", action="store_true", help="ask nothing: flags answer every question")


def _defaults(*, config: str | None) -> argparse.Namespace:
    """Every flag unset, for the wizard started from ``offer_setup``."""
    parser = argparse.ArgumentParser()
    _add_flags(parser)
    return argparse.Namespace(**vars(parser.parse_args([])), config=config)


def _run(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    names = [spec.name for spec in CHANNELS]
    for entry in args.admin or []:
        name, _, user = entry.partition(":")
        if name.strip().lower() not in names or not user.strip():
            parser.error(f"--admin wants CHANNEL:ID with CHANNEL one of {', '.join(names)} (got {entry!r})")
    path = config_path(args.config)
    io: Prompter = ScriptPrompter() if args.non_interactive else TerminalPrompter()
    try:
        return run_wizard(path, args, io)
    except (SetupCancelled, KeyboardInterrupt) as exc:
        print("\nautohands: set-up cancelled; nothing was written", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1


INIT = Command("init", _add, _run, needs_config=False, log_level="WARNING")  # the terminal is the conversation
