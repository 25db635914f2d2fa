"""``autohands memory list | search | export | import | forget`` (hub/cli_memory.py) as the
operator runs it: per scope (a user with a linked identity, a conversation, the global one) and
across all, an export read back into a fresh data directory, a bad export refused whole, forgets
that leave other users' memories, and memory turned off."""

from __future__ import annotations

import asyncio
import io
import json
import stat
from pathlib import Path

import pytest

from hub.cli import main
from hub.memory import Memory, Scope
from hub.memory.sqlite import SqliteMemory
from hub.messages import ConversationRef
from tests.hub.test_cli import one_error_line, run_cli
from tests.hub.test_logs_cli import restored_logging

ALICE = Scope.user("telegram", "100")
ALICE_SLACK = Scope.user("slack", "U1")  # linked to ALICE in the config
BOB = Scope.user("telegram", "200")
ROOM = Scope.conversation(ConversationRef(channel="telegram", chat="-5"))
EVERYONE = Scope.shared()
ALL = (ALICE, ALICE_SLACK, BOB, ROOM, EVERYONE)


def config(tmp_path: Path, name: str = "data", memory: str = "") -> Path:
    """A config file whose data directory is ``tmp_path / name``; ALICE's identities linked."""
    cfg = tmp_path / f"{name}.toml"
    links = 'links = { alice = ["telegram:100", "slack:U1"] }'
    cfg.write_text(f'[hub]\ndata_dir = "{tmp_path / name}"\n[agent]\nruntime = "none"\n[memory]\n{memory or links}\n')
    return cfg


def seed(tmp_path: Path) -> dict[str, Memory]:
    """One memory per scope (two of ALICE's), by a short name."""

    async def store() -> dict[str, Memory]:
        async with SqliteMemory(tmp_path / "data" / "memory.db") as backend:
            made = {}
            for name, text, scope in (
                ("cat", "Alice's cat is called Miso", ALICE),
                ("bakery", "Alice works at the bakery", ALICE_SLACK),
                ("chess", "Bob plays chess on Sundays", BOB),
                ("standup", "This team's standup is at 9:30", ROOM),
                ("office", "The office is closed on Fridays", EVERYONE),
            ):
                made[name] = await backend.store(text, scope=scope, source="remember", scopes=[scope])
            return made

    return asyncio.run(store())


def stored(data: Path) -> list[Memory]:
    async def read() -> list[Memory]:
        async with SqliteMemory(data / "memory.db") as backend:
            return await backend.list(scopes=ALL, limit=100)

    return asyncio.run(read())


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))


