"""Extensions: manifests, the listing with states, docs/EXTENSIONS.md, folder extensions loaded,
reloaded and unloaded while a run is in flight, and a broken extension isolated."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agents.build import build_agent
from agents.runtime import LLMAgent
from hub._extension_folders import ExtensionFolders
from hub._extension_host import ExtensionHost, ReloadRequests
from hub._extension_listing import extension_rows, render_docs
from hub.agent import AgentServices
from hub.cli import main
from hub.commands import CommandCall, CommandRegistry
from hub.config import load_settings
from hub.errors import PluginError
from hub.extensions import ExtensionsConfig, Manifest, check_manifest, load_entry_point
from tests.agents.fake_run_context import FakeRunContext, collect, inbound
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
EXTENSIONS_MD = ROOT / "docs" / "EXTENSIONS.md"
KEY = "sk-test-extensions"

GATE = asyncio.Event()
"""The first version's tool waits here on its first call: the run that made it stays in flight."""
STARTED = asyncio.Event()

PROBE = '''
from agents.tools.base import ToolExtension
from agents.tools.decorator import tool
from hub.extensions import Manifest
from tests.hub import test_extensions as t

@tool(category="probe")
async def probe() -> str:
    """Say which version of the extension answers."""
    if {wait} and not t.GATE.is_set():
        t.STARTED.set()
        await t.GATE.wait()
    return "{version}"

manifest = Manifest(id="probe", version="{version}", description="Says its version.")
entry_points = {{"autohands.tools": {{"probe": ToolExtension(manifest=manifest, build=lambda c: [probe])}}}}
'''


def write_probe(folder: Path, version: str, *, wait: bool = False) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "probe.py").write_text(PROBE.format(version=version, wait=wait))


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(LLMScript(api_key=KEY)) as server:
        yield server


def agent_for(tmp_path: Path, fake: FakeOpenAI, host: ExtensionHost) -> LLMAgent:
    services = AgentServices(
        agent_config={"provider": "main"},
        providers_config={
            "main": {"kind": "openai", "model": "m", "api_key": KEY, "base_url": fake.base_url, "timeout_seconds": 5}
        },
        tools_config={"enabled": ["math"], "workspace": str(tmp_path / "ws")},
        commands=CommandRegistry(),
        data_dir=tmp_path,
        extensions=host,
    )
    agent = build_agent(services, environ={})
    assert isinstance(agent, LLMAgent)
    return agent


def tool_results(fake: FakeOpenAI) -> dict[str, str]:
    """Each tool call's id → the result the model was sent for it."""
    return {
        message["tool_call_id"]: message["content"]
        for request in fake.script.requests
        for message in request.body["messages"]
        if message["role"] == "tool"
    }


# ---------------------------------------------------------------------------- manifests
def test_every_installed_extension_carries_a_valid_manifest_with_its_config_schema() -> None:
    settings = load_settings(environ={}, user_file=False)
    rows = extension_rows(settings, None)
    by_group = {(r.group, r.name): r for r in rows}
    for group in ("autohands.channels", "autohands.providers", "autohands.tools"):
        described = [r for r in rows if r.group == group]
        assert described and all(r.manifest is not None for r in described), group
    telegram = by_group["autohands.channels", "telegram"].manifest
    assert telegram is not None and telegram.config_schema()["properties"]["token"]["format"] == "password"
    assert by_group["autohands.tools", "shell"].manifest.permissions == ("shell.exec",)  # type: ignore[union-attr]
    assert "provider:openai" in by_group["autohands.providers", "openai"].manifest.provides  # type: ignore[union-attr]


def test_a_bad_manifest_is_refused_with_what_is_wrong() -> None:
    with pytest.raises(PluginError, match="no manifest"):
        check_manifest(None, "x.py")
    with pytest.raises(PluginError, match="lower-case"):
        check_manifest(Manifest(id="Bad Id"), "x.py")
    with pytest.raises(PluginError, match="not a version"):
        check_manifest(Manifest(id="ok", version="soon"), "x.py")


