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
from pathlib import Path

import pytest

from tests.fakes.llm_script import LLMScript, ScriptedCall
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
        term.expect(b"answer yes or no")
        term.expect(PROMPT)
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
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hub.cli",
            "chat",
            "--config",
            str(cfg),
            cwd=ROOT,
            env={**os.environ, "HOME": str(tmp_path)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(b"list my files\n")
            await proc.stdin.drain()
            seen = b""
            while b"answer yes or no" not in seen:  # answer only once asked, as a person would
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
