"""The hub killed with SIGKILL in the middle of a stream of messages answers each exactly once.

The hub runs in a subprocess fed by the loopback channel, which is installed through the
same entry-point group as real channels (``tests/loopback/site`` on PYTHONPATH).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.loopback.platform import LoopbackPlatform

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def _config(tmp: Path, base_url: str) -> Path:
    cfg = tmp / "config.toml"
    cfg.write_text(f"""
[hub]
data_dir = "{tmp / 'data'}"
[server]
enabled = false
[agent]
runtime = "echo"
echo_delay_seconds = 0.01
[channels.loopback]
enabled = true
base_url = "{base_url}"
poll_timeout = 0.5
""")
    return cfg


async def _start_hub(cfg: Path) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests" / "loopback" / "site"),
                                         env.get("PYTHONPATH", "")])
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.cli", "run", "--config", str(cfg), "--log-level", "WARNING",
        cwd=str(ROOT), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


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