def test_docs_extensions_md_is_current() -> None:
    settings = load_settings(environ={}, user_file=False)
    assert EXTENSIONS_MD.read_text() == render_docs(extension_rows(settings, None)), (
        "docs/EXTENSIONS.md is out of date: run `autohands extensions docs --out docs`"
    )


def test_extensions_docs_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["extensions", "docs", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "EXTENSIONS.md").read_text()
    assert "### Telegram (`telegram`)" in text and "| `token` | secret string | required |" in text


# ---------------------------------------------------------------------------- the listing
def test_the_listing_shows_states_and_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ext"
    write_probe(folder, "1.0.0")
    (folder / "broken.py").write_text("def oops(:\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[hub]\ndata_dir = "{tmp_path / "data"}"\n[extensions]\npaths = ["{folder}"]\n'
        '[tools]\nenabled = ["file", "math"]\n[channels.telegram]\nenabled = true\ntoken = "123:abc"\n'
        'allow_users = ["1"]\n[channels.discord]\nenabled = false\n'
    )
    assert main(["--config", str(config), "extensions"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}
    assert "enabled: [channels.telegram]" in lines["telegram"]
    assert "configured: [channels.discord] (enabled = false)" in lines["discord"]
    assert "available: not in [tools] enabled" in lines["shell"]
    assert "enabled" in lines["math"]
    assert str(folder / "probe.py") in lines["probe"] and "1.0.0" in lines["probe"]
    assert "failed: SyntaxError" in lines["broken"]


def test_an_invalid_extensions_section_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[hub]\ndata_dir = "{tmp_path}"\n[extensions]\npath = ["x"]\n')
    assert main(["--config", str(config), "extensions"]) == 2
    assert "extensions.path" in capsys.readouterr().err


# ---------------------------------------------------------------------------- folders
async def test_a_folder_tool_is_loaded_reloaded_and_unloaded_while_a_run_is_in_flight(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    GATE.clear()
    STARTED.clear()
    folder = tmp_path / "ext"
    write_probe(folder, "1.0.0", wait=True)
    host = ExtensionHost(ExtensionsConfig(paths=(folder,)), None)
    await host.start()
    try:
        agent = agent_for(tmp_path, fake, host)
        assert "probe" in {s.name for s in agent.tool_specs}
        # A: probe (waits) … B runs entirely on the new version … A: probe again, then done
        fake.script.tool_calls(ScriptedCall("probe", {}, id="a1"))
        fake.script.tool_calls(ScriptedCall("probe", {}, id="b1")).reply("B done")
        fake.script.tool_calls(ScriptedCall("probe", {}, id="a2")).reply("A done")
        run_a = asyncio.create_task(collect(agent, FakeRunContext(inbound("A"))))
        await asyncio.wait_for(STARTED.wait(), 10)

        write_probe(folder, "2.0.0")
        report = host.reload()
        assert report.reloaded == ("probe",)
        b = await collect(agent, FakeRunContext(inbound("B")))
        assert b[-1].text == "B done"
        GATE.set()
        a = await asyncio.wait_for(run_a, 10)
        assert a[-1].text == "A done"
        # the in-flight run kept version 1 for both its calls; the run after the reload saw 2
        assert tool_results(fake) == {"a1": "1.0.0", "b1": "2.0.0", "a2": "1.0.0"}

        (folder / "probe.py").unlink()
        assert host.reload().unloaded == ("probe",)
        assert "probe" not in {s.name for s in agent.tool_specs}
        fake.script.assert_done()
        await agent.aclose()
    finally:
        await host.stop()


async def test_a_broken_extension_is_isolated_with_one_error_line(
    tmp_path: Path, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "ext"
    write_probe(folder, "1.0.0")
    (folder / "syntax.py").write_text("def oops(:\n")
    (folder / "nomanifest.py").write_text("entry_points = {}\n")
    (folder / "boom.py").write_text(
        PROBE.replace("probe", "boom").format(version="1.0.0", wait=False).replace("lambda c: [boom]", "explode") + "\n"
    )
    (folder / "boom.py").write_text(
        (folder / "boom.py")
        .read_text()
        .replace("manifest = ", "def explode(c):\n    raise RuntimeError('no key')\n\nmanifest = ")
    )
    host = ExtensionHost(ExtensionsConfig(paths=(folder,)), None)
    caplog.set_level(logging.INFO)
    await host.start()
    try:
        agent = agent_for(tmp_path, fake, host)
        names = {s.name for s in agent.tool_specs}
        assert "probe" in names and "calculate" in names and "boom" not in names
        failures = host.failures()
        assert failures["syntax"].startswith("SyntaxError")
        assert "no manifest" in failures["nomanifest"]
        assert failures["boom"] == "its tools could not be built: RuntimeError: no key"
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 3 and all(r.exc_info is None and "\n" not in r.getMessage() for r in errors)
        # fixed on disk, a reload brings it in
        (folder / "syntax.py").write_text(
            (folder / "probe.py")
            .read_text()
            .replace('"probe"', '"syntax"')
            .replace("async def probe", "async def syntax_probe")
            .replace("[probe]", "[syntax_probe]")
        )
        host.reload()
        assert "syntax_probe" in {s.name for s in agent.tool_specs}
        await agent.aclose()
    finally:
        await host.stop()


def test_a_folder_channel_is_found_by_load_entry_point(tmp_path: Path) -> None:
    folder = tmp_path / "ext"
    folder.mkdir()
    (folder / "mychan").mkdir()
    (folder / "mychan" / "__init__.py").write_text(
        "from hub.extensions import Manifest\nfrom ._impl import MyChannel\n"
        'manifest = Manifest(id="mychan")\nentry_points = {"autohands.channels": {"mychan": MyChannel}}\n'
    )
    (folder / "mychan" / "_impl.py").write_text("class MyChannel:\n    pass\n")
    folders = ExtensionFolders((folder,))
    assert folders.reload().loaded == ("mychan",)
    from hub.extensions import activate_folders, deactivate_folders

    activate_folders(folders)
    try:
        assert str(load_entry_point("autohands.channels", "mychan")) == "<class 'autohands_ext_mychan._impl.MyChannel'>"
    finally:
        deactivate_folders(folders)
    with pytest.raises(PluginError, match="no extension 'mychan'"):
        load_entry_point("autohands.channels", "mychan")


# ---------------------------------------------------------------------------- reload requests
async def test_the_running_hub_answers_a_reload_request_and_an_admin_reloads_in_chat(tmp_path: Path) -> None:
    folder = tmp_path / "ext"
    folder.mkdir()
    host = ExtensionHost(ExtensionsConfig(paths=(folder,), poll_seconds=0.05), tmp_path)
    await host.start()
    try:
        write_probe(folder, "1.0.0")
        requests = ReloadRequests(tmp_path)
        rid = requests.ask()
        answer = None
        for _ in range(200):  # the hub polls every 50 ms; the answer is a file
            answer = requests.answered(rid)
            if answer is not None:
                break
            await asyncio.sleep(0.05)
        assert answer == "extensions: loaded probe"
        assert json.loads(requests.answer.read_text())["id"] == rid

        write_probe(folder, "2.0.0")
        cmd = host.command()
        call: dict[str, Any] = {"inbound": inbound("/ext reload"), "args": "reload", "session": None}
        assert await cmd.handler(CommandCall(**call)) == "Only an admin can reload extensions."
        assert await cmd.handler(CommandCall(**call, is_admin=True)) == "extensions: reloaded probe"
        listing = await cmd.handler(CommandCall(**{**call, "args": ""}))
        assert listing == "Extensions:\nprobe 2.0.0 (probe): loaded"
    finally:
        await host.stop()


def test_reload_says_so_when_no_hub_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[hub]\ndata_dir = "{tmp_path}"\n')
    assert main(["--config", str(config), "extensions", "reload", "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("autohands: error: no running hub answered within 1 s") and err.count("\n") == 1
    assert not (tmp_path / "extensions.reload").exists()
