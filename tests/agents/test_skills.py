"""Skills: the catalogue in the system prompt, ``use_skill``, hot reload, bad front matter, the
bundled skills end to end through ``build_agent`` and the fake model (``tests/fakes``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agents.build import build_agent
from agents.config import AgentConfig
from agents.runtime import LLMAgent, ResolvedModel
from agents.skills import SkillCatalogue, build_skills, describe_skills, skill_tool
from agents.tools.base import ToolContext, ToolRegistry
from hub.agent import AgentServices
from hub.commands import CommandRegistry
from hub.errors import ConfigError, ToolFailed
from hub.skills import SkillsConfig, bundled_root, parse_skill
from tests.agents.conftest import LLMVendor
from tests.agents.fake_run_context import CONV, USER, FakeRunContext, collect, inbound
from tests.agents.scripted import ScriptedProvider, call
from tests.fakes.llm_script import ScriptedCall

BUNDLED = ("code-review", "plan-day", "research", "summarise", "write-translate")


def write_skill(root: Path, name: str, description: str, body: str = "Do the thing.\n", **extra: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    meta = "".join(f"{k}: {v}\n" for k, v in extra.items())
    path = folder / "SKILL.md"
    path.write_text(f"---\nname: {name}\ndescription: {description}\n{meta}---\n{body}", encoding="utf-8")
    return path


def catalogue(tmp_path: Path, **config: Any) -> SkillCatalogue:
    settings: dict[str, Any] = {"paths": [str(tmp_path / "skills")], "bundled": False, **config}
    return SkillCatalogue(SkillsConfig(**settings), tmp_path, step_ms=20)


async def until(cat: SkillCatalogue, ready: Callable[[], bool]) -> None:
    """Await reloads (never sleep) until ``ready()``: one save may come as more than one batch."""
    async with asyncio.timeout(10):
        while not ready():
            await cat.wait_for(cat.generation + 1)


def agent_with(cat: SkillCatalogue, provider: ScriptedProvider) -> LLMAgent:
    registry = ToolRegistry()
    registry.add(skill_tool(cat))
    return LLMAgent(lambda _: ResolvedModel(provider), registry, AgentConfig(), skills=cat)


def tool_ctx(tmp_path: Path) -> ToolContext:
    from agents.tools.config import ToolsConfig

    return ToolContext(conversation=CONV, sender=USER, workspace=tmp_path, config=ToolsConfig())


# ---------------------------------------------------------------------------- the prompt
def test_the_prompt_lists_only_names_and_one_line_descriptions(tmp_path: Path) -> None:
    write_skill(tmp_path / "skills", "zeta", "Last one.", body="SECRET BODY Z\n")
    write_skill(tmp_path / "skills", "alpha", ">-\n  Folded over\n  two lines.", body="SECRET BODY A\n")
    cat = catalogue(tmp_path)
    agent = agent_with(cat, ScriptedProvider())
    prompt = agent.system_prompt("terminal")
    assert "- alpha: Folded over two lines.\n- zeta: Last one." in prompt
    assert "SECRET BODY" not in prompt and "use_skill" in prompt
    cat.reload()  # nothing changed: the same bytes (the provider's prompt cache keeps hitting)
    assert agent.system_prompt("terminal") == prompt


def test_enabled_and_disabled_choose_what_is_offered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for name in ("one", "two", "three"):
        write_skill(tmp_path / "skills", name, f"Skill {name}.")
    assert [s.name for s in catalogue(tmp_path, enabled=["one", "two"], disabled=["two"])] == ["one"]
    with caplog.at_level(logging.WARNING):
        catalogue(tmp_path, disabled=["nope"])
    assert "no skill has that name" in caplog.text and "'nope'" in caplog.text


def test_a_users_skill_replaces_a_bundled_one_of_the_same_name(tmp_path: Path) -> None:
    write_skill(tmp_path / "skills", "summarise", "My own summaries.")
    cat = SkillCatalogue(SkillsConfig(paths=[tmp_path / "skills"]), tmp_path)
    assert sorted(s.name for s in cat) == sorted(BUNDLED)
    mine = cat.get("summarise")
    assert mine is not None and mine.description == "My own summaries." and not mine.bundled


# ---------------------------------------------------------------------------- use_skill
async def test_use_skill_returns_the_body_then_the_model_follows_it(tmp_path: Path) -> None:
    write_skill(tmp_path / "skills", "greet", "Greet people.", body="# Greet\nAlways say hello twice.\n")
    (tmp_path / "skills" / "greet" / "phrases.txt").write_text("hello, hello\n")
    cat = catalogue(tmp_path)
    provider = (
        ScriptedProvider()
        .tool_calls(call("use_skill", {"name": "greet"}, id="c1"))
        .tool_calls(call("use_skill", {"name": "greet", "file": "phrases.txt"}, id="c2"))
        .reply("hello, hello")
    )
    out = await collect(agent_with(cat, provider), FakeRunContext(inbound("greet me")))
    assert out[-1].text == "hello, hello"
    body = provider.requests[1].messages[-1].results[0].content  # type: ignore[union-attr]
    assert body.startswith("# Skill: greet\n\n# Greet\nAlways say hello twice.\n")
    assert "file=…)): phrases.txt." in body
    resource = provider.requests[2].messages[-1].results[0].content  # type: ignore[union-attr]
    assert resource == "hello, hello\n"
    provider.assert_done()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"name": "nope"}, "no skill named 'nope'; the skills are: greet"),
        ({"name": "greet", "file": "../other/SKILL.md"}, "has no resource file '../other/SKILL.md'"),
        ({"name": "greet", "file": "/etc/passwd"}, "has no resource file '/etc/passwd'"),
        ({"name": "greet", "file": "SKILL.md"}, "has no resource file 'SKILL.md'"),
    ],
)
async def test_use_skill_reads_only_listed_resources(tmp_path: Path, args: dict[str, str], error: str) -> None:
    write_skill(tmp_path / "skills", "greet", "Greet people.")
    (tmp_path / "skills" / "other").mkdir()
    tool = skill_tool(catalogue(tmp_path))
    with pytest.raises(ToolFailed, match=error.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        await tool.invoke(args, tool_ctx(tmp_path))


async def test_skills_command_lists_and_describes(tmp_path: Path) -> None:
    write_skill(tmp_path / "skills", "greet", "Greet people.", when_to_use="Someone arrives.")
    cat = catalogue(tmp_path)
    assert describe_skills(cat).endswith("\n- greet: Greet people.")
    assert describe_skills(cat, "greet") == "greet: Greet people.\nWhen to use it: Someone arrives."
    assert "no skill named 'x'" in describe_skills(cat, "x")
    commands = CommandRegistry()
    build_skills({"paths": [str(tmp_path / "skills")], "bundled": False}, tmp_path, ToolRegistry(), commands)
    assert "skills" in commands


# ---------------------------------------------------------------------------- a skill from elsewhere
ANOTHER_AGENTS_SKILL = """\
---
name: pdf-forms
description: >-
  Fill in PDF forms from a user's data. Use when the user asks to complete, fill or
  check a PDF form.
