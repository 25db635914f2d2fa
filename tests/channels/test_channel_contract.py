"""Every adapter class is a ``ChannelClass``, the way the hub loads it.

``ADAPTERS`` is what mypy checks (``mypy tests/channels/test_channel_contract.py``): each class
must match ``ChannelClass`` structurally, its instances ``Channel`` (``problem`` included). The
tests check what types cannot: the values, and that the entry points name these classes.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from channels.discord import DiscordChannel
from channels.slack import SlackChannel
from channels.telegram import TelegramChannel
from channels.terminal import TerminalChannel, TerminalConfig
from hub.channel import Capabilities, ChannelClass, ChannelContext, ConsoleChannel, Manifest
from hub.extensions import load_entry_point
from tests.channels.support import MemoryState
from tests.loopback.channel import LoopbackChannel

ADAPTERS: tuple[ChannelClass[Any], ...] = (
    TelegramChannel,
    SlackChannel,
    DiscordChannel,
    TerminalChannel,
    LoopbackChannel,
)


@pytest.mark.parametrize("cls", ADAPTERS, ids=lambda cls: cls.manifest.id)
def test_adapter_declares_its_config_manifest_and_capabilities(cls: ChannelClass[Any]) -> None:
    assert issubclass(cls.config_model, BaseModel)
    assert isinstance(cls.manifest, Manifest)
    assert isinstance(getattr(cls, "capabilities", None), Capabilities)


@pytest.mark.parametrize("cls", ADAPTERS[:4], ids=lambda cls: cls.manifest.id)
def test_entry_point_names_the_adapter(cls: ChannelClass[Any]) -> None:
    assert load_entry_point("autohands.channels", cls.manifest.id) is cls


def test_the_terminal_is_the_console_channel_autohands_chat_drives() -> None:
    terminal = TerminalChannel("terminal", TerminalConfig(), ChannelContext(state=MemoryState()))
    console: ConsoleChannel = terminal  # mypy: the terminal matches the protocol
    assert isinstance(console, ConsoleChannel)