def memory(cfg: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    """``autohands memory ARGS`` in this process: its exit status and its lines on stdout."""
    with restored_logging():
        status = main(["--config", str(cfg), "memory", *args])
    return status, capsys.readouterr().out.splitlines()


def ids(lines: list[str]) -> set[str]:
    return {line.split()[0] for line in lines}


def test_list_every_scope_or_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = seed(tmp_path)
    cfg = config(tmp_path)

    status, lines = memory(cfg, capsys, "list")
    assert status == 0
    rows, summary = lines[:5], lines[5:]
    assert ids(rows) == {m.id for m in made.values()}
    assert summary[0] == "5 memories in 5 scope(s):"
    assert [line.split()[:2] for line in summary[1:]] == [
        ["conversation", "telegram:-5"],
        ["global", "1"],
        ["user", "slack:U1"],
        ["user", "telegram:100"],
        ["user", "telegram:200"],
    ]
    [cat] = [line for line in rows if line.startswith(made["cat"].id)]
    assert "user telegram:100" in cat and "remember" in cat and cat.endswith("Alice's cat is called Miso")

    # A user is every identity linked to theirs; other users' memories are not shown.
    _, alice = memory(cfg, capsys, "list", "--user", "telegram:100")
    assert ids(alice) == {made["cat"].id, made["bakery"].id}
    _, room = memory(cfg, capsys, "list", "--conversation", "telegram:-5")
    assert ids(room) == {made["standup"].id}
    _, everyone = memory(cfg, capsys, "list", "--global")
    assert ids(everyone) == {made["office"].id}
    _, few = memory(cfg, capsys, "list", "--limit", "2")
    assert few[2] == "(2 of 5 shown; --limit 5 shows all)"
    assert memory(cfg, capsys, "list", "--user", "discord:9") == (0, ["no memories of user discord:9"])


def test_search_every_scope_or_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = seed(tmp_path)
    cfg = config(tmp_path)

    status, hits = memory(cfg, capsys, "search", "chess", "bakery")
    assert status == 0 and len(hits) == 2
    assert {hit.split()[2] for hit in hits} == {made["chess"].id, made["bakery"].id}
    assert all(float(hit.split()[0]) > 0 and hit.split()[1] == "fulltext" for hit in hits)
    _, alice = memory(cfg, capsys, "search", "chess", "bakery", "--user", "telegram:100")
    assert [hit.split()[2] for hit in alice] == [made["bakery"].id]
    assert memory(cfg, capsys, "search", "chess", "--global") == (0, ["no memory matches 'chess'"])


def test_export_then_import_into_a_fresh_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed(tmp_path)
    cfg = config(tmp_path)
    out = tmp_path / "memories.jsonl"

    assert memory(cfg, capsys, "export", "--out", str(out)) == (0, [f"exported 5 memories to {out}"])
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # memories are private
    lines = out.read_text().splitlines()
    assert [json.loads(line)["scope_kind"] for line in lines].count("user") == 3
    assert memory(cfg, capsys, "export")[1] == lines  # stdout: the same lines
    _, alice = memory(cfg, capsys, "export", "--user", "telegram:100")
    assert {json.loads(line)["scope_key"] for line in alice} == {"telegram:100", "slack:U1"}

    fresh = config(tmp_path, "fresh")
    assert memory(fresh, capsys, "import", str(out)) == (0, ["imported 5 memories; 0 were already present"])
    assert stored(tmp_path / "fresh") == stored(tmp_path / "data")  # ids, scopes, texts, times
    assert memory(fresh, capsys, "import", str(out)) == (0, ["imported 0 memories; 5 were already present"])
    assert len(stored(tmp_path / "fresh")) == 5


def test_a_bad_line_imports_nothing(tmp_path: Path) -> None:
    seed(tmp_path)
    run_cli("memory", "export", "--out", str(tmp_path / "good.jsonl"), "--config", str(config(tmp_path)), home=tmp_path)
    good = (tmp_path / "good.jsonl").read_text().splitlines()
    fresh = config(tmp_path, "fresh")
    broken = json.loads(good[1]) | {"created_at": "last tuesday"}
    cases = {
        json.dumps(broken): "line 3: created_at is not an ISO 8601 time: 'last tuesday'",
        "{not json": "line 3: not JSON",
        json.dumps(json.loads(good[1]) | {"scope_kind": "team"}): "line 3: scope_kind must be user, conversation",
        json.dumps({k: v for k, v in json.loads(good[1]).items() if k != "text"}): "line 3: text is missing",
        json.dumps(json.loads(good[1]) | {"colour": "red"}): "line 3: unknown field 'colour'",
    }
    for bad, why in cases.items():
        path = tmp_path / "bad.jsonl"
        path.write_text("\n".join([good[0], "", bad, *good[2:]]) + "\n")
        line = one_error_line(run_cli("memory", "import", str(path), "--config", str(fresh), home=tmp_path))
        assert f"{path}: {why}" in line and line.endswith("; nothing was imported"), line
    missing = one_error_line(run_cli("memory", "import", "nowhere.jsonl", "--config", str(fresh), home=tmp_path))
    assert missing.endswith("nowhere.jsonl: cannot read it (No such file or directory); nothing was imported")
    assert stored(tmp_path / "fresh") == []


def test_forget_one_or_all_of_a_scope(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = seed(tmp_path)
    cfg = config(tmp_path)

    assert memory(cfg, capsys, "forget", made["chess"].id) == (0, [f"forgot memory {made['chess'].id}"])
    with restored_logging():
        assert main(["--config", str(cfg), "memory", "forget", made["chess"].id]) == 1
    assert f"no memory {made['chess'].id} (see 'autohands memory list')" in capsys.readouterr().err
    # Given a scope, one id is forgotten only there.
    assert memory(cfg, capsys, "forget", made["office"].id, "--user", "telegram:100")[0] == 1
    capsys.readouterr()

    # Every linked identity of alice's goes; the conversation's and global memories stay.
    status, said = memory(cfg, capsys, "forget", "--user", "slack:U1", "--all", "--yes")
    assert status == 0 and said == ["forgot 2 memories of user telegram:100, user slack:U1"]
    assert {m.id for m in stored(tmp_path / "data")} == {made["standup"].id, made["office"].id}

    # Without --yes it asks; anything but yes forgets nothing.
    monkeypatch.setattr("sys.stdin", io.StringIO("no\n"))
    assert memory(cfg, capsys, "forget", "--conversation", "telegram:-5", "--all") == (
        1,
        ["Forget all 1 memories of conversation telegram:-5? [y/N] nothing was forgotten"],
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    status, said = memory(cfg, capsys, "forget", "--global", "--all")
    assert status == 0 and said[-1].endswith("forgot 1 memories of global")
    assert [m.id for m in stored(tmp_path / "data")] == [made["standup"].id]


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    cfg = str(config(tmp_path))
    for args, why in (
        (("forget",), "needs an ID or --all"),
        (("forget", "--all"), "needs --user CHANNEL:ID, --conversation KEY or --global"),
        (("list", "--user", "telegram"), "expected CHANNEL:USER_ID"),
        (("list", "--user", "telegram:1", "--global"), "not allowed with argument"),
    ):
        assert why in one_error_line(run_cli("memory", *args, "--config", cfg, home=tmp_path))


def test_memory_off_says_so(tmp_path: Path) -> None:
    cfg = config(tmp_path, memory="enabled = false")
    line = one_error_line(run_cli("memory", "list", "--config", str(cfg), home=tmp_path))
    assert line == "autohands: error: memory is off ([memory] enabled = false)"
