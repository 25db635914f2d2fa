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
from channels.terminal import TerminalChannel
from hub.channel import Capabilities, ChannelClass, Manifest
from hub.extensions import load_entry_point
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
