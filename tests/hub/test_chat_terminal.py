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
from pathlib import Path

import pytest

from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI

pty = pytest.importorskip("pty")
termios = pytest.importorskip("termios")

ROOT = Path(__file__).resolve().parents[2]
PROMPT = b"> "


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

    def close(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def test_ctrl_c_at_the_prompt_leaves_at_once_and_restores_the_terminal(tmp_path: Path) -> None:
    # Regression: the chat then waited for Enter (its input thread was joined at exit).
    term = Terminal(tmp_path, env={"AUTOHANDS__AGENT__RUNTIME": "echo"})
    try:
        before = term.modes()
        term.read_until(PROMPT, within=30)  # a cold start imports every SDK
        term.type("hello\r")
        term.read_until(b"echo: hello", within=10)
        term.screen = b""
        term.read_until(PROMPT, within=10)  # the next prompt: readline is reading a line
        assert term.modes() == (False, False)
        term.ctrl_c()
        assert term.wait_exit(within=10) == 130
        # readline never got to restore the terminal: the chat did, or the shell would not echo
        assert term.modes() == before == (True, True)
    finally:
        term.close()


async def test_ctrl_c_stops_the_answer_and_the_chat_goes_on(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript("echo", latency=30)) as llm:  # an answer that takes long
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[providers.slow]\nkind = "openai"\n'
                       f'base_url = "{llm.base_url}"\nmodel = "m"\napi_key = "sk-x"\n[agent]\nprovider = "slow"\n')

        def converse() -> tuple[int, bytes]:
            term = Terminal(tmp_path, "--config", str(cfg))
            try:
                term.read_until(PROMPT, within=30)
                term.type("tell me a long story\r")
                term.read_until(b"tell me a long story", within=10)
                term.screen = b""
                deadline = time.monotonic() + 10  # until the run has reached the model
                while not llm.script.requests and time.monotonic() < deadline:
                    time.sleep(0.02)
                term.ctrl_c()
                term.read_until(b"Stopped.", within=10)
                term.read_until(PROMPT, within=10)  # the chat goes on
                term.type("\x04")  # Ctrl+D leaves
                return term.wait_exit(within=10), term.screen
            finally:
                term.close()

        status, screen = await asyncio.to_thread(converse)
    assert status == 0
    assert b"stopping the answer" in screen and b"Stopping." in screen and b"echo:" not in screen
