"""``autohands chat`` in a real terminal (a pseudo-terminal, so readline and Ctrl+C behave as for
a person): Ctrl+C stops the answer in progress; at the prompt it leaves at once and gives the
terminal back as it found it."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.chat_process import start_chat
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

pty = pytest.importorskip("pty")
termios = pytest.importorskip("termios")

ROOT = Path(__file__).resolve().parents[2]
PROMPT = b"> "
YES_NO = b"[y/N] "


class Terminal:
    """``autohands chat`` on a pseudo-terminal: type into it, read its screen, send Ctrl+C."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "HOME": str(tmp_path), **(env or {})}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the chat
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "hub.cli", "chat", *args], full_env)
        self.screen = b""
        self.status: int | None = None

    def modes(self) -> tuple[bool, bool]:
        """(echo, canonical line mode) of the terminal right now."""
        lflag = termios.tcgetattr(self.fd)[3]
        return bool(lflag & termios.ECHO), bool(lflag & termios.ICANON)

    def read_until(self, marker: bytes, within: float) -> None:
        end = time.monotonic() + within
        while marker not in self.screen:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{marker!r} not shown; screen: {self.screen.decode(errors='replace')!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.screen += os.read(self.fd, 4096)
                except OSError:  # the chat ended and closed the terminal
                    raise TimeoutError(f"{marker!r} not shown before the end") from None

    def expect(self, marker: bytes, within: float = 10) -> None:
        """Wait for ``marker`` in what was shown since the last ``expect``, then consume up to it
        (so the next prompt waited for is a new one, and typing waits for it like a person)."""
        self.read_until(marker, within)
        self.screen = self.screen[self.screen.index(marker) + len(marker) :]

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def ctrl_c(self) -> None:
        os.kill(self.pid, signal.SIGINT)  # what the terminal sends the foreground process on ^C

    def wait_exit(self, within: float) -> int:
        end = time.monotonic() + within
        while time.monotonic() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    self.screen += os.read(self.fd, 4096)
                except OSError:
                    pass
        raise TimeoutError(f"the chat did not exit; screen: {self.screen.decode(errors='replace')!r}")

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def chat_config(tmp_path: Path, base_url: str) -> Path:
    """A model at ``base_url`` (the fake OpenAI server) and a shell tool that may run ``ls``."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[providers.m]\nkind = "openai"\n'
        f'base_url = "{base_url}"\nmodel = "m"\napi_key = "sk-x"\n[agent]\nprovider = "m"\n'
        '[tools.shell]\nallow_commands = ["ls"]\n'
    )
    return cfg


def test_ctrl_c_at_the_prompt_leaves_at_once_and_restores_the_terminal(tmp_path: Path) -> None:
    # Regression: the chat then waited for Enter (its input thread was joined at exit).
    with Terminal(tmp_path, env={"AUTOHANDS__AGENT__RUNTIME": "echo"}) as term:
        before = term.modes()
        term.expect(PROMPT, within=30)  # a cold start imports every SDK
        term.type("hello\r")
        term.expect(b"echo: hello")
        term.expect(PROMPT)  # the next prompt: readline is reading a line
        assert term.modes() == (False, False)
        term.ctrl_c()
        assert term.wait_exit(within=10) == 130
        # readline never got to restore the terminal: the chat did, or the shell would not echo
        assert term.modes() == before == (True, True)


async def chat_with_model(
    tmp_path: Path, script: LLMScript, conversation: Callable[[Terminal, FakeOpenAI], None]
) -> int:
    """Run ``conversation`` (blocking steps on the terminal) against a chat whose model is the
    fake OpenAI server playing ``script``; the chat must then leave on Ctrl+D. Its exit code."""
    async with FakeOpenAI(script) as llm:
        cfg = chat_config(tmp_path, llm.base_url)

        def converse() -> int:
            with Terminal(tmp_path, "--config", str(cfg)) as term:
                term.expect(PROMPT, within=30)  # a cold start imports every SDK
                conversation(term, llm)
                term.type("\x04")  # Ctrl+D leaves
                return term.wait_exit(within=10)

        return await asyncio.to_thread(converse)


async def test_ctrl_c_stops_the_answer_and_the_chat_goes_on(tmp_path: Path) -> None:
    def conversation(term: Terminal, llm: FakeOpenAI) -> None:
        term.type("tell me a long story\r")
        term.expect(b"tell me a long story")
        deadline = time.monotonic() + 10  # until the run has reached the model
        while not llm.script.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        term.ctrl_c()
        term.expect(b"stopping the answer")
        term.expect(b"Stopped.")
        term.expect(PROMPT)  # the chat goes on

    assert await chat_with_model(tmp_path, LLMScript("echo", latency=30), conversation) == 0  # a long answer


def ls_script() -> LLMScript:
    script = LLMScript()
    script.tool_calls(ScriptedCall("run_command", {"command": "ls"}, id="call_1"))
    script.reply("Listed.")
    return script


async def test_a_typed_yes_approves_and_the_prompt_comes_back(tmp_path: Path) -> None:
    # Regression: the "yes" was waited for as if it had a reply of its own, so after the answer
    # the prompt never came back (and Ctrl+D could not leave).
    def conversation(term: Terminal, llm: FakeOpenAI) -> None:
        term.type("list my files\r")
        term.expect(YES_NO)
        term.type("yes\r")
        term.expect(b"Approved")
        term.expect(b"Listed.")
        term.expect(PROMPT)
        term.type("/status\r")
        term.expect(b"Status: idle")
        term.expect(PROMPT)

    script = ls_script()
    assert await chat_with_model(tmp_path, script, conversation) == 0
    script.assert_done()


async def test_piped_chat_with_an_approval_ends_at_the_end_of_input(tmp_path: Path) -> None:
    async with FakeOpenAI(ls_script()) as llm:
        cfg = chat_config(tmp_path, llm.base_url)
        proc = await start_chat(tmp_path, cfg)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(b"list my files\n")
            await proc.stdin.drain()
            seen = b""
            while b"[y/N]" not in seen:  # answer only once asked, as a person would
                line = await asyncio.wait_for(proc.stdout.readline(), 30)
                assert line, "the chat ended before asking"
                seen += line
            proc.stdin.write(b"yes\n")
            proc.stdin.close()
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:  # it hung (the bug this guards against): do not leave it
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Listed." in out


def echo_chat(tmp_path: Path) -> Terminal:
    """A chat whose agent echoes what it is sent (no model)."""
    return Terminal(tmp_path, env={"AUTOHANDS__AGENT__RUNTIME": "echo"})


def test_a_reminder_is_labelled_on_its_own_line_and_the_typing_goes_on(tmp_path: Path) -> None:
    # Regression: the reminder's text came right after the "> " prompt, as if the person had typed it.
    with echo_chat(tmp_path) as term:
        term.expect(PROMPT, within=30)
        term.type("/remind in 2 seconds stretch\r")
        term.expect(b"Job ")
        term.expect(PROMPT)
        term.type("half a")
        term.expect(b"half a")
        term.expect("⏰ Reminder: stretch".encode())
        # the prompt line was cleared first; a fresh prompt holds what had been typed so far
        assert term.screen.startswith(b"\r\n> half a"), term.screen
        term.type(" line\r")
        term.expect(b"echo: half a line")
        term.expect(PROMPT)
        term.type("\x04")
        assert term.wait_exit(within=10) == 0


def test_a_multi_line_paste_or_a_quoted_block_is_one_message(tmp_path: Path) -> None:
    with echo_chat(tmp_path) as term:
        term.expect(PROMPT, within=30)
        # What a terminal sends for a paste once bracketed paste is on: the lines between markers.
        term.type("\x1b[200~first line\rsecond line\x1b[201~\r")
        term.expect(b"echo: first line\r\nsecond line\r\n")
        term.expect(PROMPT)
        term.type('"""\r')
        term.expect(b"... ")
        term.type("typed by hand\r")
        term.expect(b"... ")
        term.type('over two lines"""\r')
        term.expect(b"echo: typed by hand\r\nover two lines\r\n")
        term.expect(PROMPT)
        term.type("\x04")
        assert term.wait_exit(within=10) == 0
        assert b"echo: first line\r\n" not in term.screen  # each block was answered once


def test_the_terminal_is_asked_for_bracketed_paste(tmp_path: Path) -> None:
    with echo_chat(tmp_path) as term:
        term.read_until(PROMPT, within=30)
        assert b"\x1b[?2004h" + PROMPT in term.screen
        term.ctrl_c()
        assert term.wait_exit(within=10) == 130
        assert term.screen.rstrip().endswith(b"\x1b[?2004l")  # and given back without it


async def test_ctrl_c_typed_during_an_answer_prints_one_line(tmp_path: Path) -> None:
    # Regression: "^C — stopping the answer …", "Stopping." and "Stopped." on three lines.
    def conversation(term: Terminal, llm: FakeOpenAI) -> None:
        term.type("tell me a long story\r")
        term.expect(b"tell me a long story\r\n")
        deadline = time.monotonic() + 10
        while not llm.script.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        term.type("\x03")  # as a person presses it: the terminal sends SIGINT (and echoes ^C)
        term.read_until(PROMPT, within=10)
        shown = term.screen[: term.screen.index(PROMPT)]
        assert shown.count(b"\n") == 1, shown
        assert b"stopping the answer (Ctrl+C again to leave)\xe2\x80\xa6 Stopped.\r\n" in shown
        assert b"Stopping." not in shown
        term.expect(PROMPT)

    assert await chat_with_model(tmp_path, LLMScript("echo", latency=30), conversation) == 0


async def test_an_approval_is_asked_as_y_n_and_enter_means_no(tmp_path: Path) -> None:
    script = LLMScript()
    script.tool_calls(ScriptedCall("run_command", {"command": "ls"}, id="call_1"))
    script.reply("Not listed, then.")

    def conversation(term: Terminal, llm: FakeOpenAI) -> None:
        term.type("list my files\r")
        term.read_until(YES_NO, within=10)
        asked = term.screen[: term.screen.index(YES_NO)].decode()
        lines = asked[asked.index("Approve running run_command?") :].splitlines()
        assert lines[0].startswith("Approve running run_command? ")
        assert lines[1] == 'command: "ls"'
        assert "tap a button" not in asked and "Approve / Deny" not in asked
        term.expect(YES_NO)
        term.type("\r")  # Enter: no
        term.expect(b"Not run: the user denied the call.")
        term.expect(b"Not listed, then.")
        term.expect(PROMPT)
        assert b"Approve running" not in term.screen  # the outcome, not the question again

    assert await chat_with_model(tmp_path, script, conversation) == 0
    script.assert_done()
    tool_result = next(m for m in script.requests[1].body["messages"] if m["role"] == "tool")
    assert "denied" in tool_result["content"]


async def test_logs_stay_out_of_the_chat_and_an_error_is_one_dimmed_line(tmp_path: Path) -> None:
    script = LLMScript()
    script.error(401, message="bad key")  # the provider refuses: an error is logged, the reply says why

    def conversation(term: Terminal, llm: FakeOpenAI) -> None:
        term.type("hello\r")
        term.expect(b"hello\r\n")
        term.read_until(PROMPT, within=15)
        shown = term.screen[: term.screen.index(PROMPT)]
        lines = [line.split(b"\r")[-1] for line in shown.split(b"\r\n")]  # as the screen shows them
        dimmed = [line for line in lines if line.startswith(b"\x1b[2m")]
        assert len(dimmed) == 1 and dimmed[0].startswith(b"\x1b[2m[error] "), shown
        assert dimmed[0].endswith(b"\x1b[0m")
        term.expect(PROMPT)

    assert await chat_with_model(tmp_path, script, conversation) == 0
    log_file = tmp_path / "d" / "logs" / "autohands.log"
    assert "provider failed" in log_file.read_text()


async def test_the_banner_comes_first_and_tells_of_an_earlier_conversation(tmp_path: Path) -> None:
    def first_screen(term: Terminal) -> bytes:
        term.read_until(PROMPT, within=30)
        return term.screen[: term.screen.index(PROMPT)]

    async with FakeOpenAI(LLMScript("echo")) as llm:
        cfg = chat_config(tmp_path, llm.base_url)

        def two_chats() -> tuple[bytes, bytes]:
            with Terminal(tmp_path, "--config", str(cfg)) as term:
                fresh = first_screen(term)
                term.expect(PROMPT)
                term.type("remember me\r")
                term.expect(b"echo: ")  # the model is sent the time it was said, then the text
                term.expect(b"remember me")
                term.expect(PROMPT)
                term.type("\x04")
                assert term.wait_exit(within=10) == 0
            with Terminal(tmp_path, "--config", str(cfg)) as term:
                again = first_screen(term)
                term.ctrl_c()
                assert term.wait_exit(within=10) == 130
            return fresh, again

        fresh, again = await asyncio.to_thread(two_chats)
    # Regression: the prompt came before the banner, and the chat went on from before unsaid.
    assert b"AutoHands terminal chat" in fresh and b"Continuing" not in fresh
    assert b"AutoHands terminal chat" in again
    assert b"Continuing your conversation from " in again
    assert "(2 messages) — /new starts afresh.".encode() in again


async def test_chat_beside_a_running_hub_is_refused_in_one_line(tmp_path: Path) -> None:
    from hub.config import load_settings
    from hub.store import Store

    cfg = chat_config(tmp_path, "http://127.0.0.1:9")
    # A hub with a server is attached to instead (tests/hub/test_chat_attach.py)
    cfg.write_text(cfg.read_text() + "[server]\nenabled = false\n")
    async with Store.from_settings(load_settings(cfg, environ={})):  # what `autohands run` holds
        proc = await start_chat(tmp_path, cfg)
        try:
            out, err = await asyncio.wait_for(proc.communicate(b"hello\n"), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 2
    [line] = err.decode().splitlines()
    assert line.startswith("autohands: error: the hub running on this database (pid ")
    assert "cannot attach to it: its HTTP server is off ([server] enabled = false)" in line
    assert "stop the hub first" in line and "autohands chat --config" in line and "data_dir" in line
    assert out == b""


def test_the_banner_counts_what_was_said_and_says_when() -> None:
    from hub.agent import HistoryItem
    from hub.cli_chat import WELCOME, banner

    now = datetime(2026, 3, 10, 12, 0).astimezone()

    def said(at: datetime) -> list[HistoryItem]:
        return [
            HistoryItem(kind="user", data={"text": "list my files"}, created_at=at),
            HistoryItem(kind="assistant", data={"text": "", "tool_calls": [{"id": "1"}]}, created_at=at),
            HistoryItem(kind="tool_results", data={"results": []}, created_at=at),
            HistoryItem(kind="assistant", data={"text": "Here they are."}, created_at=at),
        ]

    assert banner([], now) == WELCOME
    assert banner(said(now - timedelta(hours=1)), now).splitlines() == [
        WELCOME,
        "Continuing your conversation from today at 11:00 (2 messages) — /new starts afresh.",
    ]
    assert "from yesterday at 12:00 (2 messages)" in banner(said(now - timedelta(days=1)), now)
    assert " 2025 at 12:00 (2 messages)" in banner(said(now.replace(year=2025)), now)


def test_the_first_chat_without_a_config_offers_the_set_up_and_goes_on_when_declined(tmp_path: Path) -> None:
    """A new user's first command asks whether to run ``autohands init``; "n" goes on to the chat
    (setup instructions, since no model is configured) and writes nothing."""
    with Terminal(tmp_path) as term:
        term.expect(b"No configuration yet", within=30)
        term.type("n\r")
        term.expect(b"autohands init", within=10)
        term.expect(PROMPT, within=30)
        term.type("/quit\r")
        assert term.wait_exit(within=15) == 0
    assert not (tmp_path / ".autohands" / "config.toml").exists()
