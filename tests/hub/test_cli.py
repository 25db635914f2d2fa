"""The CLI's error paths end with one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from hub.app import Hub
from hub.config import load_settings
from tests.chat_process import start_chat
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    *args: str, home: Path, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        cwd=ROOT,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("autohands: error: ")
    return lines[0]


def test_invalid_config_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nport = "eighty"\n')
    line = one_error_line(run_cli("config", "check", "--config", str(cfg), home=tmp_path))
    assert "server.port" in line and "eighty" in line


def test_invalid_channel_config_names_the_key(tmp_path: Path) -> None:
    # The shipped agent runtime with no provider: its start-up warning is not a second line.
    cfg = tmp_path / "c.toml"
    cfg.write_text('[channels.terminal]\nenabled = true\ncolour = "red"\n')
    proc = run_cli(
        "config", "check", "--config", str(cfg), home=tmp_path, env={"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""}
    )
    line = one_error_line(proc)
    assert "channels.terminal.colour: unknown key" in line and "allowed here: enabled" in line


def test_unknown_key_suggests_the_likely_one(tmp_path: Path) -> None:
    proc = run_cli("config", "check", home=tmp_path, env={"AUTOHANDS__SERVER__PROT": "8081"})
    assert "server.prot: unknown key (did you mean 'port'?" in one_error_line(proc)


def test_a_retired_key_from_an_old_default_file_loads_with_one_warning(tmp_path: Path) -> None:
    # Earlier default.toml files shipped `[log] log_message_text`, and copies of them set it.
    cfg = tmp_path / "c.toml"
    cfg.write_text('[log]\nlevel = "INFO"\nlog_message_text = false\n')
    proc = run_cli("config", "check", "--config", str(cfg), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "config: [log] log_message_text is no longer read: it never had an effect (message text is not "
        "logged); delete it from your config"
    ]


def test_bad_toml_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server\n")
    assert "not valid TOML" in one_error_line(run_cli("run", "--config", str(cfg), home=tmp_path))


def test_missing_config_file(tmp_path: Path) -> None:
    line = one_error_line(run_cli("run", "--config", str(tmp_path / "nope.toml"), home=tmp_path))
    assert "does not exist" in line


def test_unwritable_database_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{blocker}/sub/db.sqlite"\n[server]\nenabled = false\n')
    line = one_error_line(run_cli("run", "--config", str(cfg), home=tmp_path))
    assert "database" in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://user:pw@db.example/x", "pip install 'mysqlclient'"),  # driver not installed
        ("nonsense", "is not a usable database URL"),
        ("foo://x/y", "is not a usable database URL"),
    ],
)
def test_unusable_database_url(tmp_path: Path, url: str, expected: str) -> None:
    line = one_error_line(
        run_cli(
            "run",
            home=tmp_path,
            env={
                "AUTOHANDS__STORE__URL": url,
                "AUTOHANDS__AGENT__RUNTIME": "none",
                "AUTOHANDS__SERVER__ENABLED": "false",
            },
        )
    )
    assert expected in line and "pw" not in line


def test_unknown_command(tmp_path: Path) -> None:
    line = one_error_line(run_cli("frobnicate", home=tmp_path))
    assert "frobnicate" in line


def test_missing_env_var_in_config(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[channels.telegram]\nenabled = true\ntoken = "${NO_SUCH_VAR_X}"\n')
    line = one_error_line(run_cli("config", "check", "--config", str(cfg), home=tmp_path))
    assert "channels.telegram.token" in line and "NO_SUCH_VAR_X" in line


def test_missing_env_var_in_a_channel_that_is_off_is_a_warning(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[agent]\nruntime = "none"\n[channels.telegram]\ntoken = "${NO_SUCH_VAR_X}"\n')
    proc = run_cli("config", "check", "--config", str(cfg), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("autohands: warning: channels.telegram.token: environment variable NO_SUCH_VAR_X")
    assert "[channels.telegram] is off" in proc.stderr


def test_config_check_ok_and_env_override(tmp_path: Path) -> None:
    proc = run_cli("config", "check", home=tmp_path, env={"AUTOHANDS__AGENT__RUNTIME": "none"})
    assert proc.returncode == 0, proc.stderr
    assert "config OK" in proc.stdout


def test_choices_are_accepted_in_any_case(tmp_path: Path) -> None:
    # `synchronous = "normal"`, AUTOHANDS__LOG__LEVEL=info and `--log-level info` were refused.
    s = load_settings(
        environ={"AUTOHANDS__LOG__LEVEL": "info", "AUTOHANDS__LOG__FORMAT": "JSON"},
        overrides={"store": {"synchronous": "normal"}},
    )
    assert (s.store.synchronous, s.log.level, s.log.format) == ("NORMAL", "INFO", "json")
    proc = run_cli(
        "--log-level",
        "warning",
        "config",
        "check",
        home=tmp_path,
        env={"AUTOHANDS__AGENT__RUNTIME": "none", "AUTOHANDS__LOG__FORMAT": "Text"},
    )
    assert proc.returncode == 0, proc.stderr
    bad = one_error_line(run_cli("config", "check", home=tmp_path, env={"AUTOHANDS__LOG__LEVEL": "loud"}))
    assert "log.level:" in bad and "(got 'loud')" in bad


def test_doctor_prints_a_table(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[agent]\nruntime = "none"\n')
    proc = run_cli("doctor", "--config", str(cfg), home=tmp_path)
    assert "database" in proc.stdout and "channel telegram" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_doctor_with_the_default_agent_runtime(tmp_path: Path) -> None:
    # The shipped runtime ("llm") has an aclose; doctor once closed it with a nested
    # asyncio.run and died with a traceback on every fresh install.
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\ndata_dir = "{tmp_path / "d"}"\n')
    proc = run_cli("doctor", "--config", str(cfg), home=tmp_path, env={"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""})
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "no model provider configured" in proc.stdout and "database" in proc.stdout


async def test_doctor_beside_a_running_hub(tmp_path: Path) -> None:
    # Doctor is often run to look at a hub that is up: its database is fine, not an error.
    settings = load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(tmp_path / "d")},
            "server": {"enabled": False},
            "agent": {"runtime": "none"},
        },
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[agent]\nruntime = "none"\n')
    async with Hub(settings):
        proc = await asyncio.to_thread(run_cli, "doctor", "--config", str(cfg), home=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [db_row] = [ln for ln in proc.stdout.splitlines() if ln.startswith("database")]
    assert " ok " in db_row and f"in use by the running hub, pid {os.getpid()}" in db_row


@pytest.mark.parametrize("before_command", [True, False])
def test_options_count_before_or_after_the_command(tmp_path: Path, before_command: bool) -> None:
    # `autohands --config X run` once ran on the default config: the subcommand's own
    # default for --config overwrote the value given before it.
    opts = ["--config", str(tmp_path / "nope.toml")]
    args = [*opts, "run"] if before_command else ["run", *opts]
    assert "nope.toml" in one_error_line(run_cli(*args, home=tmp_path))


def test_chat_answers_on_stdin(tmp_path: Path) -> None:
    proc = run_cli("chat", home=tmp_path, stdin="hello\n/status\n", env={"AUTOHANDS__AGENT__RUNTIME": "echo"})
    assert proc.returncode == 0, proc.stderr
    assert "echo: hello" in proc.stdout
    assert "Status:" in proc.stdout


def test_chat_survives_input_that_is_not_utf8(tmp_path: Path) -> None:
    # Regression: a line of invalid UTF-8 killed the reader and the chat hung until killed.
    env = {**os.environ, "HOME": str(tmp_path), "AUTOHANDS__AGENT__RUNTIME": "echo"}
    proc = subprocess.run(
        [sys.executable, "-m", "hub.cli", "chat"],
        cwd=ROOT,
        env=env,
        input=b"hi\n\xff\xfe latin-1 caf\xe9\nafter\n",
        capture_output=True,
        timeout=60,
    )
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, proc.stderr
    assert "echo: hi" in out and "echo: after" in out
    assert "echo: \ufffd\ufffd latin-1 caf\ufffd" in out


def test_json_logs_redact_secrets(tmp_path: Path) -> None:
    token = "123456789:AAH" + "x" * 32
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[agent]\nruntime = "echo"\n'
        f'[channels.terminal]\nenabled = true\n[channels.telegram]\ntoken = "{token}"\n'
    )
    proc = run_cli(
        "chat",
        "--config",
        str(cfg),
        "--log-format",
        "json",
        "--log-level",
        "DEBUG",
        home=tmp_path,
        stdin=f"my token is {token}\n",
    )
    assert token not in proc.stderr and token not in proc.stdout.replace(f"echo: my token is {token}", "")
    assert all(
        line.startswith("{") for line in proc.stderr.splitlines() if line.strip() and not line.startswith("AutoHands")
    )


async def test_healthz_is_200_once_channels_started(tmp_path: Path) -> None:
    settings = load_settings(
        environ={},
        overrides={"hub": {"data_dir": str(tmp_path / "d")}, "server": {"port": 0}, "agent": {"runtime": "none"}},
    )
    async with Hub(settings) as hub, aiohttp.ClientSession() as http:
        assert hub.gateway is not None
        async with http.get(f"http://127.0.0.1:{hub.gateway.bound_port}/healthz") as r:
            assert r.status == 200
            assert (await r.json())["ok"] is True


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]])
def test_help(tmp_path: Path, args: list[str]) -> None:
    proc = run_cli(*args, home=tmp_path)
    assert proc.returncode == 0 and "autohands" in proc.stdout


def test_doctor_reports_the_workspace_and_the_command_sandbox(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[tools.shell]\nsandbox = "off"\n')
    proc = run_cli("doctor", "--config", str(cfg), home=tmp_path, env={"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""})
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0] + " " + line.split()[1]: line for line in proc.stdout.splitlines()}
    assert f"{tmp_path / 'd' / 'workspaces'} (one per user" in rows["tools workspace"]
    assert 'sandbox = "off"' in rows["tools shell"] and " off " in rows["tools shell"]


def test_a_workspace_that_holds_the_hubs_files_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[tools]\nworkspace = "{tmp_path}"\n')
    proc = run_cli("config", "check", "--config", str(cfg), home=tmp_path / "home")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "tools.workspace" in proc.stderr


async def test_chat_reply_names_a_404_and_the_base_url(tmp_path: Path) -> None:
    # A base_url without /v1 used to answer every message with "the conversation may be too long".
    async with FakeOpenAI(LLMScript(api_key="sk-local")) as fake:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[agent]\nprovider = "local"\n'
            f'[providers.local]\nkind = "openai"\nmodel = "m"\napi_key = "sk-local"\n'
            f'base_url = "{fake.base_url.removesuffix("/v1")}"\n'
        )
        proc = await start_chat(tmp_path, cfg)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(b"hello\n"), 50)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    reply = out.decode()
    assert "404 Not Found" in reply and "[providers.local] model and base_url" in reply
    assert "is base_url missing /v1?" in reply and "too long" not in reply
    assert fake.script.requests == []  # only /v1/chat/completions answers
