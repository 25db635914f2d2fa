"""What an adapter author needs, in one import: the ``Channel`` contract (defined in
``hub.channel``), the messages it carries and the error it raises."""

from hub.channel import (
    Capabilities,
    Channel,
    ChannelClass,
    ChannelContext,
    CommandInfo,
    ConsoleChannel,
    Dialect,
    Inbox,
    KeyValueState,
    Manifest,
)
from hub.errors import ChannelError
from hub.messages import Button, ConversationRef, Delivery, Inbound, Outbound, Sender

__all__ = [
    "Button",
    "Capabilities",
    "Channel",
    "ChannelClass",
    "ChannelContext",
    "ChannelError",
    "CommandInfo",
    "ConsoleChannel",
    "ConversationRef",
    "Delivery",
    "Dialect",
    "Inbound",
    "Inbox",
    "KeyValueState",
    "Manifest",
    "Outbound",
    "Sender",
]
