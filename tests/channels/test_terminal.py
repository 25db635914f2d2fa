"""The terminal chat's reader: a failing input ends the chat with a reason instead of a hang."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

from channels.terminal import TerminalChannel, TerminalConfig
from hub.channel import ChannelContext
from hub.messages import Inbound
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
    try:
        await asyncio.wait_for(ch.closed.wait(), 5)
    finally:
        await ch.stop()
    assert received == []
    [record] = caplog.records
    assert record.getMessage() == "terminal chat: cannot read input (OSError: [Errno 5] Input/output error); leaving"