license: Complete terms in LICENSE.txt
allowed-tools:
  - Read
  - Bash
metadata:
  version: "1.2"
  author: someone-else
---

# PDF forms

Read [reference/fields.md](reference/fields.md) first, then run `scripts/fill.py`.
"""


async def test_a_skill_written_for_another_agent_works_unchanged(tmp_path: Path) -> None:
    folder = tmp_path / "skills" / "pdf-forms"
    (folder / "reference").mkdir(parents=True)
    (folder / "scripts").mkdir()
    (folder / "SKILL.md").write_text(ANOTHER_AGENTS_SKILL)
    (folder / "reference" / "fields.md").write_text("Field names are case sensitive.\n")
    (folder / "scripts" / "fill.py").write_text("print('filled')\n")
    (folder / "LICENSE.txt").write_text("MIT\n")
    cat = catalogue(tmp_path)
    skill = cat.get("pdf-forms")
    assert skill is not None
    assert skill.description == (
        "Fill in PDF forms from a user's data. Use when the user asks to complete, fill or check a PDF form."
    )
    assert skill.allowed_tools == ("Read", "Bash")
    assert skill.resources == ("LICENSE.txt", "reference/fields.md", "scripts/fill.py")
    tool = skill_tool(cat)
    body = await tool.invoke({"name": "pdf-forms"}, tool_ctx(tmp_path))
    assert "Read [reference/fields.md](reference/fields.md) first" in body
    fields = await tool.invoke({"name": "pdf-forms", "file": "./reference/fields.md"}, tool_ctx(tmp_path))
    assert fields == "Field names are case sensitive.\n"


# ---------------------------------------------------------------------------- bad front matter
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("# no front matter\n", "no front matter"),
        ("---\nname: x\ndescription: y\n", "not closed"),
        ("---\nname: [x\ndescription: y\n---\nbody\n", "not valid YAML (line 3)"),
        ("---\nname: broken\n---\nbody\n", "no 'description'"),
        ("---\nname: Bad Name\ndescription: y\n---\nbody\n", "name 'Bad Name' must be"),
        ("---\n- a list\n---\nbody\n", "must be a YAML mapping"),
        ("---\nname: x\ndescription: y\nallowed-tools: 3\n---\n", "'allowed-tools' must be"),
    ],
)
def test_bad_front_matter_is_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, problem: str
) -> None:
    write_skill(tmp_path / "skills", "good", "Fine.")
    bad = tmp_path / "skills" / "bad" / "SKILL.md"
    bad.parent.mkdir()
    bad.write_text(text)
    with caplog.at_level(logging.WARNING, logger="agents.skills"):
        cat = catalogue(tmp_path)
        cat.reload()  # a problem that lasts is not warned again
    assert [s.name for s in cat] == ["good"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"skill {bad} skipped: ") and problem in warnings[0]
    assert "Traceback" not in caplog.text


# ---------------------------------------------------------------------------- hot reload
async def test_edit_add_and_remove_take_effect_on_the_next_message(tmp_path: Path) -> None:
    path = write_skill(tmp_path / "skills", "greet", "Greet people.", body="Say hello.\n")
    cat = catalogue(tmp_path)
    provider = ScriptedProvider()
    agent = agent_with(cat, provider)
    cat.start()
    try:
        await cat.started()
        path.write_text("---\nname: greet\ndescription: Greet people warmly.\n---\nSay hello warmly.\n")
        await until(cat, lambda: "warmly" in agent.system_prompt("t"))
        provider.tool_calls(call("use_skill", {"name": "greet"})).reply("ok")
        await collect(agent, FakeRunContext())
        assert "- greet: Greet people warmly." in (provider.requests[0].system or "")
        assert "Say hello warmly." in provider.requests[1].messages[-1].results[0].content  # type: ignore[union-attr]

        write_skill(tmp_path / "skills", "bye", "Say goodbye.")
        await until(cat, lambda: cat.get("bye") is not None)
        (tmp_path / "skills" / "greet" / "SKILL.md").unlink()
        (tmp_path / "skills" / "greet").rmdir()
        await until(cat, lambda: cat.get("greet") is None)
        provider.reply("ok")
        await collect(agent, FakeRunContext())
        system = provider.requests[-1].system or ""
        assert "- bye: Say goodbye." in system and "greet" not in system

        path = write_skill(tmp_path / "skills", "bye", "x", body="")
        path.write_text("---\nname: bye\n---\n")  # broken while the agent runs: skipped, the rest goes on
        await until(cat, lambda: cat.get("bye") is None)
        assert cat.problems and "no 'description'" in str(cat.problems[0])
    finally:
        await cat.aclose()
    provider.assert_done()


async def test_aclose_stops_the_watch_and_a_missing_default_folder_is_made(tmp_path: Path) -> None:
    cat = SkillCatalogue(SkillsConfig(bundled=False), tmp_path / "data")
    cat.start()
    await cat.started()
    assert (tmp_path / "data" / "skills").is_dir()
    task = cat._task
    await cat.aclose()
    assert task is not None and task.done()
    await cat.aclose()  # twice is fine


def test_a_bad_skills_section_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"skills\.pathz: unknown key \(did you mean 'paths'\?"):
        build_skills({"pathz": []}, tmp_path, ToolRegistry(), CommandRegistry())


def test_no_watch_without_watch_or_without_a_loop(tmp_path: Path) -> None:
    cat = build_skills({"watch": False}, tmp_path, ToolRegistry(), CommandRegistry())
    assert cat._task is None and len(cat) == len(BUNDLED)


# ---------------------------------------------------------------------------- the bundled skills
def test_every_bundled_skill_parses_and_names_its_folder() -> None:
    root = bundled_root()
    assert root is not None
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert names == sorted(BUNDLED)
    for name in names:
        skill = parse_skill(root / name / "SKILL.md", bundled=True)
        assert skill.name == name and skill.when_to_use and skill.allowed_tools


@pytest.fixture
async def web_page() -> AsyncIterator[str]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html><title>Results</title><body>Golden Gate Bridge opened 1937</body></html>")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def follow_up(skill: str, base_url: str) -> tuple[ScriptedCall, str]:
    """The tool call each bundled skill's instructions lead to first, and what its result shows."""
    return {
        "summarise": (ScriptedCall("read_file", {"path": "report.txt"}, id="c2"), "Sales rose 5%"),
        "research": (ScriptedCall("fetch_url", {"url": f"{base_url}/html/?q=bridge"}, id="c2"), "opened 1937"),
        "code-review": (ScriptedCall("grep", {"pattern": "def "}, id="c2"), "app.py"),
        "write-translate": (
            ScriptedCall("write_file", {"path": "drafts/hello.md", "content": "Bonjour"}, id="c2"),
            "drafts/hello.md",
        ),
        "plan-day": (ScriptedCall("now", {}, id="c2"), "weekday"),
    }[skill]


