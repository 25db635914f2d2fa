"""``autohands sessions list | show`` as an operator runs it (a subprocess), beside a running hub
and without one: conversations newest first, and a conversation readably, tool calls one line each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub.agent import HistoryItem, Usage
from hub.app import Hub
from hub.messages import ConversationRef, Inbound, Outbound, Sender
from hub.store import Store
from tests.hub.conftest import RecordingChannel
from tests.hub.test_cli import one_error_line, run_cli
from tests.hub.test_outbox_cli import setup

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def _inbound(chat: str, text: str, n: int, *, channel: str = "rec", name: str = "Ada") -> Inbound:
    return Inbound(
        kind="message",
        conversation=ConversationRef(channel=channel, chat=chat),
        sender=Sender(id="u1", name=name),
        text=text,
        platform_id=f"{chat}-{n}",
    )


async def _seed(url: str) -> None:
    """Two conversations: c1 with a tool call, a refused one and tokens; c2 on another channel,
    newer, whose history was cleared (``/new``)."""
    async with Store(url) as store:
        first = await store.record_inbound(_inbound("c1", "what is in README.md? \x1b[2J", 1))
        assert first is not None
        conv = first.conversation
        calls = [
            {"id": "a", "name": "read_file", "arguments": '{"path": "README.md"}'},
            {"id": "b", "name": "delete_file", "arguments": '{"path": "README.md"}'},
        ]
        results = [
            {"call_id": "a", "name": "read_file", "content": "# AutoHands", "is_error": False},
            {"call_id": "b", "name": "delete_file", "content": "denied: the user denied the call", "is_error": True},
        ]
        items = [
            HistoryItem(kind="user", data={"text": "[sent 2025-03-01 09:30 (Sat) UTC]\nwhat is in README.md?"}),
            HistoryItem(kind="assistant", data={"text": "", "tool_calls": calls}),
            HistoryItem(kind="tool_results", data={"results": results}),
            HistoryItem(kind="assistant", data={"text": "It is the project's readme.\nTwo lines.", "tool_calls": []}),
        ]
        items = [
            HistoryItem(kind=i.kind, data=i.data, created_at=T0 + timedelta(seconds=n)) for n, i in enumerate(items)
        ]
        reply = Outbound(conversation=conv, text="It is the project's readme.", inbound_id=first.id)
        usage = [("main", "m", Usage(input_tokens=1200, output_tokens=34))]
        await store.finish_run(first, reply=reply, remember=items, usage=usage)

        second = await store.record_inbound(_inbound("c2", "hello there", 2, channel="other", name="Bob"))
        assert second is not None
        await store.finish_run(second, reply=Outbound(conversation=second.conversation, text="Hi Bob!"))


async def test_list_and_show_without_a_hub(tmp_path: Path) -> None:
    settings, cfg = setup(tmp_path)
    await _seed(settings.store_url)

    listing = run_cli("sessions", "list", "--config", str(cfg), home=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = listing.stdout.splitlines()
    assert [r.split()[0] for r in rows] == ["other:c2", "rec:c1"]  # newest first
    assert "1 message(s)" in rows[1] and "1,234 tokens (1,200 in, 34 out)" in rows[1] and "active " in rows[1]

    only = run_cli("sessions", "list", "--channel", "rec", "--limit", "5", "--config", str(cfg), home=tmp_path)
    assert [r.split()[0] for r in only.stdout.splitlines()] == ["rec:c1"]
    one = run_cli("sessions", "list", "--limit", "1", "--config", str(cfg), home=tmp_path)
    assert one.stdout.splitlines()[-1] == "(1 of 2 shown; --limit 2 shows all)"

    show = run_cli("sessions", "show", "rec:c1", "--config", str(cfg), home=tmp_path)
    assert show.returncode == 0, show.stderr
    lines = show.stdout.splitlines()
    assert lines[0].startswith("rec:c1")
    body = [ln[18:] for ln in lines[1:]]
    assert body == [
        "user: what is in README.md?",
        "🔧 read_file README.md ✓",
        "🔧 delete_file README.md ✗ refused: the user denied the call",
        "assistant: It is the project's readme.",
        "Two lines.",
    ]
    assert [ln[:4] == "2025" for ln in lines[1:]] == [True, True, False, True, False]  # when, once per entry


async def test_show_after_new_falls_back_to_messages_and_replies(tmp_path: Path) -> None:
    settings, cfg = setup(tmp_path)
    await _seed(settings.store_url)
    show = run_cli("sessions", "show", "other:c2", "--config", str(cfg), home=tmp_path)
    assert show.returncode == 0, show.stderr
    lines = show.stdout.splitlines()
    assert lines[1].startswith("(no history kept")
    assert [ln[18:] for ln in lines[2:]] == ["Bob: hello there", "reply [pending]: Hi Bob!"]


async def test_terminal_control_characters_are_not_printed(tmp_path: Path) -> None:
    settings, cfg = setup(tmp_path)
    await _seed(settings.store_url)
    async with Store(settings.store_url) as store:
        await store.clear_history("rec:c1")
    show = run_cli("sessions", "show", "rec:c1", "--config", str(cfg), home=tmp_path)
    assert "\x1b" not in show.stdout and "what is in README.md? ?[2J" in show.stdout


async def test_works_beside_a_running_hub(tmp_path: Path) -> None:
    settings, cfg = setup(tmp_path)
    await _seed(settings.store_url)
    async with Hub(settings, channels={"rec": RecordingChannel()}):
        listing = run_cli("sessions", "list", "--config", str(cfg), home=tmp_path)
        show = run_cli("sessions", "show", "rec:c1", "--config", str(cfg), home=tmp_path)
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 2, listing.stderr
    assert show.returncode == 0 and "🔧 read_file README.md ✓" in show.stdout, show.stderr


def test_errors_are_one_line(tmp_path: Path) -> None:
    _, cfg = setup(tmp_path)
    line = one_error_line(run_cli("sessions", "show", "rec:nope", "--config", str(cfg), home=tmp_path))
    assert "no conversation 'rec:nope'" in line and "autohands sessions list" in line
    assert "needs an action" in one_error_line(run_cli("sessions", "--config", str(cfg), home=tmp_path))
    assert "--limit" in one_error_line(run_cli("sessions", "list", "--limit", "0", "--config", str(cfg), home=tmp_path))
    empty = run_cli("sessions", "list", "--config", str(cfg), home=tmp_path)
    assert empty.returncode == 0 and empty.stdout == "no conversations\n"
