"""What ``autohands init`` asks and how: the prompter (a person, or a script's flags), the
providers and channels it knows, and their live tests.

A question has a default (what Enter gives). The same questions run in both modes: a person
answers them (``TerminalPrompter``); ``--non-interactive`` takes every default and fails on a
question a flag should have answered (``ScriptPrompter``), so the two modes cannot drift apart.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .agent import Check
from .config import env_overrides, merge, substitute_env
from .errors import AutoHandsError, ConfigError, PluginError
from .extensions import Probing, load_entry_point

__all__ = [
    "CHANNELS",
    "PROVIDERS",
    "ChannelSpec",
    "MissingAnswer",
    "Mode",
    "ProbeFailed",
    "Prompter",
    "ProviderSpec",
    "ScriptPrompter",
    "Secret",
    "SecretField",
    "SetupCancelled",
    "TerminalPrompter",
    "live_check",
    "parse_secret",
]

PROBE_TIMEOUT = 15.0
"""Seconds a live test may take before it counts as failed."""

Decision = Literal["retry", "change", "keep"]


class SetupCancelled(Exception):
    """The person left (end of input); nothing is written."""


class MissingAnswer(AutoHandsError):
    """A question a flag must answer under ``--non-interactive``; the message names the flag."""


class ProbeFailed(AutoHandsError):
    """A live test failed under ``--non-interactive``; the message says what and how to fix it."""


# ---------------------------------------------------------------------------- secrets
@dataclass(frozen=True, slots=True)
class Secret:
    """A credential: typed in (``value``, written into the private config file), or read from the
    environment variable ``env`` when the hub starts (written as ``"${ENV}"``)."""

    value: str = ""
    env: str = ""

    def written(self) -> str:
        """What the config file holds."""
        return f"${{{self.env}}}" if self.env else self.value


def parse_secret(text: str) -> Secret:
    """``$NAME`` or ``${NAME}`` names an environment variable; anything else is the value."""
    text = text.strip()
    name = text[2:-1] if text.startswith("${") and text.endswith("}") else text[1:] if text.startswith("$") else ""
    if name and name.replace("_", "a").isalnum() and not name[0].isdigit():
        return Secret(env=name)
    return Secret(value=text)


# ---------------------------------------------------------------------------- prompters
class Prompter(Protocol):
    """How the wizard asks. ``script_needs``: the flag that answers the question in a script
    (empty: the default is a fine answer there too)."""

    interactive: bool

    def say(self, text: str) -> None: ...
    def hint(self, text: str) -> None: ...
    def ask(self, question: str, default: str = "", *, script_needs: str = "") -> str: ...
    def secret(
        self, question: str, default_env: str = "", *, optional: bool = False, script_needs: str = ""
    ) -> Secret: ...
    def confirm(self, question: str, default: bool) -> bool: ...
    def after_failure(self, check: Check) -> Decision: ...


class TerminalPrompter:
    """Asks a person with ``input()`` (a pipe works too) and, when stdin is a terminal, reads
    secrets with ``getpass`` (no echo). End of input raises ``SetupCancelled``."""

    interactive = True

    def say(self, text: str) -> None:
        print(text, flush=True)

    def hint(self, text: str) -> None:
        self.say(text)

    def _line(self, prompt: str, *, hidden: bool = False) -> str:
        try:
            if hidden and sys.stdin.isatty():
                return getpass.getpass(prompt)
            return input(prompt)
        except EOFError:
            raise SetupCancelled from None

    def ask(self, question: str, default: str = "", *, script_needs: str = "") -> str:
        shown = f" [{default}]" if default else ""
        while True:
            answer = self._line(f"{question}{shown}: ").strip() or default
            if answer:
                return answer
            self.say("  (an answer is needed here)")

    def secret(self, question: str, default_env: str = "", *, optional: bool = False, script_needs: str = "") -> Secret:
        shown = f" [${default_env}]" if default_env else ""
        while True:
            text = self._line(f"{question}{shown}: ", hidden=True).strip()
            if text:
                return parse_secret(text)
            if default_env:
                return Secret(env=default_env)
            if optional:
                return Secret()
            self.say("  (needed: paste it, or $NAME to read it from an environment variable)")

    def confirm(self, question: str, default: bool) -> bool:
        choices = "Y/n" if default else "y/N"
        while True:
            answer = self._line(f"{question} [{choices}]: ").strip().lower()
            if not answer:
                return default
            if answer in ("y", "yes", "n", "no"):
                return answer.startswith("y")
            self.say("  (y or n)")

    def after_failure(self, check: Check) -> Decision:
        words: dict[str, Decision] = {"r": "retry", "c": "change", "k": "keep"}
        while True:
            answer = self._line("[r]etry, [c]hange the answers, or [k]eep them anyway? [c]: ").strip().lower()
            decision = words.get(answer[:1] or "c")
            if decision is not None:
                return decision
            self.say("  (r, c or k)")


class ScriptPrompter:
    """``--non-interactive``: every question takes its default; one a flag must answer raises
    ``MissingAnswer``, a failed live test ``ProbeFailed``. Hints are for people, not logs."""

    interactive = False

    def say(self, text: str) -> None:
        print(text, flush=True)

    def hint(self, text: str) -> None:
        pass

    def ask(self, question: str, default: str = "", *, script_needs: str = "") -> str:
        if script_needs:
            raise MissingAnswer(f"--non-interactive needs {script_needs}")
        return default

    def secret(self, question: str, default_env: str = "", *, optional: bool = False, script_needs: str = "") -> Secret:
        if default_env:
            return Secret(env=default_env)
        if optional:
            return Secret()
        raise MissingAnswer(f"--non-interactive needs {script_needs or 'the variable that holds ' + question}")

    def confirm(self, question: str, default: bool) -> bool:
        return default

    def after_failure(self, check: Check) -> Decision:
        fix = f"; {check.fix}" if check.fix else ""
        raise ProbeFailed(f"{check.what}: {check.detail}{fix} (or --no-test to write it anyway)")


# ---------------------------------------------------------------------------- the catalogue
ProviderKind = Literal["openai", "anthropic", "openai-compatible"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSpec:
    kind: ProviderKind
    title: str
    sdk: str
    """Its ``autohands.providers`` entry point and ``[providers.*] kind``."""
    section: str
    """The name of its ``[providers.<section>]`` table."""
    model: str
    key_env: str = ""
    """The vendor's own variable (the provider reads it when no key is set); empty: none."""


PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        kind="openai", title="OpenAI", sdk="openai", section="openai", model="gpt-4o-mini", key_env="OPENAI_API_KEY"
    ),
    ProviderSpec(
        kind="anthropic",
        title="Anthropic",
        sdk="anthropic",
        section="anthropic",
        model="claude-sonnet-4-5",
        key_env="ANTHROPIC_API_KEY",
    ),
    ProviderSpec(
        kind="openai-compatible",
        title="an OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp …)",
        sdk="openai",
        section="local",
        model="llama3.2",
    ),
)
"""The providers ``init`` offers; the default models match agents/build.py's ``DEFAULT_MODELS``."""

OLLAMA_URL = "http://127.0.0.1:11434/v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretField:
    key: str
    """Its key in the channel's section."""
    label: str
    env: str
    """The variable a script names with ``--<channel>-<key>-env``; also offered when it is set."""

    def flag(self, channel: str) -> str:
        """``--slack-bot-token-env``: the flag naming its variable in a script."""
        return f"--{channel}-{self.key.replace('_', '-')}-env"

    def dest(self, channel: str) -> str:
        """The flag's attribute on the parsed arguments."""
        return f"{channel}_{self.key}_env"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mode:
    """One way a channel can connect (Slack: Socket Mode or HTTP), with the secrets it needs."""

    name: str
    """Written as ``mode = "<name>"``."""
    question: str
    """Asked of a channel's first mode: yes picks it, no the second."""
    fields: tuple[SecretField, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelSpec:
    name: str
    title: str
    hint: tuple[str, ...]
    """Where to get its credentials: two to four lines."""
    token: SecretField
    modes: tuple[Mode, ...] = ()
    id_hint: str
    """How the operator finds their own user id there: one line."""

    def fields(self) -> tuple[SecretField, ...]:
        """Every secret it may ask for, in any mode."""
        return (self.token, *(f for m in self.modes for f in m.fields))


CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(
        name="telegram",
        title="Telegram",
        hint=(
            "In Telegram, talk to @BotFather: send /newbot, choose a name and a username ending in 'bot';",
            "it answers with the bot token (123456789:AA…).",
        ),
        token=SecretField(key="token", label="Telegram bot token", env="TELEGRAM_BOT_TOKEN"),
        id_hint="a number; message @userinfobot in Telegram to see yours",
    ),
    ChannelSpec(
        name="slack",
        title="Slack",
        hint=(
            "At https://api.slack.com/apps create an app, add the bot scopes chat:write, app_mentions:read,",
            "im:history and commands, and install it to your workspace: OAuth & Permissions shows the",
            "bot token (xoxb-…). Socket Mode needs no public URL: enable it and make an app-level token",
            "(xapp-…, connections:write); HTTP needs the Signing Secret (Basic Information).",
        ),
        token=SecretField(key="bot_token", label="Slack bot token (xoxb-…)", env="SLACK_BOT_TOKEN"),
        modes=(
            Mode(
                name="socket",
                question="Use Socket Mode (no public URL needed)?",
                fields=(SecretField(key="app_token", label="Slack app-level token (xapp-…)", env="SLACK_APP_TOKEN"),),
            ),
            Mode(
                name="http",
                question="HTTP: Slack posts to this hub's public URL at /slack/events",
                fields=(SecretField(key="signing_secret", label="Slack signing secret", env="SLACK_SIGNING_SECRET"),),
            ),
        ),
        id_hint="a member id like U0123ABCD: your profile in Slack → ⋮ → Copy member ID",
    ),
    ChannelSpec(
        name="discord",
        title="Discord",
        hint=(
            "At https://discord.com/developers/applications create an application; under Bot, reset",
            "the token to copy it and turn on the Message Content intent; under OAuth2 → URL Generator",
            "pick 'bot' (Send Messages, Read Message History) and open the URL to invite it to a server.",
        ),
        token=SecretField(key="token", label="Discord bot token", env="DISCORD_BOT_TOKEN"),
        id_hint="a number: Settings → Advanced → Developer Mode, then right-click your name → Copy User ID",
    ),
)
"""The channels ``init`` walks through, in the order it offers them."""


