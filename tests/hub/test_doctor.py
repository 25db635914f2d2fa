"""``autohands doctor`` checks for real: each channel's class probes its platform (the real SDKs
against the local fakes), providers make one round trip, the database is checked, and the
whole table is printed even when a section cannot be used."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from channels.discord import DiscordChannel
from channels.slack import SlackChannel
from channels.telegram import TelegramChannel
from hub.extensions import Probing
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
NO_KEYS = {"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""}


async def doctor(cfg: Path, home: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``autohands doctor`` in a subprocess (the fakes keep serving on this loop meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        "doctor",
        "--timeout",
        "5",
        "--config",
        str(cfg),
        cwd=str(ROOT),
        env={**os.environ, "HOME": str(home), **NO_KEYS, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 50)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def rows(stdout: str) -> dict[str, list[str]]:
    """Each row's lines (the row, then its ``fix:`` line) by what it checked."""
    table: dict[str, list[str]] = {}
    last = ""
    for line in stdout.splitlines():
        if line.startswith(" "):
            table[last].append(line.strip())
            continue
        last = line.split("  ")[0]
        table.setdefault(last, []).append(line)
    return table


# ---------------------------------------------------------------------------- channel probes
async def test_telegram_probe_names_the_bot_and_a_refused_token() -> None:
    async with FakeTelegram() as fake:
        section = {"enabled": True, "token": fake.token, "base_url": fake.base_url}
        ok = await TelegramChannel.probe("telegram", section, timeout=5)
        refused = await TelegramChannel.probe("telegram", {**section, "token": "123:wrong-token"}, timeout=5)

    assert isinstance(TelegramChannel, Probing)
    assert ok.status == "ok" and ok.detail.startswith("bot @") and fake.token not in ok.detail
    assert refused.status == "ERROR" and refused.detail == "the token was refused (401)"
    assert "[channels.telegram] token" in refused.fix and "wrong-token" not in refused.detail + refused.fix


async def test_telegram_probe_where_nothing_listens(closed_port: int) -> None:
    base = f"http://127.0.0.1:{closed_port}/bot"
    check = await TelegramChannel.probe("telegram", {"token": "1:x", "base_url": base}, timeout=5)

    assert check.status == "ERROR" and check.detail == f"nothing answers at {base} (connection refused)"


async def test_slack_probe_checks_the_bot_token_and_in_socket_mode_the_app_token() -> None:
    async with FakeSlack() as fake:
        http = {"bot_token": fake.bot_token, "signing_secret": "s", "api_url": fake.api_url}
        socket = {"bot_token": fake.bot_token, "app_token": fake.app_token, "mode": "socket", "api_url": fake.api_url}
        ok = await SlackChannel.probe("slack", http, timeout=5)
        ok_socket = await SlackChannel.probe("slack", socket, timeout=5)
        bad_bot = await SlackChannel.probe("slack", {**http, "bot_token": "xoxb-wrong"}, timeout=5)
        bad_app = await SlackChannel.probe("slack", {**socket, "app_token": "xapp-wrong"}, timeout=5)

    assert ok.status == "ok" and "(UBOT)" in ok.detail and "app token" not in ok.detail
    assert ok_socket.status == "ok" and "app token accepted" in ok_socket.detail
    assert bad_bot.status == "ERROR" and bad_bot.detail == "the bot_token was refused (invalid_auth)"
    assert bad_app.status == "ERROR" and bad_app.detail == "the app_token was refused (invalid_auth)"
    assert "[channels.slack] app_token" in bad_app.fix


async def test_discord_probe_names_the_bot_and_a_refused_token() -> None:
    async with FakeDiscord() as fake:
        section = {"token": fake.token, "api_base": fake.api_base, "gateway_url": fake.gateway_url}
        ok = await DiscordChannel.probe("discord", section, timeout=5)
        refused = await DiscordChannel.probe("discord", {**section, "token": "wrong"}, timeout=5)

    assert ok.status == "ok" and ok.detail.startswith("bot autohands (id ")
    assert refused.status == "ERROR" and refused.detail == "the token was refused (401)"


async def test_a_probe_of_an_invalid_section_names_the_key() -> None:
    check = await TelegramChannel.probe("tg", {"enabled": True}, timeout=1)
    assert check.status == "ERROR" and "channels.tg.token: Field required" in check.detail


