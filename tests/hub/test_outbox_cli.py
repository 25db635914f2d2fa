"""``autohands outbox list | retry`` as an operator runs it (a subprocess), beside a running hub
and without one: one line per row, one line per error, exit 0 or 1, and a failed reply that is
retried reaches its conversation."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub.app import Hub
from hub.config import Settings, load_settings
from hub.messages import ConversationRef, Outbound
from hub.store import Store
from tests.hub.conftest import RecordingChannel
from tests.hub.test_cli import one_error_line, run_cli

GAVE_UP = "gave up after 6.0 h of failed sends (301 attempt(s)); last error: rec sendMessage: Bad Gateway"


def setup(tmp_path: Path, **outbox: Any) -> tuple[Settings, Path]:
    """Settings for an in-process hub, and the same as a config file for the command line."""
    data = tmp_path / "data"
    cfg = tmp_path / "c.toml"
    lines = [
        f'[hub]\ndata_dir = "{data}"',
        "[server]\nenabled = false",
        '[agent]\nruntime = "none"',
        "[outbox]",
        *(f"{k} = {v}" for k, v in outbox.items()),
    ]
    cfg.write_text("\n".join(lines) + "\n")
    settings = load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(data)},
            "server": {"enabled": False},
            "agent": {"runtime": "none"},
            "outbox": outbox,
        },
    )
    return settings, cfg


def reply(text: str, chat: str = "c1") -> Outbound:
    return Outbound(conversation=ConversationRef(channel="rec", chat=chat), text=text)


async def seed(
    settings: Settings, *, failed: Sequence[str] = (), pending: Sequence[str] = (), sent: Sequence[str] = ()
) -> dict[str, Outbound]:
    """Rows as a hub leaves them: given up on, still pending, or sent."""
    made: dict[str, Outbound] = {}
    async with Store(settings.store_url) as store:
        for text in [*failed, *pending, *sent]:
            out = made[text] = reply(text)
            await store.record_outbound(out)
            if text in failed:
                await store.mark_failed(out.id, GAVE_UP)
            elif text in sent:
                await store.mark_sent(out.id, ["p1"])
    return made


def outbox(*args: str, cfg: Path, home: Path) -> tuple[int, list[str]]:
    proc = run_cli("outbox", *args, "--config", str(cfg), home=home)
    assert "Traceback" not in proc.stderr and proc.stderr == "", proc.stderr
    return proc.returncode, proc.stdout.splitlines()


async def test_list_shows_one_line_per_failed_or_pending_reply(tmp_path: Path) -> None:
    settings, cfg = setup(tmp_path)
    made = await seed(settings, failed=["given up"], pending=["on its way"], sent=["delivered"])
    code, lines = await asyncio.to_thread(outbox, "list", cfg=cfg, home=tmp_path)
    assert code == 0 and len(lines) == 2, lines
    by_id = {line.split()[0]: line for line in lines}
    failed = by_id[made["given up"].id]
    assert failed.split()[1:5] == ["failed", "rec", "rec:c1", "attempts"]
    assert re.search(r" attempts 1  age \d+ s  ", failed)
    assert failed.endswith(GAVE_UP)
    assert by_id[made["on its way"].id].split()[1] == "pending"
    _, only_failed = await asyncio.to_thread(outbox, "list", "--failed", cfg=cfg, home=tmp_path)
    assert [line.split()[0] for line in only_failed] == [made["given up"].id]
    _, one = await asyncio.to_thread(outbox, "list", "--limit", "1", cfg=cfg, home=tmp_path)
    assert len(one) == 2 and one[1] == "(1 of 2 shown; --limit 2 shows all)"


async def test_retry_refuses_what_is_not_a_failed_reply_and_changes_nothing(tmp_path: Path) -> None:
    settings, cfg = setup(tmp_path)
    made = await seed(settings, failed=["given up"], sent=["delivered"])
    for other in ("nope", made["delivered"].id):
        proc = await asyncio.to_thread(
            run_cli, "outbox", "retry", made["given up"].id, other, "--config", str(cfg), home=tmp_path
        )
        line = one_error_line(proc)
        assert proc.returncode == 1 and other in line and "nothing was resent" in line
    _, lines = await asyncio.to_thread(outbox, "list", "--failed", cfg=cfg, home=tmp_path)
    assert [line.split()[0] for line in lines] == [made["given up"].id]  # still failed


def test_retry_needs_ids_or_all_failed(tmp_path: Path) -> None:
    _, cfg = setup(tmp_path)
    for args in (["retry"], ["retry", "x", "--all-failed"], []):
        line = one_error_line(run_cli("outbox", *args, "--config", str(cfg), home=tmp_path))
        assert "outbox" in line


async def test_a_failed_reply_retried_beside_a_running_hub_is_sent_by_it(tmp_path: Path) -> None:
    settings, cfg = setup(tmp_path, resend_check_seconds=0.05)
    made = await seed(settings, failed=["lost in the outage"])
    channel = RecordingChannel()
    async with asyncio.timeout(30), Hub(settings, channels={"rec": channel}):
        code, lines = await asyncio.to_thread(outbox, "retry", made["lost in the outage"].id, cfg=cfg, home=tmp_path)
        assert code == 0
        assert lines[0].split()[:2] == [made["lost in the outage"].id, "pending"]
        assert lines[1].startswith("1 reply set back to pending; the running hub (pid ")
        assert lines[1].endswith(f"{os.getpid()} on {os.uname().nodename}) sends them within 0.05 s")
        await channel.wait_sent(1, timeout=10)
    assert channel.texts() == ["lost in the outage"]
    assert await asyncio.to_thread(outbox, "list", cfg=cfg, home=tmp_path) == (0, ["no failed or pending replies"])


async def test_failed_replies_retried_while_no_hub_runs_are_sent_when_it_starts(tmp_path: Path) -> None:
    settings, cfg = setup(tmp_path)
    await seed(settings, failed=["first", "second"], sent=["delivered"])
    code, lines = await asyncio.to_thread(outbox, "retry", "--all-failed", cfg=cfg, home=tmp_path)
    assert code == 0 and len(lines) == 3
    assert lines[2] == "2 replies set back to pending; the hub sends them when it starts ('autohands run')"
    channel = RecordingChannel()
    async with asyncio.timeout(30), Hub(settings, channels={"rec": channel}):
        await channel.wait_sent(2, timeout=10)
    assert channel.texts() == ["first", "second"]
    again = await asyncio.to_thread(outbox, "retry", "--all-failed", cfg=cfg, home=tmp_path)
    assert again == (0, ["no failed replies"])