# ---------------------------------------------------------------------------- live checks
def live_check(
    group: Literal["autohands.providers", "autohands.channels"], kind: str, name: str, section: dict[str, Any]
) -> Check | None:
    """Run the extension's live test on ``section`` as the hub will read it (the environment's
    ``AUTOHANDS__…`` overrides and ``${VAR}`` applied); None when the extension has none."""
    table = "providers" if group == "autohands.providers" else "channels"
    what = f"{table[:-1]} {name}"
    try:
        cls = load_entry_point(group, kind)
        if not isinstance(cls, Probing):
            return None
        effective = as_the_hub_reads(table, name, section)
        return asyncio.run(_probe(cls, name, effective, what))
    except (ConfigError, PluginError) as exc:
        return Check(what, "ERROR", str(exc), "")


def as_the_hub_reads(
    table: str, name: str, section: dict[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``section`` with the environment's overrides of ``[table.name]`` merged over it and its
    ``${VAR}`` substituted, as ``load_settings`` will give it (raises ``ConfigError``)."""
    env = os.environ if environ is None else environ
    overrides = env_overrides(env).get(table, {}).get(name, {})
    merged = merge(section, overrides) if isinstance(overrides, dict) else section
    result: dict[str, Any] = substitute_env(merged, env, f"{table}.{name}")
    return result


async def _probe(cls: Probing, name: str, section: dict[str, Any], what: str) -> Check:
    # The contract says probe gives up after its timeout; the margin guards the wizard anyway.
    try:
        return await asyncio.wait_for(cls.probe(name, section, timeout=PROBE_TIMEOUT), PROBE_TIMEOUT + 5)
    except TimeoutError:
        return Check(what, "ERROR", f"no answer within {PROBE_TIMEOUT:.0f} s", "check the address and the network")
