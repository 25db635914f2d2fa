"""Memory in a running hub: the model's ``remember`` on one channel is recalled for the same
person on another (linked identities), ``/memory`` and ``/forget`` answer without a model, and
``autohands doctor`` reports the backend (issue 25)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.app import Hub
from hub.memory.base import Scope
from hub.memory.recall import RECALL_HEADER
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

from .conftest import RecordingChannel
from .tasks_support import llm_settings
from .test_doctor import doctor, rows

LINKS = {"ada": ["rec:u1", "side:A1"]}


def last_user_text(body: Any) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


async def test_remembered_on_one_channel_is_recalled_on_a_linked_one(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    script.tool_calls(ScriptedCall("remember", {"text": "Ada's sister Ana lives in Lisbon"})).reply("Noted.")
    script.reply("In Lisbon.")
    script.reply("No idea.")
    rec, side = RecordingChannel("rec"), RecordingChannel("side")
    async with FakeOpenAI(script) as llm:
        settings = llm_settings(tmp_path, llm, memory={"links": LINKS})
        async with Hub(settings, channels={"rec": rec, "side": side}) as hub:
            await rec.say("remember that my sister Ana lives in Lisbon", user="u1")
            assert (await rec.wait_sent(1))[-1].text == "Noted."
            await side.say("where does my sister Ana live?", user="A1", chat="d1")
            assert (await side.wait_sent(1))[-1].text == "In Lisbon."
            await side.say("where does my sister Ana live?", user="B2", chat="d2")  # someone else
            await side.wait_sent(2)

            recalled, stranger = script.requests[2].body, script.requests[3].body
            assert RECALL_HEADER in last_user_text(recalled) and "Ana lives in Lisbon" in last_user_text(recalled)
            assert RECALL_HEADER not in last_user_text(stranger)
            assert recalled["messages"][0] == stranger["messages"][0]  # the same system prompt

            await side.say("", kind="command", command="memory", user="A1", chat="d1")
            listing = (await side.wait_sent(3))[-1].text
            assert "Ana lives in Lisbon" in listing
            await side.say("all", kind="command", command="forget", user="A1", chat="d1")
            assert (await side.wait_sent(4))[-1].text == "Forgot all 1 of your memories."
            assert hub.memory is not None
            assert await hub.memory.backend.scope_counts() == []
    script.assert_done()


async def test_memory_off_means_no_tools_and_no_commands(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    script.reply("hello")
    rec = RecordingChannel("rec")
    async with FakeOpenAI(script) as llm:
        async with Hub(llm_settings(tmp_path, llm, memory={"enabled": False}), channels={"rec": rec}) as hub:
            assert hub.memory is None and hub.commands.get("memory") is None
            await rec.say("hi")
            await rec.wait_sent(1)
    names = {t["function"]["name"] for t in script.requests[0].body.get("tools", [])}
    assert names and not names & {"remember", "recall", "forget"}


async def test_doctor_reports_the_memory_backend(tmp_path: Path) -> None:
    data = tmp_path / "d"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\ndata_dir = "{data}"\n[agent]\nruntime = "none"\n')
    code, out, _ = await doctor(cfg, tmp_path)
    assert code == 0, out
    assert rows(out)["memory"][0].split(None, 2)[2] == f"sqlite at {data / 'memory.db'}: 0 memories, 0 user(s)"

    cfg.write_text(f'[hub]\ndata_dir = "{data}"\n[agent]\nruntime = "none"\n[memory]\nbackend = "nosuch"\n')
    code, out, err = await doctor(cfg, tmp_path)
    assert code == 1 and " ERROR " in rows(out)["memory"][0] and "nosuch" in rows(out)["memory"][0]
    assert "Traceback" not in err


async def test_a_user_scope_is_the_channel_qualified_id(tmp_path: Path, make_hub: Any) -> None:
    async with make_hub() as hub:
        assert hub.memory is not None
        who = hub.memory.for_user("rec", "u1")
        assert who.own == (Scope.user("rec", "u1"),)


async def test_doctor_checks_the_embedding_endpoint_live(tmp_path: Path) -> None:
    data = tmp_path / "d"
    cfg = tmp_path / "c.toml"
    async with FakeOpenAI(LLMScript(api_key="sk-local")) as llm:
        cfg.write_text(
            f'[hub]\ndata_dir = "{data}"\n[agent]\nruntime = "none"\n'
            f'[providers.local]\nkind = "openai"\nmodel = "m1"\nbase_url = "{llm.base_url}"\napi_key = "sk-local"\n'
            '[memory]\nbackend = "vector"\nembedding_provider = "local"\nembedding_model = "fake-embed"\n'
        )
        code, out, _ = await doctor(cfg, tmp_path)
        assert code == 0, out
        table = rows(out)
        assert table["memory"][0].split(None, 2)[2].startswith("vector at ")
        assert table["memory embeddings"][0].split(None, 3)[3] == "fake-embed at [providers.local]: 256 dimensions"

        llm.embeddings_down = True
        code, out, _ = await doctor(cfg, tmp_path)
        row = rows(out)["memory embeddings"]
        assert code == 0 and " WARNING " in row[0] and "falls back to full text" in row[0]
        assert row[1].startswith("fix: check [providers.local] base_url")
        assert "sk-local" not in out
