"""``autohands init``: driven on a pseudo-terminal as a person would, and by flags as a script
would, against the fake OpenAI server and the fake Telegram Bot API; what it writes is a private
file that loads and validates."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from hub._init_file import Answers, ChannelAnswer, ProviderAnswer, render_config
from hub._init_steps import CHANNELS, PROVIDERS, Secret, parse_secret
from hub.cli_init import offer_setup
from hub.config import load_settings
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram import FakeTelegram

pty = pytest.importorskip("pty")

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-right-key-123"


class Pty:
    """A command on a pseudo-terminal: wait for what it shows, type answers, keep a transcript."""

    def __init__(self, home: Path, argv: list[str], env: dict[str, str]) -> None:
        full_env = {**os.environ, "HOME": str(home), **env}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, *argv], full_env)
        self.transcript = b""
        self._seen = 0
        self.status: int | None = None

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # it ended and closed the terminal
            return False
        self.transcript += chunk
        return bool(chunk)

    def expect(self, marker: bytes, within: float = 30) -> None:
        """Wait until ``marker`` is shown after the last one waited for."""
        end = time.monotonic() + within
        while (at := self.transcript.find(marker, self._seen)) < 0:
            left = end - time.monotonic()
            if left <= 0 or not self._read(left):
                raise TimeoutError(f"{marker!r} not shown; screen: {self.transcript.decode(errors='replace')!r}")
        self._seen = at + len(marker)

    def answer(self, prompt: bytes, text: str = "") -> None:
        self.expect(prompt)
        os.write(self.fd, text.encode() + b"\r")

    def wait_exit(self, within: float = 30) -> int:
        end = time.monotonic() + within
        while time.monotonic() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.05):  # what it showed last
                    pass
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            self._read(0.05)
        raise TimeoutError(f"it did not exit; screen: {self.transcript.decode(errors='replace')!r}")

    def __enter__(self) -> Pty:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def wizard(home: Path, *args: str, env: dict[str, str] | None = None) -> Pty:
    return Pty(home, ["-m", "hub.cli", "init", *args], env or {})


def run_init(
    home: Path, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "init", *args],
        cwd=ROOT,
        env={**os.environ, "HOME": str(home), **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("autohands: error: ")
    return lines[0]


def config_of(home: Path) -> Path:
    return home / ".autohands" / "config.toml"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------------- on a terminal
async def test_a_person_sets_up_a_model_and_telegram_and_gets_a_private_file_that_loads(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript(api_key=KEY)) as llm, FakeTelegram() as tg:
        env = {"TZ": "Europe/Berlin", "AUTOHANDS__CHANNELS__TELEGRAM__BASE_URL": tg.base_url}

        def converse() -> Pty:
            with wizard(tmp_path, env=env) as term:
                term.answer(b"Provider [1]: ", "3")
                term.answer(b"Server URL [http://127.0.0.1:11434/v1]: ", llm.base_url)
                term.answer(b"API key", KEY)
                term.answer(b"Model [llama3.2]: ", "fake-model")
                term.expect(b"ok: 1 model(s); 'fake-model' listed")
                term.answer(b"Connect Telegram? [y/N]: ", "y")
                term.expect(b"@BotFather")
                term.answer(b"Telegram bot token", tg.token)
                term.expect(b"ok: bot @autohands_bot")
                term.expect(b"pairing approve CODE")
                term.answer(b"Your Telegram user id: ", "4242")
                term.answer(b"Connect Slack? [y/N]: ")
                term.answer(b"Connect Discord? [y/N]: ")
                term.answer(b"Time zone for reminders [Europe/Berlin]: ")
                term.expect(b"autohands doctor")
                assert term.wait_exit() == 0
                return term

        term = await asyncio.to_thread(converse)
        url = llm.base_url
    path = config_of(tmp_path)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    settings = load_settings(path, environ={})
    assert settings.agent["provider"] == "local"
    assert settings.providers["local"] == {
        "kind": "openai",
        "model": "fake-model",
        "base_url": url,
        "api_key": KEY,
    }
    assert settings.channels["telegram"]["admins"] == ["4242"]
    assert settings.channels["telegram"]["token"] == tg.token
    assert settings.scheduler["default_timezone"] == "Europe/Berlin"
    # Hidden input: neither secret was shown on the terminal.
    assert KEY.encode() not in term.transcript and tg.token.encode() not in term.transcript
    assert path.read_text().startswith("# AutoHands configuration")


async def test_a_refused_key_shows_why_and_the_person_changes_it(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript(api_key=KEY)) as llm:

        def converse() -> None:
            with wizard(tmp_path) as term:
                term.answer(b"Provider [1]: ", "openai-compatible")
                term.answer(b"Server URL", llm.base_url)
                term.answer(b"API key", "sk-wrong")
                term.answer(b"Model [llama3.2]: ", "fake-model")
                term.expect(b"failed: HTTP 401: the API key was refused")
                term.expect(b"fix: check [providers.local] api_key")
                term.answer(b"[k]eep them anyway? [c]: ", "c")
                term.answer(f"Server URL [{llm.base_url}]: ".encode())  # the last answers are the defaults
                term.answer(b"API key", KEY)
                term.answer(b"Model [fake-model]: ")
                term.expect(b"ok: 1 model(s)")
                for channel in (b"Telegram", b"Slack", b"Discord"):
                    term.answer(b"Connect " + channel + b"? [y/N]: ")
                term.answer(b"Time zone for reminders")
                assert term.wait_exit() == 0

        await asyncio.to_thread(converse)
    assert load_settings(config_of(tmp_path), environ={}).providers["local"]["api_key"] == KEY


async def test_retrying_a_failed_test_asks_nothing_again_and_keep_writes_it_anyway(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript(api_key=KEY)) as llm:

        def converse() -> None:
            with wizard(tmp_path, env={"MY_KEY": "sk-wrong"}) as term:
                term.answer(b"Provider [1]: ", "3")
                term.answer(b"Server URL", llm.base_url)
                term.answer(b"API key", "$MY_KEY")
                term.answer(b"Model [llama3.2]: ", "fake-model")
                term.answer(b"[k]eep them anyway? [c]: ", "r")
                term.expect(b"failed: HTTP 401")
                term.answer(b"[k]eep them anyway? [c]: ", "k")
                for channel in (b"Telegram", b"Slack", b"Discord"):
                    term.answer(b"Connect " + channel + b"? [y/N]: ")
                term.answer(b"Time zone for reminders")
                term.expect(b"reads $MY_KEY from the environment")
                assert term.wait_exit() == 0

        await asyncio.to_thread(converse)
        assert [r.path for r in llm.script.requests] == ["/v1/models", "/v1/models"]  # tested, then retried
    assert 'api_key = "${MY_KEY}"' in config_of(tmp_path).read_text()


def test_an_existing_file_is_kept_unless_the_person_agrees(tmp_path: Path) -> None:
    path = config_of(tmp_path)
    path.parent.mkdir()
    path.write_text("# mine\n")
    with wizard(tmp_path) as term:
        term.answer(b"Replace it (the old one is kept as config.toml.bak)? [y/N]: ")
        term.expect(b"Nothing written.")
        assert term.wait_exit() == 1
    assert path.read_text() == "# mine\n"


def test_end_of_input_leaves_without_writing(tmp_path: Path) -> None:
    proc = run_init(tmp_path, stdin="1\n")
    assert proc.returncode == 1
    assert "set-up cancelled; nothing was written" in proc.stderr and "Traceback" not in proc.stderr
    assert not config_of(tmp_path).exists()


def test_piped_answers_work_and_replacing_keeps_the_old_file(tmp_path: Path) -> None:
    path = config_of(tmp_path)
    path.parent.mkdir()
    path.write_text("# mine\n")
    answers = "y\n2\n$MY_ANTHROPIC_KEY\n\nn\nn\ny\n\n777\nAmerica/New_York\n"
    proc = run_init(tmp_path, "--no-test", stdin=answers, env={"DISCORD_BOT_TOKEN": "d-token"})
    assert proc.returncode == 0, proc.stderr
    settings = load_settings(path, environ={"MY_ANTHROPIC_KEY": "k", "DISCORD_BOT_TOKEN": "t"})
    assert settings.providers["anthropic"]["model"] == "claude-sonnet-4-5"
    assert settings.providers["anthropic"]["api_key"] == "k"
    assert settings.channels["discord"]["admins"] == ["777"]
    assert settings.scheduler["default_timezone"] == "America/New_York"
    backup = path.with_name("config.toml.bak")
    assert backup.read_text() == "# mine\n" and mode(backup) == 0o600
    assert "d-token" not in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------- as a script
async def test_a_script_sets_it_up_with_flags_and_the_secrets_stay_in_the_environment(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript(api_key=KEY)) as llm, FakeTelegram() as tg:
        env = {"MY_KEY": KEY, "TG": tg.token, "AUTOHANDS__CHANNELS__TELEGRAM__BASE_URL": tg.base_url}
        proc = await asyncio.to_thread(
            run_init,
            tmp_path,
            "--non-interactive",
            "--provider=openai-compatible",
            f"--base-url={llm.base_url}",
            "--model=fake-model",
            "--api-key-env=MY_KEY",
            "--telegram-token-env=TG",
            "--admin=telegram:99",
            "--timezone=Asia/Tokyo",
            env=env,
        )
    assert proc.returncode == 0, proc.stderr
    assert "ok: bot @autohands_bot" in proc.stdout and "BotFather" not in proc.stdout  # no hints for scripts
    assert KEY not in proc.stdout + proc.stderr and tg.token not in proc.stdout + proc.stderr
    path = config_of(tmp_path)
    text = path.read_text()
    assert 'api_key = "${MY_KEY}"' in text and 'token = "${TG}"' in text
    settings = load_settings(path, environ={"MY_KEY": "a", "TG": "b"})
    assert settings.channels["telegram"]["admins"] == ["99"]
    assert settings.scheduler["default_timezone"] == "Asia/Tokyo"
    assert mode(path) == 0o600


def test_a_script_connects_slack_in_socket_mode_and_discord(tmp_path: Path) -> None:
    flags = ["--slack-bot-token-env=SB", "--slack-app-token-env=SA", "--discord-token-env=D", "--admin=slack:U0ABC"]
    proc = run_init(tmp_path, "--non-interactive", "--no-test", "--provider=anthropic", *flags)
    assert proc.returncode == 0, proc.stderr
    settings = load_settings(
        config_of(tmp_path), environ={"SB": "xoxb-1", "SA": "xapp-1", "D": "d", "ANTHROPIC_API_KEY": "k"}
    )
    assert settings.channels["slack"] == {
        "enabled": True,
        "mode": "socket",
        "bot_token": "xoxb-1",
        "app_token": "xapp-1",
        "admins": ["U0ABC"],
    }
    assert settings.channels["discord"] == {"enabled": True, "token": "d"}
    assert settings.providers["anthropic"]["api_key"] == "k"


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ((), "--provider"),
        (("--provider", "openai-compatible"), "--base-url"),
        (("--provider", "openai", "--slack-signing-secret-env", "S"), "--slack-bot-token-env"),
        (("--provider", "openai", "--timezone", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_a_script_missing_an_answer_gets_one_error_line(tmp_path: Path, args: tuple[str, ...], names: str) -> None:
    line = one_error_line(run_init(tmp_path, "--non-interactive", "--no-test", *args))
    assert names in line
    assert not config_of(tmp_path).exists()


def test_an_admin_on_an_unknown_channel_is_a_usage_error(tmp_path: Path) -> None:
    line = one_error_line(run_init(tmp_path, "--non-interactive", "--provider", "openai", "--admin", "irc:1"))
    assert "--admin wants CHANNEL:ID" in line and "'irc:1'" in line


def test_a_script_does_not_replace_a_file_without_force(tmp_path: Path) -> None:
    path = config_of(tmp_path)
    path.parent.mkdir()
    path.write_text("# mine\n")
    args = ("--non-interactive", "--no-test", "--provider", "openai")
    assert "--force" in one_error_line(run_init(tmp_path, *args))
    assert path.read_text() == "# mine\n"
    proc = run_init(tmp_path, *args, "--force", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert load_settings(path, environ={"OPENAI_API_KEY": "x"}).providers["openai"]["api_key"] == "x"
    assert f"--config {path}" in proc.stdout  # the next steps name the file they need


async def test_a_script_whose_live_test_fails_writes_nothing(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript(api_key=KEY)) as llm:
        args = ("--non-interactive", "--provider", "openai-compatible", "--base-url", llm.base_url)
        proc = await asyncio.to_thread(run_init, tmp_path, *args, "--api-key-env", "K", env={"K": "sk-wrong"})
    line = one_error_line(proc)
    assert "the API key was refused" in line and "--no-test" in line
    assert not config_of(tmp_path).exists()


# ---------------------------------------------------------------------------- the first run
def test_the_first_chat_offers_the_wizard_on_a_terminal(tmp_path: Path) -> None:
    code = "import sys; from hub.cli_init import offer_setup; sys.exit(0 if offer_setup() else 3)"
    with Pty(tmp_path, ["-c", code], {}) as term:
        term.answer(b"No configuration yet \xe2\x80\x94 set up now? [Y/n]: ", "n")
        term.expect(b"`autohands init` sets it up any time")
        assert term.wait_exit() == 3
    assert not config_of(tmp_path).exists()


def test_accepting_the_offer_runs_the_wizard_and_a_model_that_is_down_can_be_kept(
    tmp_path: Path, closed_port: int
) -> None:
    path = tmp_path / "conf" / "autohands.toml"
    code = f"import sys; from hub.cli_init import offer_setup; sys.exit(0 if offer_setup({str(path)!r}) else 3)"
    with Pty(tmp_path, ["-c", code], {}) as term:
        term.answer(b"set up now? [Y/n]: ")
        term.answer(b"Provider [1]: ", "3")
        term.answer(b"Server URL", f"http://127.0.0.1:{closed_port}/v1")
        term.answer(b"API key")
        term.answer(b"Model [llama3.2]: ")
        term.expect(b"failed: ")
        term.answer(b"[k]eep them anyway? [c]: ", "k")
        for channel in (b"Telegram", b"Slack", b"Discord"):
            term.answer(b"Connect " + channel + b"? [y/N]: ")
        term.answer(b"Time zone for reminders")
        term.expect(f"autohands chat --config {path}".encode())
        assert term.wait_exit() == 0
    settings = load_settings(path, environ={})
    assert "api_key" not in settings.providers["local"]  # a local server needs none
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_no_offer_without_a_terminal_or_with_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert offer_setup() is False  # pytest's stdin is no terminal
    path = tmp_path / "c.toml"
    path.write_text("")
    assert offer_setup(path) is False
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------- the file
def test_the_rendered_file_reads_back_what_was_answered_whatever_the_characters() -> None:
    odd = 'a "quoted" \\ back\tslash ünï 🙂 \x7f end'
    answers = Answers(
        provider=ProviderAnswer(spec=PROVIDERS[0], model=odd, key=Secret(value=odd)),
        channels=(ChannelAnswer(spec=CHANNELS[1], mode="socket", secrets={"bot_token": Secret(env="B")}, admin=odd),),
        timezone="UTC",
    )
    data = tomllib.loads(render_config(answers))
    assert data["providers"]["openai"] == {"kind": "openai", "model": odd, "api_key": odd}
    assert data["channels"]["slack"] == {"enabled": True, "mode": "socket", "bot_token": "${B}", "admins": [odd]}


@pytest.mark.parametrize(
    ("typed", "secret"),
    [
        ("$OPENAI_API_KEY", Secret(env="OPENAI_API_KEY")),
        ("${X_1}", Secret(env="X_1")),
        ("sk-$abc", Secret(value="sk-$abc")),
    ],
)
def test_a_typed_secret_or_a_variable(typed: str, secret: Secret) -> None:
    assert parse_secret(typed) == secret