# ---------------------------------------------------------------------------- the table
async def test_doctor_probes_each_channel_and_asks_only_for_what_its_mode_needs(tmp_path: Path) -> None:
    # A polling Telegram bot needs no webhook_secret, an HTTP-mode Slack app no app_token.
    async with FakeTelegram() as tg, FakeSlack() as slack:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[agent]\nruntime = "none"\n'
            f'[channels.telegram]\nenabled = true\ntoken = "{tg.token}"\nbase_url = "{tg.base_url}"\nallow_all = true\n'
            f'[channels.slack]\nenabled = true\nbot_token = "{slack.bot_token}"\nsigning_secret = "s3"\n'
            f'api_url = "{slack.api_url}"\nallow_all = true\n'
            "[channels.discord]\nenabled = true\n"
        )
        code, out, err = await doctor(cfg, tmp_path)

    table = rows(out)
    assert " ok " in table["channel telegram"][0] and "bot @" in table["channel telegram"][0]
    assert " ok " in table["channel slack"][0] and "(UBOT)" in table["channel slack"][0]
    assert " ERROR " in table["channel discord"][0] and "channels.discord.token" in table["channel discord"][0]
    assert table["channel discord"][1].startswith("fix: correct [channels.discord]")
    assert out.count("channels.discord.token") == 1
    assert "webhook_secret" not in out and "app_token" not in out
    assert tg.token not in out + err and slack.bot_token not in out + err
    assert code == 1 and "Traceback" not in err


async def test_an_unset_variable_fails_only_its_sections_row(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[agent]\nruntime = "none"\n'
        '[channels.telegram]\nenabled = true\ntoken = "${NO_SUCH_TOKEN_VAR}"\n'
    )
    code, out, err = await doctor(cfg, tmp_path)

    table = rows(out)
    assert table["config"][0].split()[1] == "ok" and len(table["config"]) == 1
    row = table["channel telegram"][0]
    assert " ERROR " in row and "channels.telegram.token" in row and "NO_SUCH_TOKEN_VAR" in row
    assert " ok " in table["database"][0] and "scheduler" in table
    assert code == 1 and "Traceback" not in err


async def test_doctor_shows_a_provider_base_url_missing_v1_with_its_fix(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript(api_key="sk-doctor-1")) as fake:
        base = fake.base_url.removesuffix("/v1")
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[agent]\nprovider = "local"\n'
            f'[providers.local]\nkind = "openai"\nmodel = "fake-model"\napi_key = "sk-doctor-1"\nbase_url = "{base}"\n'
        )
        code, out, err = await doctor(cfg, tmp_path)

    row, fix = rows(out)["provider local (default)"]
    assert " ERROR " in row and "HTTP 404" in row and "is base_url missing /v1?" in row
    assert fix == f"fix: set [providers.local] base_url = '{base}/v1'"
    assert "sk-doctor-1" not in out + err
    assert "HTTP Request" not in out + err  # the openai SDK's httpx2 logged each request at INFO
    assert code == 1


async def test_doctor_prints_the_channels_warnings(tmp_path: Path) -> None:
    async with FakeTelegram() as tg:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[agent]\nruntime = "none"\n'
            f'[channels.telegram]\nenabled = true\ntoken = "{tg.token}"\nbase_url = "{tg.base_url}"\n'
            'allow_users = ["alice"]\n'
        )
        code, out, err = await doctor(cfg, tmp_path)

    warnings = [line for line in out.splitlines() if line.startswith("channel telegram") and " WARNING " in line]
    assert warnings and all("[channels.telegram]" in w for w in warnings)
    assert code == 0, out + err


async def test_doctor_checks_the_database(tmp_path: Path) -> None:
    data = tmp_path / "d"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\ndata_dir = "{data}"\n[agent]\nruntime = "none"\n')
    code, out, _ = await doctor(cfg, tmp_path)
    assert code == 0, out
    table = rows(out)
    assert "writable, integrity ok" in table["database"][0] and "KB" in table["database"][0]
    assert table["scheduler"][0].split(None, 2)[2] == "0 active job(s)"

    (data / "autohands.db").write_bytes(b"this is not a database" * 300)
    code, out, err = await doctor(cfg, tmp_path)
    assert " ERROR " in rows(out)["database"][0] and rows(out)["database"][1].startswith("fix: ")
    assert code == 1 and "Traceback" not in err


async def test_a_config_that_does_not_load_is_one_error_row(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[hub\n")
    code, out, err = await doctor(cfg, tmp_path)

    row, fix = rows(out)["config"]
    assert " ERROR " in row and "not valid TOML" in row and fix.startswith("fix: correct the config file")
    assert code == 1 and "Traceback" not in err


async def test_the_data_directory_and_the_database_are_private(tmp_path: Path) -> None:
    from hub.store import Store

    data = tmp_path / "new" / "data"
    async with Store(f"sqlite:///{data / 'autohands.db'}") as store:
        await store.state_set("k", "v")  # the WAL exists while the store is open
        modes = {p.name: p.stat().st_mode & 0o777 for p in data.iterdir() if p.name.startswith("autohands.db")}
    assert data.stat().st_mode & 0o777 == 0o700 and (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    assert modes["autohands.db"] == 0o600
    assert modes["autohands.db-wal"] == 0o600 and modes["autohands.db-shm"] == 0o600
    assert modes["autohands.db.lock"] == 0o600  # it was 0644


async def test_a_database_from_before_is_made_private(tmp_path: Path) -> None:
    from hub.store import Store

    path = tmp_path / "autohands.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    async with Store(f"sqlite:///{path}"):
        pass
    assert path.stat().st_mode & 0o777 == 0o600
