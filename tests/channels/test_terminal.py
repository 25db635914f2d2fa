"""The terminal chat off a terminal (piped): its reader, questions, reminders and notes."""

from __future__ import annotations

import asyncio
import io
import logging
import os
from typing import Any

from channels.terminal import TerminalChannel, TerminalConfig
from hub.answers import ANSWER_HINT
from hub.channel import ChannelContext
from hub.messages import Button, Inbound, Outbound
from tests.channels.support import MemoryState


class BrokenInput(io.StringIO):
    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        raise OSError(5, "Input/output error")  # e.g. the controlling terminal went away


async def test_an_input_error_ends_the_chat_with_one_line(caplog: Any) -> None:
    received: list[Inbound] = []

    async def inbox(inbound: Inbound) -> bool:
        received.append(inbound)
        return True

    ch = TerminalChannel(
        "terminal",
        TerminalConfig(enabled=True),
        ChannelContext(state=MemoryState()),
        stdin=BrokenInput(),
        stdout=io.StringIO(),
    )
    caplog.set_level(logging.ERROR, logger="channels.terminal")
    await ch.start(inbox)
    ch.begin()
    try:
        await asyncio.wait_for(ch.closed.wait(), 5)
    finally:
        await ch.stop()
    assert received == []
    [record] = caplog.records
    assert record.getMessage() == "terminal chat: cannot read input (OSError: [Errno 5] Input/output error); leaving"


class Piped:
    """A terminal channel on a pipe: the test writes lines when it wants, the hub side is ``inbox``."""

    def __init__(self) -> None:
        read, self._write_fd = os.pipe()
        self.stdin = os.fdopen(read, "r", encoding="utf-8")
        self.stdout = io.StringIO()
        self.received: asyncio.Queue[Inbound] = asyncio.Queue()
        self.channel = TerminalChannel(
            "terminal",
            TerminalConfig(enabled=True),
            ChannelContext(state=MemoryState()),
            stdin=self.stdin,
            stdout=self.stdout,
        )

    async def inbox(self, inbound: Inbound) -> bool:
        await self.received.put(inbound)
        return True

    def type(self, text: str) -> None:
        os.write(self._write_fd, text.encode())

    async def next(self) -> Inbound:
        return await asyncio.wait_for(self.received.get(), 5)

    async def reply(self, to: Inbound, text: str, **fields: Any) -> None:
        await self.channel.send(
            Outbound(conversation=to.conversation, text=text, reply_to_platform_id=to.platform_id, **fields)
        )

    async def __aenter__(self) -> Piped:
        await self.channel.start(self.inbox)
        self.channel.begin()
        return self

    async def __aexit__(self, *exc: object) -> None:
        os.close(self._write_fd)  # end of input: the chat ends once every answer is shown
        try:
            await asyncio.wait_for(self.channel.closed.wait(), 5)
        finally:
            await self.channel.stop()
            self.stdin.close()


async def test_piped_input_is_one_line_one_message_even_with_triple_quotes() -> None:
    async with Piped() as chat:
        chat.type('"""\nfirst\n"""\n')
        for expected in ('"""', "first", '"""'):
            inbound = await chat.next()
            assert inbound.text == expected
            await chat.reply(inbound, "ok")


async def test_a_question_with_buttons_is_asked_y_n_and_answered_with_the_button() -> None:
    buttons = (Button(id="approve:7", label="Approve"), Button(id="deny:7", label="Deny"))
    async with Piped() as chat:
        chat.type("list my files\n")
        asked = await chat.next()
        question = f'Approve running run_command? It runs a command.\ncommand: "ls"\n{ANSWER_HINT}'
        await chat.reply(asked, question, buttons=buttons)
        chat.type("nope\n")
        answer = await chat.next()
        assert (answer.kind, answer.button, answer.text) == ("button", "deny:7", "Deny")
        assert answer.sender.id == asked.sender.id
        await chat.reply(asked, "Not listed.")
    shown = chat.stdout.getvalue()
    assert shown == 'Approve running run_command? It runs a command.\ncommand: "ls"\n[y/N]\nNot listed.\n'


async def test_a_scheduled_message_is_labelled_as_a_reminder() -> None:
    async with Piped() as chat:
        conversation = chat.channel.conversation
        await chat.channel.send(Outbound(conversation=conversation, text="stretch", final=False, stream="s"))
        await chat.channel.send(Outbound(conversation=conversation, text="stretch", stream="s"))
        await chat.channel.send(Outbound(conversation=conversation, text="⏰ Missed: “stretch” was due …"))
    assert chat.stdout.getvalue() == "⏰ Reminder: stretch\n⏰ Missed: “stretch” was due …\n"


async def test_a_note_off_a_terminal_goes_to_stderr(capsys: Any) -> None:
    async with Piped() as chat:
        chat.channel.note("[error] the disk is full")
    assert capsys.readouterr().err == "[error] the disk is full\n"
    assert chat.stdout.getvalue() == ""
