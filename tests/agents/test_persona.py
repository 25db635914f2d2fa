"""The persona in the system prompt, the user turn's time line, and /model and /persona."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from agents.commands import AgentCommands, ModelChoice, parse_model_choice
from agents.config import AgentConfig, IdentityConfig
from agents.persona import describe_persona, render_system_prompt, user_turn
from agents.runtime import LLMAgent, ResolvedModel
from agents.tools.base import ToolRegistry
from hub.commands import CommandCall, CommandRegistry
from tests.agents.fake_run_context import FakeRunContext, collect, inbound
from tests.agents.scripted import ScriptedProvider

IDENTITY = IdentityConfig(
    name="Pip",
    role="the support assistant of Acme",
    personality="curious and patient",
    tone="warm, brief",
    knowledge_scope="Acme's products",
    catchphrase="Onwards!",
    taboos=["legal advice", "prices of rivals"],
    lang="de",
)


@dataclass
class Skill:
    name: str
    description: str


def test_identity_fields_are_rendered() -> None:
    prompt = render_system_prompt(IDENTITY, channel="telegram")
    for part in (
        "You are Pip, the support assistant of Acme.",
        "curious and patient",
        "warm, brief",
        "Acme's products",
        '"Onwards!"',
        "legal advice; prices of rivals",
        "'de'",
        "telegram",
    ):
        assert part in prompt


def test_prompt_is_stable_and_sorted() -> None:
    a = render_system_prompt(
        IDENTITY,
        channel="slack",
        tool_categories={"web": ["fetch_url"], "file": ["write_file", "read_file"]},
        skills=[Skill("triage", "sort tickets"), Skill("billing", "explain invoices")],
    )
    b = render_system_prompt(
        IDENTITY,
        channel="slack",
        tool_categories={"file": ["read_file", "write_file"], "web": ["fetch_url"]},
        skills=[Skill("billing", "explain invoices"), Skill("triage", "sort tickets")],
    )
    assert a == b
    assert a.index("- file: read_file, write_file") < a.index("- web: fetch_url")
    assert a.index("- billing: explain invoices") < a.index("- triage: sort tickets")


def test_default_identity_answers_in_the_users_language() -> None:
    prompt = render_system_prompt(IdentityConfig(), channel="terminal")
    assert prompt.startswith("You are AutoHands") and "language the user writes in" in prompt
    assert "grouped by category" not in prompt and "Skills" not in prompt


def test_user_turn_carries_the_time_in_the_users_zone() -> None:
    now = datetime(2026, 1, 5, 23, 59, 30, tzinfo=UTC)
    assert user_turn("hi", now=now, tz="Asia/Tokyo") == "[sent 2026-01-06 08:59 (Tue) Asia/Tokyo]\nhi"
    assert user_turn("hi", now=now, tz="Not/AZone").startswith("[sent 2026-01-05 23:59 (Mon) UTC]")
    assert user_turn("", now=now, tz=None) == "[sent 2026-01-05 23:59 (Mon) UTC]"


def test_describe_persona() -> None:
    text = describe_persona(IDENTITY)
    assert "Name: Pip" in text and "Taboos: legal advice, prices of rivals" in text and "Language: de" in text
    assert "Catchphrase" not in describe_persona(IdentityConfig())


@dataclass
class FakeSession:
    values: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, str]:
        return dict(self.values)

    async def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value

    async def reset(self) -> None:
        self.values.clear()

    def stop_run(self) -> bool:
        return False

    def status(self) -> str:
        return "idle"


def registry(default: str | None = "main") -> CommandRegistry:
    reg = CommandRegistry()
    providers = ("main", "alt") if default else ()
    AgentCommands(IDENTITY, providers, default, {"main": "gpt-x", "alt": "claude-y"}).register(reg)
    return reg


async def command(reg: CommandRegistry, name: str, args: str, session: FakeSession) -> str | None:
    cmd = reg.get(name)
    assert cmd is not None
    return await cmd.handler(CommandCall(inbound=inbound(f"/{name} {args}"), args=args, session=session))


async def test_model_command_switches_per_conversation() -> None:
    reg, session = registry(), FakeSession()
    assert "Model: main/gpt-x (default)" in (await command(reg, "model", "", session) or "")
    assert await command(reg, "model", "alt/claude-z", session) == "This conversation now uses alt/claude-z."
    assert session.values == {"model": "alt/claude-z"}
    assert "Model: alt/claude-z." in (await command(reg, "model", "", session) or "")
    assert await command(reg, "model", "alt", session) == "This conversation now uses alt/claude-y."
    assert (
        await command(reg, "model", "meta-llama/Llama-3-8B", session)
        == "This conversation now uses main/meta-llama/Llama-3-8B."
    )
    reply = await command(reg, "model", "default", session)
    assert reply == "This conversation uses the default model again: main/gpt-x." and session.values == {}


async def test_persona_command_and_unconfigured_model() -> None:
    assert "Name: Pip" in (await command(registry(), "persona", "", FakeSession()) or "")
    assert "No model provider" in (await command(registry(None), "model", "x", FakeSession()) or "")
    assert [c.name for c in registry().infos()] == ["model", "mode", "persona"]


def test_parse_model_choice() -> None:
    providers = ("main", "alt")
    assert parse_model_choice("alt/m", providers=providers, default="main") == ModelChoice("alt", "m")
    assert parse_model_choice("alt", providers=providers, default="main") == ModelChoice("alt", None)
    assert parse_model_choice("alt/", providers=providers, default="main") == ModelChoice("alt", None)
    assert parse_model_choice("org/m", providers=providers, default="main") == ModelChoice("main", "org/m")


async def test_model_setting_written_by_the_command_drives_the_next_run() -> None:
    reg, session = registry(), FakeSession()
    await command(reg, "model", "alt/claude-z", session)
    main, alt = ScriptedProvider("main"), ScriptedProvider("alt").reply("from alt")

    def resolve(setting: str | None) -> ResolvedModel:
        choice = parse_model_choice(setting or "main", providers=("main", "alt"), default="main")
        return ResolvedModel(alt if choice.provider == "alt" else main, choice.model)

    agent = LLMAgent(resolve, ToolRegistry(), AgentConfig())
    out = await collect(agent, FakeRunContext(settings=session.settings))
    assert out[-1].text == "from alt" and alt.requests[0].model == "claude-z"
    main.assert_done()
    alt.assert_done()


async def test_workspace_command_lists_the_files_and_shows_the_folder_to_admins_only(tmp_path: Path) -> None:
    """Before, nothing told a user where "read README.md" looks; now /workspace does."""
    (tmp_path / "README.md").write_text("hi")
    (tmp_path / "notes").mkdir()
    reg = CommandRegistry()
    AgentCommands(IdentityConfig(), ("main",), "main", {}, workspace_of=lambda conv, sender: tmp_path).register(reg)
    cmd = reg.get("workspace")
    assert cmd is not None
    message = inbound("/workspace")
    user = await cmd.handler(CommandCall(inbound=message, args="", session=FakeSession()))
    assert user is not None and "README.md, notes/" in user and str(tmp_path) not in user
    admin = await cmd.handler(CommandCall(inbound=message, args="", session=FakeSession(), is_admin=True))
    assert admin is not None and f"On the host it is {tmp_path}" in admin
