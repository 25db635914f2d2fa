"""The hub killed with SIGKILL in the middle of a stream of messages answers each exactly once.

The hub runs in a subprocess fed by the loopback channel, which is installed through the
same entry-point group as real channels (``tests/loopback/site`` on PYTHONPATH).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from hub.sessions import MAX_ATTEMPTS, SET_ASIDE_TEXT
from tests.loopback.platform import LoopbackPlatform

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def _config(tmp: Path, base_url: str, *, echo_delay: float = 0.01) -> Path:
    cfg = tmp / "config.toml"
    cfg.write_text(f"""
[hub]
data_dir = "{tmp / "data"}"
[server]
enabled = false
[agent]
runtime = "echo"
echo_delay_seconds = {echo_delay}
[channels.loopback]
enabled = true
base_url = "{base_url}"
poll_timeout = 0.5
""")
    return cfg


async def _start_hub(cfg: Path) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "tests" / "loopback" / "site"), env.get("PYTHONPATH", "")]
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        "run",
        "--config",
        str(cfg),
        "--log-level",
        "WARNING",
        cwd=str(ROOT),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def test_sigkill_mid_stream_every_inbound_answered_exactly_once(tmp_path: Path) -> None:
    started: list[asyncio.subprocess.Process] = []
    try:
        await _scenario(tmp_path, started)
    finally:  # never leave a hub running behind a failed test
        for p in started:
            if p.returncode is None:
                p.kill()
                await p.wait()


async def _scenario(tmp_path: Path, started: list[asyncio.subprocess.Process]) -> None:
    total, chats = 240, 12

    async def start(cfg: Path) -> asyncio.subprocess.Process:
        p = await _start_hub(cfg)
        started.append(p)
        return p

    async with LoopbackPlatform() as platform:
        cfg = _config(tmp_path, platform.base_url)
        proc = await start(cfg)

        async def feed() -> None:
            for i in range(total):
                await platform.inject(chat=f"c{i % chats}", text=f"m{i}")
                await asyncio.sleep(0.002)

        feeder = asyncio.create_task(feed())
        # Kill twice at moments when work is certainly in flight.
        for threshold in (40, 120):
            await platform.wait_for(lambda t=threshold: len(platform.sent) >= t, timeout=30)
            await _kill(proc)
            proc = await start(cfg)
        await feeder
        try:
            await platform.wait_for(lambda: len(platform.replies_by_update()) >= total, timeout=60)
        except TimeoutError:
            proc.send_signal(signal.SIGTERM)
            _out, err = await proc.communicate()
            missing = sorted(set(map(str, range(1, total + 1))) - set(platform.replies_by_update()), key=int)
            raise AssertionError(f"unanswered: {missing[:20]}; hub stderr: {err.decode()[-3000:]}") from None

        # A second hub on the same database refuses to start, with one clear line.
        second = await start(cfg)
        _out, err = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode != 0
        assert b"already running" in err and b"Traceback" not in err

        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]

    replies = platform.replies_by_update()
    # Sends repeated after a kill (sent, but not yet marked sent): the platform's nonce absorbs
    # them here, as Discord's enforce_nonce does; on Telegram/Slack each would be a duplicate.
    print(f"\n{platform.send_calls - len(platform.sent)} re-send(s) after SIGKILL absorbed by the nonce")
    assert set(replies) == {str(i) for i in range(1, total + 1)}
    doubled = {k: v for k, v in replies.items() if len(v) != 1}
    assert not doubled, f"answered more than once: {sorted(doubled)[:10]}"
    for update_id, (reply,) in replies.items():
        assert reply.text == f"echo: m{int(update_id) - 1}"


async def test_a_message_whose_runs_sigkill_the_hub_is_set_aside_after_max_attempts(tmp_path: Path) -> None:
    """Each life of the hub is SIGKILLed while the first message's run is under way (its attempt
    already committed); the message queued behind it is charged nothing. After MAX_ATTEMPTS lives
    the next one answers the first with one notice and goes on with the queue."""
    started: list[asyncio.subprocess.Process] = []
    try:
        await _kill_every_run(tmp_path, started)
    finally:
        for p in started:
            if p.returncode is None:
                p.kill()
                await p.wait()


def _attempts(db: Path) -> list[tuple[str, int]]:
    """(status, attempts) of every inbound, oldest first, read beside the running hub."""
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        try:
            return conn.execute("SELECT status, attempts FROM messages ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # the hub has not created its tables yet
            return []


async def _wait_attempts(db: Path, first: int) -> None:
    """Until the first message's run ``first`` has started and the second one is recorded."""
    try:
        async with asyncio.timeout(30):
            while _attempts(db) != [("processing", first), ("received", 0)]:  # noqa: ASYNC110 - a row has no event
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"waiting for run {first}: (status, attempts) = {_attempts(db)}") from None


async def _kill_every_run(tmp_path: Path, started: list[asyncio.subprocess.Process]) -> None:
    db = tmp_path / "data" / "autohands.db"
    async with LoopbackPlatform() as platform:
        await platform.inject(chat="c1", text="hang")
        await platform.inject(chat="c1", text="after")
        for attempt in range(1, MAX_ATTEMPTS + 1):  # every run outlives its hub
            started.append(await _start_hub(_config(tmp_path, platform.base_url, echo_delay=3600)))
            await _wait_attempts(db, attempt)
            await _kill(started[-1])
        proc = await _start_hub(_config(tmp_path, platform.base_url))
        started.append(proc)
        await platform.wait_for(lambda: len(platform.sent) >= 2, timeout=30)
        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]

    replies = {k: [m.text for m in v] for k, v in platform.replies_by_update().items()}
    assert replies.keys() == {"1", "2"} and replies["2"] == ["echo: after"]
    (notice,) = replies["1"]
    assert notice.startswith(SET_ASIDE_TEXT.split(":")[0])
    assert _attempts(db) == [("failed", MAX_ATTEMPTS), ("answered", 1)]