@pytest.mark.parametrize("skill", BUNDLED)
async def test_each_bundled_skill_end_to_end(skill: str, llm_openai: LLMVendor, tmp_path: Path, web_page: str) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "report.txt").write_text("Q3 report. Sales rose 5%.\n")
    (workspace / "app.py").write_text("def main():\n    return 1\n")
    services = AgentServices(
        agent_config={"provider": "main"},
        providers_config={"main": llm_openai.section()},
        tools_config={
            "enabled": ["file", "search", "web", "time"],
            "workspace": str(workspace),
            "workspace_scope": "shared",
            "web": {"allow_private": True, "allow_hosts": ["127.0.0.1"]},
        },
        commands=CommandRegistry(),
        data_dir=tmp_path / "data",
    )
    agent = build_agent(services, environ={})
    assert isinstance(agent, LLMAgent)
    second, shows = follow_up(skill, web_page)
    script = llm_openai.script
    script.tool_calls(ScriptedCall("use_skill", {"name": skill}, id="c1")).tool_calls(second).reply("Done.")
    try:
        out = await collect(agent, FakeRunContext(inbound(f"please use {skill}")))
    finally:
        await agent.aclose()
    script.assert_done()
    assert out[-1].text == "Done."
    first, after_skill, after_tool = (r.body for r in script.requests)
    assert f"- {skill}: " in first["messages"][0]["content"]  # the system prompt lists it
    body = parse_skill(bundled_root() / skill / "SKILL.md").body  # type: ignore[operator]
    tool_message = after_skill["messages"][-1]
    assert tool_message["role"] == "tool" and body.strip() in tool_message["content"]
    assert second.name in body  # the instructions name the tool the model then called
    result = after_tool["messages"][-1]["content"]
    assert shows in result, json.dumps(after_tool["messages"][-1])
    assert "skills" in services.commands
